import { IllumioContractServer } from './illumio-server';

const json = async (res: Response): Promise<any> => res.json();

/** The contract server must answer as Illumio's REST API guide documents; these pin what the enforcer relies on. */
describe('Illumio PCE contract server', () => {
  const server = new IllumioContractServer({
    orgId: 7,
    apiKeys: { api_writer: { secret: 's3cret', access: 'write' }, api_reader: { secret: 'r3ad', access: 'read' } },
  });
  let url: string;

  beforeAll(async () => {
    url = await server.start();
  });
  afterAll(() => server.stop());

  const auth = (id = 'api_writer', secret = 's3cret') => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
  const call = (method: string, path: string, body?: unknown, authorization = auth(), contentType = 'application/json') =>
    fetch(`${url}/api/v2${path}`, {
      method,
      headers: { Authorization: authorization, Accept: 'application/json', ...(body !== undefined ? { 'Content-Type': contentType } : {}) },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });

  it('GET a workload returns its label hrefs', async () => {
    const w = server.addWorkload({ name: 'db-1', labels: { role: 'db', env: 'prod' } });
    const res = await call('GET', w.href);
    expect(res.status).toBe(200);
    expect(res.headers.get('request-id')).toBeTruthy();
    const body = await json(res);
    expect(body.href).toBe(w.href);
    expect(body.labels).toHaveLength(2);
    expect(body.labels[0]).toEqual({ href: expect.stringMatching(/^\/orgs\/7\/labels\/\d+$/) });
  });

  it('PUT labels replaces the list, leaves the other attributes, answers 204', async () => {
    const w = server.addWorkload({ name: 'db-2', labels: { role: 'db', env: 'prod' } });
    const q = server.addLabel('quarantine', 'true');
    const role = server.findLabels('role', 'db')[0]?.href as string;
    const res = await call('PUT', w.href, { labels: [{ href: role }, { href: q.href }] });
    expect(res.status).toBe(204);
    expect(await res.text()).toBe('');
    expect(server.workloadLabels(w.href)).toEqual({ role: 'db', quarantine: 'true' });
    const after = await json(await call('GET', w.href));
    expect(after.name).toBe('db-2');
  });

  it('labels must exist, and one per key: otherwise 406 with [{token, message}]', async () => {
    const w = server.addWorkload({ name: 'db-3', labels: { role: 'db' } });
    const unknown = await call('PUT', w.href, { labels: [{ href: '/orgs/7/labels/99999' }] });
    expect(unknown.status).toBe(406);
    expect(await json(unknown)).toEqual([{ token: 'invalid_label_href', message: expect.any(String) }]);
    const twoRoles = await call('PUT', w.href, { labels: [{ href: server.addLabel('role', 'web').href }, { href: server.addLabel('role', 'db').href }] });
    expect(twoRoles.status).toBe(406);
    const deleted = server.addLabel('env', 'old');
    server.deleteLabel(deleted.href);
    expect((await call('PUT', w.href, { labels: [{ href: deleted.href }] })).status).toBe(406);
    expect((await call('PUT', w.href, { labels: 'role=db' })).status).toBe(406);
    expect((await call('PUT', w.href, { bogus: 1 })).status).toBe(406);
    expect((await call('PUT', w.href, '{nope')).status).toBe(400);
    expect(server.workloadLabels(w.href)).toEqual({ role: 'db' });
  });

  it('rejects bad credentials with 401 and a read-only key on writes with 403', async () => {
    const w = server.addWorkload({ name: 'db-4' });
    const bad = await call('GET', w.href, undefined, auth('api_writer', 'wrong'));
    expect(bad.status).toBe(401);
    expect(await json(bad)).toEqual([{ token: expect.any(String), message: expect.any(String) }]);
    expect((await fetch(`${url}/api/v2${w.href}`)).status).toBe(401);
    expect((await call('GET', w.href, undefined, auth('api_reader', 'r3ad'))).status).toBe(200);
    expect((await call('PUT', w.href, { labels: [] }, auth('api_reader', 'r3ad'))).status).toBe(403);
    expect((await call('GET', '/orgs/8/workloads/abc')).status).toBe(403);
  });

  it('an unknown workload or label href is 404', async () => {
    expect((await call('GET', '/orgs/7/workloads/00000000-0000-0000-0000-000000000000')).status).toBe(404);
    expect((await call('GET', '/orgs/7/labels/424242')).status).toBe(404);
  });

  it('GET labels filters by key exactly and by value partially', async () => {
    server.addLabel('app', 'APP');
    server.addLabel('app', 'WEB-APP');
    server.addLabel('role', 'APP');
    const res = await json(await call('GET', '/orgs/7/labels?key=app&value=APP'));
    expect(res.map((l: { value: string }) => l.value).sort()).toEqual(['APP', 'WEB-APP']);
    expect(res.every((l: { key: string }) => l.key === 'app')).toBe(true);
  });

  it('POST labels creates once; a duplicate or an unknown label type is 406', async () => {
    const created = await call('POST', '/orgs/7/labels', { key: 'quarantine', value: 'isolated' });
    expect(created.status).toBe(201);
    expect(await json(created)).toMatchObject({ key: 'quarantine', value: 'isolated', href: expect.stringMatching(/^\/orgs\/7\/labels\//) });
    const again = await call('POST', '/orgs/7/labels', { key: 'quarantine', value: 'isolated' });
    expect(again.status).toBe(406);
    expect((await json(again))[0]).toMatchObject({ token: 'label_not_unique' });
    expect((await call('POST', '/orgs/7/labels', { key: 'nosuchtype', value: 'x' })).status).toBe(406);
    expect((await call('POST', '/orgs/7/labels', { key: 'quarantine' })).status).toBe(406);
    expect(server.findLabels('quarantine', 'isolated')).toHaveLength(1);
  });

  it('rate-limits with 429 and Retry-After when told to, and can inject 5xx', async () => {
    const w = server.addWorkload({ name: 'db-5' });
    server.rateLimit(2, 3);
    for (let i = 0; i < 2; i++) {
      const res = await call('GET', w.href);
      expect(res.status).toBe(429);
      expect(res.headers.get('retry-after')).toBe('3');
    }
    server.failNext(502);
    expect((await call('GET', w.href)).status).toBe(502);
    expect((await call('GET', w.href)).status).toBe(200);
  });
});
