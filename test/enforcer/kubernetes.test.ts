import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { EnforcerError, TargetGoneError, type Target } from '../../src/enforcer/enforcer';
import { KubernetesEnforcer, KubernetesEnforcerConfig, type KubernetesEnforcerOptions } from '../../src/enforcer/kubernetes';
import { RevertDriftError } from '../../src/enforcer/webhook';
import { KubernetesContractServer } from '../contract/kubernetes-server';

const Q = 'cordon.io/quarantine';
const STATE = 'cordon.io/quarantine-state';

describe('KubernetesEnforcer against the contract server', () => {
  const server = new KubernetesContractServer({
    'cordon-token': { user: 'system:serviceaccount:cordon:cordon', verbs: ['get', 'patch'] },
    'reader-token': { user: 'system:serviceaccount:cordon:reader', verbs: ['get'] },
    // An over-broad grant (a ClusterRole that can also patch Namespaces): names must keep Cordon on pods.
    'admin-token': { user: 'system:serviceaccount:cordon:admin', verbs: ['get', 'patch'], namespaceVerbs: ['get', 'patch'] },
  });
  let url: string;
  let sleeps: number[];
  let podSeq = 0;

  beforeAll(async () => {
    url = await server.start();
  });
  afterAll(() => server.stop());
  beforeEach(() => {
    sleeps = [];
    server.requests.length = 0;
  });

  const options = (): KubernetesEnforcerOptions => ({
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    random: () => 0.5,
  });
  const enforcer = (token = 'cordon-token') =>
    new KubernetesEnforcer(
      { connection: { mode: 'token', server: url, token, skipTLSVerify: true }, retry: { retries: 4, initialMs: 10, maxMs: 100 } },
      options(),
    );
  const newPod = (labels?: Record<string, string>) => {
    const name = `api-${++podSeq}`;
    server.addPod({ namespace: 'payments', name, ...(labels ? { labels } : {}) });
    const target: Target = { entity: `pod:payments/${name}`, kind: 'pod', namespace: 'payments', name };
    return { name, target };
  };
  const patches = () => server.requests.filter((r) => r.method === 'PATCH');

  it('apply sets the labels in one merge patch guarded by resourceVersion, and returns the exact prior labels', async () => {
    const { name, target } = newPod({ app: 'api', 'cordon.io/zone': 'dmz' });
    const rv = server.pod('payments', name)?.metadata.resourceVersion;
    const snapshot = await enforcer().apply({
      target,
      labels: { [Q]: 'true', 'cordon.io/zone': 'isolated' },
      expiresAt: Date.now() + 60_000,
      leaseId: 'lease-1',
    });
    expect(snapshot.labels).toEqual({ [Q]: null, 'cordon.io/zone': 'dmz' });
    expect(snapshot.target).toEqual(target);
    expect(server.pod('payments', name)?.metadata.labels).toEqual({ app: 'api', [Q]: 'true', 'cordon.io/zone': 'isolated' });
    const [patch, ...more] = patches();
    expect(more).toHaveLength(0);
    expect(patch?.contentType).toBe('application/merge-patch+json');
    expect(patch?.body).toMatchObject({ metadata: { resourceVersion: rv, labels: { [Q]: 'true', 'cordon.io/zone': 'isolated' } } });
    const state = JSON.parse(server.pod('payments', name)?.metadata.annotations?.[STATE] ?? '{}');
    expect(state).toMatchObject({ lease: 'lease-1', prior: { [Q]: null, 'cordon.io/zone': 'dmz' }, applied: { [Q]: 'true' } });
  });

  it('revert restores exactly: deletes what was absent, puts back what was different, leaves the rest', async () => {
    const { name, target } = newPod({ app: 'api', 'cordon.io/zone': 'dmz' });
    const e = enforcer();
    const snapshot = await e.apply({ target, labels: { [Q]: 'true', 'cordon.io/zone': 'isolated' }, expiresAt: 0, leaseId: 'lease-2' });
    server.update('payments', name, (pod) => {
      pod.metadata.labels = { ...pod.metadata.labels, version: 'v2' }; // an unrelated change meanwhile
    });
    await e.revert(snapshot, 'lease-2');
    const pod = server.pod('payments', name);
    expect(pod?.metadata.labels).toEqual({ app: 'api', 'cordon.io/zone': 'dmz', version: 'v2' });
    expect(pod?.metadata.annotations ?? {}).not.toHaveProperty(STATE);
  });

  it('revert is idempotent: a second revert writes nothing', async () => {
    const { name, target } = newPod({ app: 'api' });
    const e = enforcer();
    const snapshot = await e.apply({ target, labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'lease-3' });
    await e.revert(snapshot, 'lease-3');
    const rv = server.pod('payments', name)?.metadata.resourceVersion;
    server.requests.length = 0;
    await e.revert(snapshot, 'lease-3');
    expect(patches()).toHaveLength(0);
    expect(server.pod('payments', name)?.metadata.resourceVersion).toBe(rv);
  });

  it('revert leaves a label someone changed since, restores the others, and reports the drift', async () => {
    const { name, target } = newPod({ app: 'api', 'cordon.io/zone': 'dmz' });
    const e = enforcer();
    const snapshot = await e.apply({ target, labels: { [Q]: 'true', 'cordon.io/zone': 'isolated' }, expiresAt: 0, leaseId: 'lease-4' });
    server.update('payments', name, (pod) => {
      pod.metadata.labels = { ...pod.metadata.labels, 'cordon.io/zone': 'forensics' };
    });
    const err = await e.revert(snapshot, 'lease-4').catch((x: unknown) => x);
    expect(err).toBeInstanceOf(RevertDriftError);
    const drift = err as RevertDriftError;
    expect(drift.retriable).toBe(false);
    expect(drift.code).toBe('drift');
    expect(drift.result).toEqual({
      restored: [Q],
      unchanged: [],
      drifted: [{ key: 'cordon.io/zone', expected: 'isolated', actual: 'forensics', prior: 'dmz' }],
    });
    const pod = server.pod('payments', name);
    expect(pod?.metadata.labels).toEqual({ app: 'api', 'cordon.io/zone': 'forensics' });
    expect(pod?.metadata.annotations ?? {}).not.toHaveProperty(STATE);
  });

  it('a 409 on a stale write is retried from a fresh read and succeeds, keeping the concurrent change', async () => {
    const { name, target } = newPod({ app: 'api' });
    server.injectConflictAfterNextRead('payments', name, (pod) => {
      pod.metadata.labels = { ...pod.metadata.labels, owner: 'team-b' };
    });
    const snapshot = await enforcer().apply({ target, labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'lease-5' });
    expect(snapshot.labels).toEqual({ [Q]: null });
    expect(patches().map((r) => r.status)).toEqual([409, 200]);
    expect(server.requests.filter((r) => r.method === 'GET')).toHaveLength(2);
    expect(sleeps).toHaveLength(1);
    expect(server.pod('payments', name)?.metadata.labels).toEqual({ app: 'api', owner: 'team-b', [Q]: 'true' });
  });

  it('a conflict that does not clear is reported as a retriable failure after the retries', async () => {
    const { name, target } = newPod({ app: 'api' });
    for (let i = 0; i < 5; i++) server.injectConflictAfterNextRead('payments', name, (pod) => void (pod.metadata.labels = { n: String(i) }));
    const err = await enforcer().apply({ target, labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'lease-6' }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(EnforcerError);
    expect(err).toMatchObject({ retriable: true, code: 'Conflict' });
    expect(patches()).toHaveLength(5);
    expect(server.pod('payments', name)?.metadata.labels).toEqual({ n: '4' });
  });

  it('a missing pod is a non-retriable TargetGoneError carrying the server message', async () => {
    const target: Target = { entity: 'pod:payments/ghost', kind: 'pod', namespace: 'payments', name: 'ghost' };
    const err = await enforcer().apply({ target, labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'lease-7' }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(TargetGoneError);
    expect(err).toMatchObject({ retriable: false, code: 'gone' });
    expect((err as Error).message).toContain('pods "ghost" not found');
    expect(server.requests).toHaveLength(1);
    expect(sleeps).toHaveLength(0);
  });

  it('a token without patch permission is a non-retriable EnforcerError and changes nothing', async () => {
    const { name, target } = newPod({ app: 'api' });
    const err = await enforcer('reader-token').apply({ target, labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'lease-8' }).catch((x: unknown) => x);
    expect(err).toMatchObject({ retriable: false, code: 'Forbidden' });
    expect((err as Error).message).toContain(
      `pods "${name}" is forbidden: User "system:serviceaccount:cordon:reader" cannot patch resource "pods" in API group "" in the namespace "payments"`,
    );
    expect(patches()).toHaveLength(1);
    expect(server.pod('payments', name)?.metadata.labels).toEqual({ app: 'api' });
  });

  it('an unknown token is a non-retriable 401', async () => {
    const { target } = newPod();
    await expect(enforcer('stolen').observe(target)).rejects.toMatchObject({ retriable: false, code: 'Unauthorized' });
  });

  it('an invalid label value is a non-retriable 422 and nothing changes', async () => {
    const { name, target } = newPod({ app: 'api' });
    const err = await enforcer().apply({ target, labels: { [Q]: 'yes please' }, expiresAt: 0, leaseId: 'lease-9' }).catch((x: unknown) => x);
    expect(err).toMatchObject({ retriable: false, code: 'Invalid' });
    expect((err as Error).message).toContain(`Pod "${name}" is invalid: metadata.labels: Invalid value: "yes please"`);
    expect(server.pod('payments', name)?.metadata.labels).toEqual({ app: 'api' });
    expect(server.pod('payments', name)?.metadata.annotations).toBeUndefined();
  });

  it('apply twice is idempotent: same snapshot, no second write', async () => {
    const { name, target } = newPod({ app: 'api' });
    const e = enforcer();
    const request = { target, labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'lease-10' };
    const first = await e.apply(request);
    const rv = server.pod('payments', name)?.metadata.resourceVersion;
    server.requests.length = 0;
    const second = await e.apply(request);
    expect(second).toEqual(first);
    expect(patches()).toHaveLength(0);
    expect(server.pod('payments', name)?.metadata.resourceVersion).toBe(rv);
  });

  it('a replayed apply after a restart still returns the labels from before the quarantine', async () => {
    const { target } = newPod({ app: 'api', [Q]: 'false' });
    const request = { target, labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'lease-11' };
    const first = await enforcer().apply(request);
    const replay = await enforcer().apply(request); // a new process: nothing in memory
    expect(first.labels).toEqual({ [Q]: 'false' });
    expect(replay).toEqual(first);
  });

  it('a newer lease on the same pod keeps the original prior; the older revert then changes nothing', async () => {
    const { name, target } = newPod({ app: 'api' });
    const e = enforcer();
    const older = await e.apply({ target, labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'lease-old' });
    const newer = await e.apply({ target, labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'lease-new' });
    expect(newer.labels).toEqual({ [Q]: null });
    await e.revert(older, 'lease-old');
    expect(server.pod('payments', name)?.metadata.labels).toEqual({ app: 'api', [Q]: 'true' });
    await e.revert(newer, 'lease-new');
    expect(server.pod('payments', name)?.metadata.labels).toEqual({ app: 'api' });
  });

  it('a lease that takes over a pod also reverts the labels the earlier lease set', async () => {
    const { name, target } = newPod({ app: 'api', zone: 'dmz' });
    const e = enforcer();
    const older = await e.apply({ target, labels: { zone: 'isolated' }, expiresAt: 0, leaseId: 'lease-a' });
    const newer = await e.apply({ target, labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'lease-b' });
    await e.revert(older, 'lease-a'); // superseded: changes nothing
    expect(server.pod('payments', name)?.metadata.labels).toEqual({ app: 'api', zone: 'isolated', [Q]: 'true' });
    await e.revert(newer, 'lease-b');
    expect(server.pod('payments', name)?.metadata.labels).toEqual({ app: 'api', zone: 'dmz' });
  });

  it('5xx and 429 are retried; Retry-After is honoured', async () => {
    const { name, target } = newPod({ app: 'api' });
    server.failNext({ status: 503 }, { status: 429, retryAfterSec: 2 });
    await enforcer().apply({ target, labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'lease-12' });
    expect(server.requests.map((r) => r.status)).toEqual([503, 429, 200, 200]);
    expect(sleeps).toHaveLength(2);
    expect(sleeps[1]).toBeGreaterThanOrEqual(2000);
    expect(server.pod('payments', name)?.metadata.labels?.[Q]).toBe('true');
  });

  it('an unreachable API server is retried, then reported as a retriable network failure', async () => {
    const dead = new KubernetesContractServer();
    const deadUrl = await dead.start();
    await dead.stop();
    const e = new KubernetesEnforcer(
      { connection: { mode: 'token', server: deadUrl, token: 't', skipTLSVerify: true }, retry: { retries: 2, initialMs: 10, maxMs: 100 } },
      options(),
    );
    const err = await e.observe({ entity: 'pod:payments/x', kind: 'pod' }).catch((x: unknown) => x);
    expect(err).toMatchObject({ retriable: true, code: 'network' });
    expect(sleeps).toHaveLength(2);
  });

  it('observe reports the labels and whether the quarantine label is on', async () => {
    const { target } = newPod({ app: 'api' });
    const e = enforcer();
    expect(await e.observe(target)).toEqual({ target, labels: { app: 'api' }, contained: false });
    await e.apply({ target, labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'lease-13' });
    expect(await e.observe(target)).toEqual({ target, labels: { app: 'api', [Q]: 'true' }, contained: true });
    expect(e.capabilities).toEqual({ labels: true, kernelExpiry: false, connectionCut: false });
  });

  describe('names are RFC 1123 names before any URL is built', () => {
    const admin = () =>
      new KubernetesEnforcer({ connection: { mode: 'token', server: url, token: 'admin-token', skipTLSVerify: true }, retry: { retries: 0 } }, options());

    it('a pod named .. never reaches the Namespace object, even with a token that may patch Namespaces', async () => {
      server.addNamespace('payments', { team: 'pay' });
      const before = server.namespace('payments');
      const target: Target = { entity: 'pod:payments/..', kind: 'pod', namespace: 'payments', name: '..' };
      for (const op of [
        () => admin().apply({ target, labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'lease-dotdot' }),
        () => admin().revert({ target, labels: { [Q]: null }, takenAt: 0 }, 'lease-dotdot'),
        () => admin().observe(target),
      ]) {
        await expect(op()).rejects.toMatchObject({ retriable: false, code: 'invalid_target' });
      }
      expect(server.requests).toHaveLength(0);
      expect(server.namespace('payments')).toEqual(before);
    });

    it.each([
      ['pod name .', 'payments', '.'],
      ['pod name with a slash', 'payments', 'api/../../x'],
      ['pod name with a percent sign', 'payments', '%2e%2e'],
      ['upper-case pod name', 'payments', 'API-1'],
      ['pod name longer than 253', 'payments', `${'a'.repeat(63)}.`.repeat(4) + 'a'],
      ['namespace ..', '..', 'api-1'],
      ['namespace with a dot', 'pay.ments', 'api-1'],
      ['namespace longer than 63', 'n'.repeat(64), 'api-1'],
    ])('refuses a %s without a request', async (_what, namespace, name) => {
      const target: Target = { entity: `pod:${namespace}/${name}`, kind: 'pod', namespace, name };
      await expect(admin().apply({ target, labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'l' })).rejects.toMatchObject({ code: 'invalid_target' });
      expect(server.requests).toHaveLength(0);
    });

    it('accepts a dotted pod name (a DNS subdomain)', async () => {
      server.addPod({ namespace: 'payments', name: 'api.v2-1' });
      const target: Target = { entity: 'pod:payments/api.v2-1', kind: 'pod', namespace: 'payments', name: 'api.v2-1' };
      await admin().apply({ target, labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'l-dotted' });
      expect(server.pod('payments', 'api.v2-1')?.metadata.labels).toEqual({ [Q]: 'true' });
    });
  });

  describe('protection is checked on the pod as the API server has it now', () => {
    const spoofed = (name: string): Target => ({ entity: `pod:payments/${name}`, kind: 'pod', namespace: 'payments', name });

    it.each([
      ['Cordon itself (app.kubernetes.io/part-of=cordon)', { 'app.kubernetes.io/part-of': 'cordon', app: 'cordon-api' }],
      ['a domain controller by its role label', { 'cordon.io/role': 'domain-controller' }],
    ])('%s is refused without approval, though the incident named it without labels', async (_what, labels) => {
      const { name } = newPod(labels);
      const err = await enforcer().apply({ target: spoofed(name), labels: { [Q]: 'true' }, expiresAt: 0, leaseId: `l-${name}` }).catch((x: unknown) => x);
      expect(err).toBeInstanceOf(EnforcerError);
      expect(err).toMatchObject({ retriable: false, code: 'protected' });
      expect((err as Error).message).toContain('needs a person');
      expect(patches()).toHaveLength(0);
      expect(server.pod('payments', name)?.metadata.labels).toEqual(labels);
    });

    it("the playbook's protected selectors are checked too (names, namespaces, labels)", async () => {
      const { name } = newPod({ tier: 'db' });
      const request = (protectedSelectors: object[]) => ({
        target: spoofed(name),
        labels: { [Q]: 'true' },
        expiresAt: 0,
        leaseId: `l-${name}`,
        protected: protectedSelectors as never,
      });
      await expect(enforcer().apply(request([{ labels: { tier: 'db' } }]))).rejects.toMatchObject({ code: 'protected' });
      await expect(enforcer().apply(request([{ namespaces: ['payments'], names: ['api-*'] }]))).rejects.toMatchObject({ code: 'protected' });
      expect(patches()).toHaveLength(0);
      await enforcer().apply(request([{ labels: { tier: 'web' } }, { namespaces: ['shop'] }]));
      expect(server.pod('payments', name)?.metadata.labels).toEqual({ tier: 'db', [Q]: 'true' });
    });

    it('a protected pod is quarantined once a person approved it', async () => {
      const { name } = newPod({ 'app.kubernetes.io/part-of': 'cordon' });
      await enforcer().apply({ target: spoofed(name), labels: { [Q]: 'true' }, expiresAt: 0, leaseId: `l-${name}`, approvedBy: 'user:alice' });
      expect(server.pod('payments', name)?.metadata.labels).toEqual({ 'app.kubernetes.io/part-of': 'cordon', [Q]: 'true' });
    });
  });

  describe('a pod that is gone', () => {
    it('revert of a deleted pod is a TargetGoneError (nothing is left to restore), observe too', async () => {
      const { name, target } = newPod({ app: 'api' });
      const e = enforcer();
      const snapshot = await e.apply({ target, labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'l-gone' });
      server.deletePod('payments', name);
      const err = await e.revert(snapshot, 'l-gone').catch((x: unknown) => x);
      expect(err).toBeInstanceOf(TargetGoneError);
      expect(err).toMatchObject({ retriable: false, code: 'gone' });
      expect(sleeps).toHaveLength(0);
      await expect(e.observe(target)).rejects.toMatchObject({ code: 'gone' });
    });

    it('a 404 for a path the server does not serve is not taken for a gone pod', async () => {
      const { target } = newPod({ app: 'api' });
      const wrong = new KubernetesEnforcer({ connection: { mode: 'token', server: `${url}/not-the-api`, token: 'cordon-token', skipTLSVerify: true }, retry: { retries: 0 } }, options());
      const err = await wrong.observe(target).catch((x: unknown) => x);
      expect(err).toBeInstanceOf(EnforcerError);
      expect(err).not.toBeInstanceOf(TargetGoneError);
      expect(err).toMatchObject({ retriable: false });
    });
  });

  it('refuses a target that is not a pod, without a request', async () => {
    const target: Target = { entity: 'ip:10.0.0.5', kind: 'ip', ip: '10.0.0.5' };
    await expect(enforcer().apply({ target, labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'l' })).rejects.toMatchObject({
      retriable: false,
      code: 'target_unsupported',
    });
    expect(server.requests).toHaveLength(0);
  });

  it('the config schema fills defaults and rejects a connection without credentials', () => {
    expect(KubernetesEnforcerConfig.parse({})).toMatchObject({
      connection: { mode: 'inCluster' },
      quarantineLabel: { key: Q, value: 'true' },
      stateAnnotation: STATE,
      retry: { retries: 5 },
    });
    expect(KubernetesEnforcerConfig.safeParse({ connection: { mode: 'token', server: 'https://k8s:6443' } }).success).toBe(false);
    expect(KubernetesEnforcerConfig.safeParse({ quarantineLabel: { value: 'not valid!' } }).success).toBe(false);
  });
});

describe('connectors/kubernetes', () => {
  const load = (file: string) => YAML.parseAllDocuments(readFileSync(`connectors/kubernetes/${file}`, 'utf8')).map((d) => d.toJS());

  it('the example config is valid', () => {
    const [doc] = load('cordon-kubernetes.example.yaml');
    expect(KubernetesEnforcerConfig.parse(doc.contain.enforcers.kubernetes)).toMatchObject({ connection: { mode: 'inCluster' } });
  });

  it('every policy selects the label the enforcer sets, and denies both directions', () => {
    const { key, value } = KubernetesEnforcerConfig.parse({}).quarantineLabel;
    const [np] = load('networkpolicy-quarantine.yaml');
    expect(np.spec).toEqual({ podSelector: { matchLabels: { [key]: value } }, policyTypes: ['Ingress', 'Egress'] });
    expect(np.metadata.namespace).toBeUndefined();
    const [cilium] = load('cilium-clusterwide-quarantine.yaml');
    expect(cilium.spec.endpointSelector).toEqual({ matchLabels: { [key]: value } });
    expect(cilium.spec).toMatchObject({ ingressDeny: [{ fromEntities: ['all'] }], egressDeny: [{ toEntities: ['all'] }] });
    const [calico] = load('calico-globalnetworkpolicy-quarantine.yaml');
    expect(calico.spec).toMatchObject({ selector: `${key} == "${value}"`, types: ['Ingress', 'Egress'], ingress: [{ action: 'Deny' }], egress: [{ action: 'Deny' }] });
    expect(calico.spec.order).toBeLessThan(1000);
  });

  it('RBAC grants get/list/watch/patch on pods and nothing else, bound to the ServiceAccount', () => {
    const [sa, role, binding] = load('rbac.yaml');
    expect(role.rules).toEqual([{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'patch'] }]);
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata.name });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace }]);
  });
});
