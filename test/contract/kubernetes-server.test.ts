import { request as httpRequest } from 'node:http';
import { KubernetesContractServer, mergePatch } from './kubernetes-server';

/** The contract server must answer as the Kubernetes API documents; these pin each behaviour the enforcer relies on. */
const json = async (res: Response): Promise<any> => res.json();

describe('Kubernetes contract server', () => {
  const server = new KubernetesContractServer({
    'cordon-token': { user: 'system:serviceaccount:cordon:cordon', verbs: ['get', 'patch'] },
    'reader-token': { user: 'system:serviceaccount:cordon:reader', verbs: ['get'] },
    'admin-token': { user: 'system:serviceaccount:kube-system:admin', verbs: ['get', 'patch'], namespaceVerbs: ['get', 'patch'] },
  });
  let url: string;

  beforeAll(async () => {
    url = await server.start();
  });
  afterAll(() => server.stop());

  const podUrl = (ns: string, name: string) => `${url}/api/v1/namespaces/${ns}/pods/${name}`;
  const get = (ns: string, name: string, token = 'cordon-token') =>
    fetch(podUrl(ns, name), { headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' } });
  const patch = (ns: string, name: string, body: unknown, contentType = 'application/merge-patch+json', token = 'cordon-token') =>
    fetch(podUrl(ns, name), {
      method: 'PATCH',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': contentType },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  it('applies RFC 7386 merge patch semantics', () => {
    expect(mergePatch({ a: 'b', c: { d: 'e', f: 'g' } }, { a: 'z', c: { f: null } })).toEqual({ a: 'z', c: { d: 'e' } });
    expect(mergePatch({ a: [{ b: 'c' }] }, { a: [1] })).toEqual({ a: [1] });
    expect(mergePatch({ a: 'b' }, { a: null, b: { c: null } })).toEqual({ b: {} });
    expect(mergePatch({ a: 'foo' }, 'bar')).toBe('bar');
  });

  it('GET returns the pod with its resourceVersion and labels', async () => {
    const created = server.addPod({ namespace: 'shop', name: 'web-1', labels: { app: 'web' } });
    const res = await get('shop', 'web-1');
    expect(res.status).toBe(200);
    const pod = await json(res);
    expect(pod).toMatchObject({ kind: 'Pod', apiVersion: 'v1', metadata: { name: 'web-1', namespace: 'shop', labels: { app: 'web' } } });
    expect(pod.metadata.resourceVersion).toBe(created.metadata.resourceVersion);
  });

  it('PATCH merges labels, null deletes, and every write bumps resourceVersion', async () => {
    server.addPod({ namespace: 'shop', name: 'web-2', labels: { app: 'web', tier: 'front' } });
    const before = Number(server.pod('shop', 'web-2')?.metadata.resourceVersion);
    const res = await patch('shop', 'web-2', { metadata: { labels: { quarantine: 'true', tier: null } } });
    expect(res.status).toBe(200);
    const pod = await json(res);
    expect(pod.metadata.labels).toEqual({ app: 'web', quarantine: 'true' });
    expect(Number(pod.metadata.resourceVersion)).toBeGreaterThan(before);
    expect(server.pod('shop', 'web-2')?.metadata.labels).toEqual({ app: 'web', quarantine: 'true' });
  });

  it('a patch that changes nothing is not a write: resourceVersion stays', async () => {
    const created = server.addPod({ namespace: 'shop', name: 'web-3', labels: { app: 'web' } });
    const res = await patch('shop', 'web-3', { metadata: { labels: { app: 'web' } } });
    expect(res.status).toBe(200);
    expect((await json(res)).metadata.resourceVersion).toBe(created.metadata.resourceVersion);
  });

  it('a patch with the current resourceVersion succeeds; a stale one gets 409 Conflict', async () => {
    const created = server.addPod({ namespace: 'shop', name: 'web-4', labels: { app: 'web' } });
    const ok = await patch('shop', 'web-4', { metadata: { resourceVersion: created.metadata.resourceVersion, labels: { a: '1' } } });
    expect(ok.status).toBe(200);
    const stale = await patch('shop', 'web-4', { metadata: { resourceVersion: created.metadata.resourceVersion, labels: { a: '2' } } });
    expect(stale.status).toBe(409);
    expect(await json(stale)).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message:
        'Operation cannot be fulfilled on pods "web-4": the object has been modified; please apply your changes to the latest version and try again',
      reason: 'Conflict',
      details: { name: 'web-4', kind: 'pods' },
      code: 409,
    });
    expect(server.pod('shop', 'web-4')?.metadata.labels).toEqual({ app: 'web', a: '1' });
  });

  it('a missing pod is 404 NotFound', async () => {
    for (const res of [await get('shop', 'nope'), await patch('shop', 'nope', { metadata: { labels: { a: 'b' } } })]) {
      expect(res.status).toBe(404);
      expect(await json(res)).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404, message: 'pods "nope" not found' });
    }
  });

  it('an unknown or missing token is 401; a token without the verb is 403 Forbidden with the RBAC message', async () => {
    server.addPod({ namespace: 'shop', name: 'web-5' });
    const unknown = await get('shop', 'web-5', 'who-knows');
    expect(unknown.status).toBe(401);
    expect(await json(unknown)).toMatchObject({ kind: 'Status', reason: 'Unauthorized', code: 401, message: 'Unauthorized' });
    const none = await fetch(podUrl('shop', 'web-5'));
    expect(none.status).toBe(401);

    expect((await get('shop', 'web-5', 'reader-token')).status).toBe(200);
    const forbidden = await patch('shop', 'web-5', { metadata: { labels: { a: 'b' } } }, 'application/merge-patch+json', 'reader-token');
    expect(forbidden.status).toBe(403);
    expect(await json(forbidden)).toMatchObject({
      kind: 'Status',
      status: 'Failure',
      reason: 'Forbidden',
      code: 403,
      message: 'pods "web-5" is forbidden: User "system:serviceaccount:cordon:reader" cannot patch resource "pods" in API group "" in the namespace "shop"',
    });
    expect(server.pod('shop', 'web-5')?.metadata.labels).toBeUndefined();
  });

  it('a patch with another media type is 415', async () => {
    server.addPod({ namespace: 'shop', name: 'web-6' });
    const plain = await patch('shop', 'web-6', { metadata: { labels: { a: 'b' } } }, 'application/json');
    expect(plain.status).toBe(415);
    expect(await json(plain)).toMatchObject({ reason: 'UnsupportedMediaType', code: 415 });
    expect((await patch('shop', 'web-6', [{ op: 'add', path: '/x', value: 1 }], 'application/json-patch+json')).status).toBe(415);
    const smp = await patch('shop', 'web-6', { metadata: { labels: { a: 'b' } } }, 'application/strategic-merge-patch+json');
    expect(smp.status).toBe(200);
  });

  it('an invalid label key or value is 422 Invalid and changes nothing', async () => {
    const created = server.addPod({ namespace: 'shop', name: 'web-7', labels: { app: 'web' } });
    const cases: Array<Record<string, string>> = [
      { quarantine: 'x'.repeat(64) },
      { quarantine: 'not allowed!' },
      { quarantine: '-leading' },
      { quarantine: 'trailing.' },
      { 'Bad_Prefix/name': 'v' },
      { ['k'.repeat(64)]: 'v' },
    ];
    for (const labels of cases) {
      const res = await patch('shop', 'web-7', { metadata: { labels } });
      expect(res.status).toBe(422);
      const status = await json(res);
      expect(status).toMatchObject({ kind: 'Status', reason: 'Invalid', code: 422, details: { name: 'web-7', kind: 'Pod' } });
      expect(status.message).toMatch(/^Pod "web-7" is invalid: metadata.labels: Invalid value: /);
    }
    expect(server.pod('shop', 'web-7')?.metadata).toMatchObject({ resourceVersion: created.metadata.resourceVersion, labels: { app: 'web' } });
    expect((await patch('shop', 'web-7', { metadata: { labels: { ok: 'x'.repeat(63), empty: '' } } })).status).toBe(200);
  });

  it('a body that is not JSON, or a label that is not a string, is 400 BadRequest', async () => {
    server.addPod({ namespace: 'shop', name: 'web-8' });
    expect((await patch('shop', 'web-8', '{not json')).status).toBe(400);
    const numeric = await patch('shop', 'web-8', { metadata: { labels: { a: 1 } } });
    expect(numeric.status).toBe(400);
    expect(await json(numeric)).toMatchObject({ reason: 'BadRequest', code: 400 });
  });

  it('can inject a concurrent change between a read and the next patch', async () => {
    server.addPod({ namespace: 'shop', name: 'web-9', labels: { app: 'web' } });
    server.injectConflictAfterNextRead('shop', 'web-9', (pod) => {
      pod.metadata.labels = { ...pod.metadata.labels, owner: 'someone-else' };
    });
    const read = await json(await get('shop', 'web-9'));
    expect(read.metadata.labels).toEqual({ app: 'web' });
    const res = await patch('shop', 'web-9', { metadata: { resourceVersion: read.metadata.resourceVersion, labels: { q: 'true' } } });
    expect(res.status).toBe(409);
    expect(server.pod('shop', 'web-9')?.metadata.labels).toEqual({ app: 'web', owner: 'someone-else' });
  });

  it('can fail the next requests with 5xx or 429 and Retry-After', async () => {
    server.addPod({ namespace: 'shop', name: 'web-10' });
    server.failNext({ status: 503 }, { status: 429, retryAfterSec: 2 });
    const first = await get('shop', 'web-10');
    expect(first.status).toBe(503);
    expect(await json(first)).toMatchObject({ reason: 'ServiceUnavailable', code: 503 });
    const second = await get('shop', 'web-10');
    expect(second.status).toBe(429);
    expect(second.headers.get('retry-after')).toBe('2');
    expect((await get('shop', 'web-10')).status).toBe(200);
  });

  /** A request with the path sent exactly as given (fetch would resolve `..` first). */
  const raw = (method: string, path: string, token = 'cordon-token'): Promise<{ status: number; body: any }> =>
    new Promise((resolve, reject) => {
      const { hostname, port } = new URL(url);
      const req = httpRequest({ hostname, port, path, method, headers: { Authorization: `Bearer ${token}` } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      });
      req.on('error', reject);
      req.end();
    });

  it('a name that cannot be a path segment (., .., or with / or % once decoded) is 400 Name parameter invalid', async () => {
    server.addPod({ namespace: 'shop', name: 'web-11' });
    for (const path of ['/api/v1/namespaces/shop/pods/..', '/api/v1/namespaces/shop/pods/.', '/api/v1/namespaces/shop/pods/%2E%2E', '/api/v1/namespaces/shop/pods/web%2F11', '/api/v1/namespaces/shop/pods/web%2511']) {
      const res = await raw('GET', path);
      expect([path, res.status]).toEqual([path, 400]);
      expect(res.body).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'BadRequest', code: 400 });
      expect(res.body.message).toMatch(/^Name parameter invalid: ".*": may not (be|contain) '(\.\.|\.|\/|%)'$/);
    }
    expect((await raw('GET', '/api/v1/namespaces/shop/pods/%2E%2E')).body.message).toBe(`Name parameter invalid: "..": may not be '..'`);
  });

  it('a pod URL ending in /pods/.. is resolved by the client to the Namespace, which the server serves (RBAC permitting)', async () => {
    server.addNamespace('shop', { team: 'retail' });
    const viaFetch = await get('shop', '..'); // fetch resolves /namespaces/shop/pods/.. to /namespaces/shop/
    expect(viaFetch.status).toBe(403);
    expect((await json(viaFetch)).message).toBe('namespaces "shop" is forbidden: User "system:serviceaccount:cordon:cordon" cannot get resource "namespaces" in API group "" at the cluster scope');
    const asAdmin = await get('shop', '..', 'admin-token');
    expect(asAdmin.status).toBe(200);
    expect(await json(asAdmin)).toMatchObject({ kind: 'Namespace', metadata: { name: 'shop', labels: { 'kubernetes.io/metadata.name': 'shop', team: 'retail' } } });
    const patched = await patch('shop', '..', { metadata: { labels: { 'cordon.io/quarantine': 'true' } } }, 'application/merge-patch+json', 'admin-token');
    expect(patched.status).toBe(200);
    expect(server.namespace('shop')?.metadata.labels).toMatchObject({ team: 'retail', 'cordon.io/quarantine': 'true' });
  });

  it('a deleted pod is 404 NotFound on GET and PATCH, naming the pod in details', async () => {
    server.addPod({ namespace: 'shop', name: 'web-12', labels: { app: 'web' } });
    server.deletePod('shop', 'web-12');
    for (const res of [await get('shop', 'web-12'), await patch('shop', 'web-12', { metadata: { labels: { q: 'true' } } })]) {
      expect(res.status).toBe(404);
      expect(await json(res)).toMatchObject({ reason: 'NotFound', code: 404, message: 'pods "web-12" not found', details: { name: 'web-12', kind: 'pods' } });
    }
    expect(server.pod('shop', 'web-12')).toBeUndefined();
  });

  it('refuses to create a pod that the API server would refuse: names are RFC 1123', () => {
    expect(() => server.addPod({ namespace: 'shop', name: '..' })).toThrow('not an RFC 1123 subdomain');
    expect(() => server.addPod({ namespace: 'shop', name: 'Web-1' })).toThrow('not an RFC 1123 subdomain');
    expect(() => server.addPod({ namespace: 'Shop', name: 'web-1' })).toThrow('not an RFC 1123 label');
    expect(() => server.addPod({ namespace: 'shop.eu', name: 'web-1' })).toThrow('not an RFC 1123 label');
    expect(server.addPod({ namespace: 'shop', name: 'web.v2-1' }).metadata.name).toBe('web.v2-1');
  });
});
