import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { EnforcerError, TargetGoneError, type Target } from '../../src/enforcer/enforcer';
import { IllumioEnforcer, IllumioEnforcerConfig, type IllumioEnforcerConfigInput } from '../../src/enforcer/illumio';
import { RevertDriftError } from '../../src/enforcer/webhook';
import { IllumioContractServer } from '../contract/illumio-server';

const Q = 'cordon.io/quarantine';

describe('IllumioEnforcer against the contract server', () => {
  const server = new IllumioContractServer({
    orgId: 3,
    apiKeys: { api_cordon: { secret: 'k3y-s3cret', access: 'write' }, api_ro: { secret: 'ro', access: 'read' } },
  });
  let url: string;
  let sleeps: number[];

  beforeAll(async () => {
    url = await server.start();
  });
  afterAll(() => server.stop());
  beforeEach(() => {
    sleeps = [];
    server.requests.length = 0;
  });

  const enforcer = (overrides: Partial<IllumioEnforcerConfigInput> = {}) =>
    new IllumioEnforcer(
      { pceUrl: url, orgId: 3, apiKeyId: 'api_cordon', apiKeySecret: 'k3y-s3cret', retry: { retries: 4, initialMs: 10, maxMs: 100 }, ...overrides },
      { sleep: async (ms) => void sleeps.push(ms), random: () => 0.5 },
    );
  const target = (href: string): Target => ({ entity: `host:${href}`, kind: 'host', name: 'db', ref: href });
  const writes = () => server.requests.filter((r) => r.method === 'PUT' || r.method === 'POST');

  it('apply sets the quarantine label in one PUT, keeps the other labels, and returns the exact prior labels', async () => {
    const w = server.addWorkload({ name: 'db-a', labels: { role: 'db', env: 'prod' } });
    const snapshot = await enforcer().apply({ target: target(w.href), labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'l-1' });
    expect(snapshot.labels).toEqual({ [Q]: null });
    expect(server.workloadLabels(w.href)).toEqual({ role: 'db', env: 'prod', quarantine: 'true' });
    expect(server.requests.filter((r) => r.method === 'PUT')).toHaveLength(1);
  });

  it('apply replaces the existing label of the same key and records it; revert puts it back', async () => {
    const w = server.addWorkload({ name: 'db-b', labels: { role: 'db', env: 'prod' } });
    const e = enforcer({ labelKeys: { [Q]: 'quarantine', 'cordon.io/env': 'env' } });
    const snapshot = await e.apply({ target: target(w.href), labels: { [Q]: 'true', 'cordon.io/env': 'isolation' }, expiresAt: 0, leaseId: 'l-2' });
    expect(snapshot.labels).toEqual({ [Q]: null, 'cordon.io/env': 'prod' });
    expect(server.workloadLabels(w.href)).toEqual({ role: 'db', env: 'isolation', quarantine: 'true' });
    await e.revert(snapshot, 'l-2');
    expect(server.workloadLabels(w.href)).toEqual({ role: 'db', env: 'prod' });
  });

  it('revert removes a label that was absent before, and a second revert writes nothing', async () => {
    const w = server.addWorkload({ name: 'db-c', labels: { role: 'db' } });
    const e = enforcer();
    const snapshot = await e.apply({ target: target(w.href), labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'l-3' });
    await e.revert(snapshot, 'l-3');
    expect(server.workloadLabels(w.href)).toEqual({ role: 'db' });
    server.requests.length = 0;
    await e.revert(snapshot, 'l-3');
    expect(writes()).toHaveLength(0);
  });

  it('revert leaves a label someone changed since and reports it; the others are restored', async () => {
    const w = server.addWorkload({ name: 'db-d', labels: { role: 'db', env: 'prod' } });
    const e = enforcer({ labelKeys: { [Q]: 'quarantine', 'cordon.io/env': 'env' } });
    const snapshot = await e.apply({ target: target(w.href), labels: { [Q]: 'true', 'cordon.io/env': 'isolation' }, expiresAt: 0, leaseId: 'l-4' });
    server.setWorkloadLabels(w.href, { role: 'db', env: 'forensics', quarantine: 'true' });
    const err = await e.revert(snapshot, 'l-4').catch((x: unknown) => x);
    expect(err).toBeInstanceOf(RevertDriftError);
    expect((err as RevertDriftError).result).toEqual({
      restored: [Q],
      unchanged: [],
      drifted: [{ key: 'cordon.io/env', expected: 'isolation', actual: 'forensics', prior: 'prod' }],
    });
    expect(server.workloadLabels(w.href)).toEqual({ role: 'db', env: 'forensics' });
  });

  it('apply twice for one lease is idempotent: same snapshot, no second write', async () => {
    const w = server.addWorkload({ name: 'db-e', labels: { role: 'db' } });
    const e = enforcer();
    const request = { target: target(w.href), labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'l-5' };
    const first = await e.apply(request);
    server.requests.length = 0;
    const second = await e.apply(request);
    expect(second).toEqual(first);
    expect(writes()).toHaveLength(0);
  });

  it('a PUT that landed but whose answer was lost is retried without mistaking the quarantine label for the prior one', async () => {
    const w = server.addWorkload({ name: 'db-f', labels: { role: 'db' } });
    server.failAfterApplying('PUT', 504);
    const snapshot = await enforcer().apply({ target: target(w.href), labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'l-6' });
    expect(snapshot.labels).toEqual({ [Q]: null });
    expect(server.requests.filter((r) => r.method === 'PUT').map((r) => r.status)).toEqual([504]);
    expect(server.workloadLabels(w.href)).toEqual({ role: 'db', quarantine: 'true' });
  });

  it('documented limit: a replay in a new process after the label landed records it as the prior value', async () => {
    const w = server.addWorkload({ name: 'db-f2', labels: { role: 'db' } });
    const request = { target: target(w.href), labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'l-6b' };
    expect((await enforcer().apply(request)).labels).toEqual({ [Q]: null });
    const fresh = await enforcer().apply(request);
    expect(fresh.labels).toEqual({ [Q]: 'true' });
    // Reverting with that snapshot leaves the quarantine on (fail closed) rather than removing it.
    await enforcer().revert(fresh, 'l-6b');
    expect(server.workloadLabels(w.href)).toEqual({ role: 'db', quarantine: 'true' });
  });

  it('a newer lease on the same workload keeps the original prior; the older revert then changes nothing', async () => {
    const w = server.addWorkload({ name: 'db-m', labels: { role: 'db' } });
    const e = enforcer();
    const older = await e.apply({ target: target(w.href), labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'l-old' });
    const newer = await e.apply({ target: target(w.href), labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'l-new' });
    expect(newer.labels).toEqual({ [Q]: null });
    await e.revert(older, 'l-old');
    expect(server.workloadLabels(w.href)).toEqual({ role: 'db', quarantine: 'true' });
    await e.revert(newer, 'l-new');
    expect(server.workloadLabels(w.href)).toEqual({ role: 'db' });
  });

  it('429 is retried, honouring Retry-After', async () => {
    const w = server.addWorkload({ name: 'db-g', labels: { role: 'db' } });
    const e = enforcer();
    await e.prepare();
    server.requests.length = 0;
    server.rateLimit(2, 2);
    await e.apply({ target: target(w.href), labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'l-7' });
    expect(server.requests.slice(0, 2).map((r) => r.status)).toEqual([429, 429]);
    expect(sleeps).toHaveLength(2);
    expect(sleeps.every((ms) => ms >= 2000)).toBe(true);
    expect(server.workloadLabels(w.href)).toEqual({ role: 'db', quarantine: 'true' });
  });

  it('5xx is retried', async () => {
    const w = server.addWorkload({ name: 'db-h' });
    server.failNext(500, 503);
    await enforcer().observe(target(w.href));
    expect(server.requests.map((r) => r.status)).toEqual([500, 503, 200]);
  });

  it('401 is not retriable and carries the PCE message', async () => {
    const w = server.addWorkload({ name: 'db-i' });
    const err = await enforcer({ apiKeySecret: 'wrong' }).observe(target(w.href)).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(EnforcerError);
    expect(err).toMatchObject({ retriable: false });
    expect((err as Error).message).toContain('401 authentication_required: Authentication required');
    expect(server.requests).toHaveLength(1);
  });

  it('404 is not retriable: the workload is gone', async () => {
    const href = '/orgs/3/workloads/6f1c8a9e-0000-4000-8000-000000000000';
    const err = await enforcer().apply({ target: target(href), labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'l-8' }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(TargetGoneError);
    expect(err).toMatchObject({ retriable: false, code: 'gone' });
    expect((err as Error).message).toContain(`Workload ${href} not found`);
    expect(sleeps).toHaveLength(0);
  });

  it('a read-only key gets a non-retriable 403 and nothing changes', async () => {
    const w = server.addWorkload({ name: 'db-j', labels: { role: 'db' } });
    server.addLabel('quarantine', 'true');
    const err = await enforcer({ apiKeyId: 'api_ro', apiKeySecret: 'ro' })
      .apply({ target: target(w.href), labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'l-9' })
      .catch((x: unknown) => x);
    expect(err).toMatchObject({ retriable: false, code: 'forbidden_error' });
    expect(server.workloadLabels(w.href)).toEqual({ role: 'db' });
  });

  it('label pre-creation is idempotent: found by exact match, created once, a lost race is resolved by a lookup', async () => {
    server.addLabel('quarantine', 'true-ish'); // a partial match the lookup must not take
    const e = enforcer({ quarantineLabel: { key: 'quarantine', value: 'hold' } });
    const href = await e.prepare();
    expect(await e.prepare()).toBe(href);
    expect(server.findLabels('quarantine', 'hold')).toEqual([expect.objectContaining({ href })]);
    expect(server.requests.filter((r) => r.method === 'POST')).toHaveLength(1);

    server.requests.length = 0;
    expect(await enforcer({ quarantineLabel: { key: 'quarantine', value: 'hold' } }).prepare()).toBe(href);
    expect(server.requests.filter((r) => r.method === 'POST')).toHaveLength(0);

    // Another replica creates the label between this one's lookup and its POST: 406, then found.
    server.requests.length = 0;
    server.beforeNext('POST', () => server.addLabel('quarantine', 'race'));
    const raced = await enforcer({ quarantineLabel: { key: 'quarantine', value: 'race' } }).prepare();
    expect(server.requests.map((r) => `${r.method} ${r.status}`)).toEqual(['GET 200', 'POST 406', 'GET 200']);
    expect(server.findLabels('quarantine', 'race')).toEqual([expect.objectContaining({ href: raced })]);
  });

  it('a missing label with createLabels off is a non-retriable error', async () => {
    const e = enforcer({ createLabels: false, quarantineLabel: { key: 'quarantine', value: 'never-made' } });
    await expect(e.prepare()).rejects.toMatchObject({ retriable: false, code: 'label_missing' });
  });

  it('observe reports PCE labels and whether the quarantine label is on', async () => {
    const w = server.addWorkload({ name: 'db-k', labels: { role: 'db' } });
    const e = enforcer();
    expect(await e.observe(target(w.href))).toEqual({ target: target(w.href), labels: { role: 'db' }, contained: false });
    await e.apply({ target: target(w.href), labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'l-10' });
    expect(await e.observe(target(w.href))).toMatchObject({ labels: { role: 'db', quarantine: 'true' }, contained: true });
  });

  it('observe does not call a workload contained when its VEN only watches', async () => {
    const w = server.addWorkload({ name: 'db-l', labels: { role: 'db' }, enforcementMode: 'visibility_only' });
    const e = enforcer();
    await e.apply({ target: target(w.href), labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'l-11' });
    expect(await e.observe(target(w.href))).toMatchObject({ labels: { quarantine: 'true' }, contained: false });
  });

  describe('protection on the workload as the PCE has it now', () => {
    it.each([
      ['a domain controller by its role label', { role: 'domain-controller', env: 'prod' }],
      ['Cordon itself by its Cordon label key mapped to a PCE key', { app: 'cordon' }],
    ])('%s is refused without approval, before any write', async (_what, labels) => {
      const w = server.addWorkload({ name: 'dc-1', labels });
      const e = enforcer({ labelKeys: { [Q]: 'quarantine', 'app.kubernetes.io/part-of': 'app' } });
      const err = await e.apply({ target: target(w.href), labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'l-p1' }).catch((x: unknown) => x);
      expect(err).toBeInstanceOf(EnforcerError);
      expect(err).toMatchObject({ retriable: false, code: 'protected' });
      expect(server.requests.filter((r) => r.method === 'PUT')).toHaveLength(0);
      expect(server.workloadLabels(w.href)).toEqual(labels);
    });

    it("the playbook's selectors are matched against the PCE's hostname and address; an approval lets it through", async () => {
      const w = server.addWorkload({ name: 'pay-db', labels: { role: 'db' }, ip: '10.9.0.4' });
      const request = { target: { entity: `host:${w.href}`, kind: 'host' as const, ref: w.href }, labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'l-p2' };
      await expect(enforcer().apply({ ...request, protected: [{ names: ['pay-db.example.internal'] }] })).rejects.toMatchObject({ code: 'protected' });
      await expect(enforcer().apply({ ...request, protected: [{ cidrs: ['10.9.0.0/16'] }] })).rejects.toMatchObject({ code: 'protected' });
      await enforcer().apply({ ...request, protected: [{ cidrs: ['10.9.0.0/16'] }], approvedBy: 'user:alice' });
      expect(server.workloadLabels(w.href)).toEqual({ role: 'db', quarantine: 'true' });
    });
  });

  describe('a workload that is gone', () => {
    it.each([
      ['deleted (404)', {}],
      ['kept as deleted: true', { keepRecord: true }],
    ])('revert of a workload %s is a TargetGoneError', async (_what, how) => {
      const w = server.addWorkload({ name: 'gone-1', labels: { role: 'web' } });
      const e = enforcer();
      const snapshot = await e.apply({ target: target(w.href), labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'l-g' });
      server.deleteWorkload(w.href, how);
      const err = await e.revert(snapshot, 'l-g').catch((x: unknown) => x);
      expect(err).toBeInstanceOf(TargetGoneError);
      expect(err).toMatchObject({ retriable: false, code: 'gone' });
      expect(sleeps).toHaveLength(0);
    });
  });

  it('reverts from the snapshot Cordon rebuilds from the ledger after a restart (prior values and extra.applied)', async () => {
    const w = server.addWorkload({ name: 'db-r', labels: { role: 'db', env: 'prod' } });
    const labelKeys = { [Q]: 'quarantine', 'cordon.io/env': 'env' };
    await enforcer({ labelKeys }).apply({ target: target(w.href), labels: { [Q]: 'true', 'cordon.io/env': 'isolation' }, expiresAt: 0, leaseId: 'l-r' });
    // A new process: nothing in memory, only what the ledger's lease holds.
    const rebuilt = { target: target(w.href), labels: { [Q]: null, 'cordon.io/env': 'prod' }, extra: { applied: { [Q]: 'true', 'cordon.io/env': 'isolation' } }, takenAt: 0 };
    await enforcer({ labelKeys }).revert(rebuilt, 'l-r');
    expect(server.workloadLabels(w.href)).toEqual({ role: 'db', env: 'prod' });
  });

  it('refuses a target without a workload href', async () => {
    await expect(enforcer().observe({ entity: 'ip:10.1.1.1', kind: 'ip', ip: '10.1.1.1' })).rejects.toMatchObject({
      retriable: false,
      code: 'target_unsupported',
    });
  });

  it('the config schema fills defaults and needs exactly one secret source', () => {
    const parsed = IllumioEnforcerConfig.parse({ pceUrl: 'https://pce.example.com:8443', orgId: 1, apiKeyId: 'api_1', apiKeySecret: 'x' });
    expect(parsed).toMatchObject({ quarantineLabel: { key: 'quarantine', value: 'true' }, labelKeys: { [Q]: 'quarantine' }, createLabels: true });
    expect(IllumioEnforcerConfig.safeParse({ pceUrl: 'https://pce', orgId: 1, apiKeyId: 'api_1' }).success).toBe(false);
  });
});

describe('connectors/illumio', () => {
  it('the example config is valid', () => {
    const doc = YAML.parse(readFileSync('connectors/illumio/cordon-illumio.example.yaml', 'utf8'));
    expect(IllumioEnforcerConfig.parse(doc.contain.enforcers.illumio)).toMatchObject({ orgId: 1, quarantineLabel: { key: 'quarantine' } });
  });
});
