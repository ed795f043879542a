import { freePort } from '../../bench/support/cordon-process';
import type { Config } from '../../src/config';
import { LabelStoreEnforcer } from '../../src/enforcer/label-store';
import { sha256Hex } from '../../src/http/auth';
import type { Lease, LedgerRecord } from '../../src/ledger/records';
import { Service } from '../../src/service';
import { autoPlaybook, ledgerRecords, playbookDir, publishIncident, syntheticIncident } from '../contain/support';
import { createTopics, deleteTopics, testKafka } from '../support/kafka';
import { eventually, testConfig, testLog } from '../support/stack';

/**
 * POST /api/quarantines against a real service (Kafka, Redis, BullMQ, the label-store enforcer),
 * and a second replica of it as a standby that forwards the request to the leader.
 */
const TOKENS = { viewer: 'viewer-token-0123456789abcdef', responder: 'responder-token-0123456789abcdef', approver: 'approver-token-0123456789abcdef' };

/** Protects 10.99.0.0/16 on top of the built-in selectors; quarantines an incident's root for 1h. */
const PLAYBOOK = autoPlaybook('manual-http', `  - id: quarantine-root
    type: quarantine
    target: root
    enforcer: labelstore
    ttl: 1h
`).replace('safety:\n', 'safety:\n  protected:\n    - cidrs: [10.99.0.0/16]\n');

describe('manual quarantine over HTTP (real Kafka, Redis, BullMQ; label-store enforcer)', () => {
  const kafka = testKafka();
  let config: Config;
  let leader: Service;
  let standby: Service;
  let base = '';
  let standbyBase = '';
  const url = (s: Service) => `http://127.0.0.1:${(s.http.server.address() as { port: number }).port}`;
  const post = async (path: string, token: string | undefined, body: unknown, at = base) => {
    const res = await fetch(`${at}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
    return { status: res.status, type: res.headers.get('content-type') ?? '', servedBy: res.headers.get('x-cordon-served-by'), json: (await res.json()) as Record<string, unknown> };
  };
  const quarantine = (body: unknown, token: string | undefined = TOKENS.responder, at = base) => post('/api/quarantines', token, body, at);
  const labels = () => new LabelStoreEnforcer(leader.redis, config.redis.keyPrefix);
  const records = async (target: string) => (await ledgerRecords(kafka, config)).filter((r: LedgerRecord) => r.target === target);

  beforeAll(async () => {
    config = testConfig('manual-http', {
      contain: { playbooks: playbookDir('manual-http', PLAYBOOK), reconcileIntervalMs: 500, enforcers: { labelstore: true } },
      auth: { tokens: Object.entries(TOKENS).map(([role, token]) => ({ name: `${role}-1`, role, sha256: sha256Hex(token) })) },
    });
    await createTopics(kafka, config);
    // Fixed ports: a replica advertises its URL to the others when it starts leading, before it listens.
    leader = new Service({ ...config, http: { ...config.http, port: await freePort() } }, testLog);
    await leader.start();
    base = url(leader);
    standby = new Service({ ...config, http: { ...config.http, port: await freePort() } }, testLog);
    await standby.start();
    standbyBase = url(standby);
  }, 90_000);
  afterAll(async () => {
    await standby?.stop();
    await leader?.stop();
    await deleteTopics(kafka, config);
  });

  it('a responder quarantines by hand: 201 with the applied lease, the labels on the target, who and why in the ledger; release ends it', async () => {
    const target = 'ip:10.50.0.1';
    const before = Date.now();
    const r = await quarantine({ entity: target, ttl: '2h', reason: 'beaconing to a known C2 host' });
    expect(r.status).toBe(201);
    const lease = r.json as unknown as Lease;
    expect(lease).toMatchObject({ target, state: 'applied', enforcer: 'labelstore', labels: { 'cordon.io/quarantine': 'true' } });
    expect(lease.holders).toEqual([expect.stringMatching(/^manual\.responder-1\.[0-9a-z]+$/)]);
    expect(lease.expiresAt).toBeGreaterThanOrEqual(before + 7_200_000);
    expect(lease.expiresAt).toBeLessThan(Date.now() + 7_200_000 + 1_000);
    expect((await labels().observe({ entity: target, kind: 'ip', ip: '10.50.0.1' })).labels).toEqual({ 'cordon.io/quarantine': 'true' });

    const applied = await eventually(async () => {
      const rs = await records(target);
      return rs.some((x) => x.action === 'quarantine_applied' && (x.after as Lease).state === 'applied') ? rs : undefined;
    }, 20_000, 'ledger records');
    expect(applied.map((x) => [x.action, (x.after as Lease).state, x.actor, x.reason, x.incidentId])).toEqual([
      ['quarantine_applied', 'pending', 'user:responder-1', 'pending: beaconing to a known C2 host', lease.holders[0]],
      ['quarantine_applied', 'applied', 'user:responder-1', 'beaconing to a known C2 host', lease.holders[0]],
    ]);

    const again = await quarantine({ entity: target, ttl: '1h', reason: 'asked twice' }, TOKENS.approver);
    expect(again.status).toBe(409);
    expect(again.json.detail).toMatch(new RegExp(`^${target} is already quarantined by hand \\(manual\\.responder-1\\.[0-9a-z]+\\) until .*: extend it instead$`));

    const released = await post(`/api/quarantines/${encodeURIComponent(target)}/release`, TOKENS.responder, { reason: 'host reimaged' });
    expect(released.status).toBe(200);
    expect(released.json).toMatchObject({ target, state: 'released', outcome: 'restored', holders: [] });
    expect((await labels().observe({ entity: target, kind: 'ip', ip: '10.50.0.1' })).labels).toEqual({});
    const end = await eventually(async () => (await records(target)).find((x) => x.action === 'quarantine_released'), 20_000, 'release record');
    expect(end).toMatchObject({ actor: 'user:responder-1', reason: 'host reimaged' });
  }, 60_000);

  it('an approver may too; the lease expires at its TTL like any other', async () => {
    const target = 'vm:build-7';
    const r = await quarantine({ entity: target, ttl: '2s', reason: 'short containment test', enforcer: 'labelstore' }, TOKENS.approver);
    expect(r.status).toBe(201);
    expect(r.json).toMatchObject({ target, state: 'applied', holders: [expect.stringMatching(/^manual\.approver-1\./)] });
    const expired = await eventually(async () => {
      const l = await leader.containment!.quarantines.registry.get(target);
      return l?.state === 'expired' ? l : undefined;
    }, 20_000, 'expiry');
    expect(expired.holders).toEqual([]);
    expect((await labels().observe({ entity: target, kind: 'vm', name: 'build-7' })).labels).toEqual({});
  }, 30_000);

  it('joins the lease of an incident that holds the target (reference counted): releasing the incident leaves it held by hand', async () => {
    const incident = syntheticIncident('manual-join');
    await publishIncident(kafka, config, incident);
    const held = await eventually(async () => {
      const l = await leader.containment!.quarantines.registry.get(incident.root);
      return l?.state === 'applied' ? l : undefined;
    }, 30_000, 'incident quarantine');
    const r = await quarantine({ entity: incident.root, ttl: '3h', reason: 'keep it past the playbook TTL' });
    expect(r.status).toBe(201);
    const lease = r.json as unknown as Lease;
    expect(lease.holders).toEqual([incident.id, expect.stringMatching(/^manual\.responder-1\./)]);
    expect(lease.expiresAt).toBeGreaterThan(held.expiresAt);
    const after = await leader.containment!.quarantines.release(incident.root, { incidentId: incident.id, actor: 'service:test', reason: 'incident closed' });
    expect(after).toMatchObject({ state: 'applied', holders: [lease.holders[1]] });
  }, 60_000);

  it('refuses protected targets with 409 and touches nothing: the built-in label, a playbook\'s safety.protected', async () => {
    const cordonPod = { entity: 'pod:cordon/cordon-0', kind: 'pod' as const, namespace: 'cordon', name: 'cordon-0' };
    await labels().setLabels(cordonPod, { 'app.kubernetes.io/part-of': 'cordon' });
    const builtIn = await quarantine({ entity: cordonPod.entity, ttl: '1h', reason: 'looks odd' }, TOKENS.approver);
    expect(builtIn.status).toBe(409);
    expect(builtIn.type).toMatch(/^application\/problem\+json/);
    expect(builtIn.json.detail).toBe(
      "pod:cordon/cordon-0 is protected (labels app.kubernetes.io/part-of=cordon): it is never quarantined by hand, with no override; only a playbook's safety.protected_approval, decided by an approver, contains it",
    );
    const configured = await quarantine({ entity: 'ip:10.99.3.4', ttl: '1h', reason: 'looks odd' });
    expect(configured.status).toBe(409);
    expect(configured.json.detail).toMatch(/^ip:10\.99\.3\.4 is protected \(cidrs 10\.99\.0\.0\/16\)/);
    expect(await leader.containment!.quarantines.registry.get(cordonPod.entity)).toBeUndefined();
    expect(await leader.containment!.quarantines.registry.get('ip:10.99.3.4')).toBeUndefined();
    expect((await labels().changes(cordonPod)).applied).toBe(0);
  });

  it('401 without a token, 403 for a viewer, whatever the body', async () => {
    const none = await post('/api/quarantines', undefined, {});
    expect(none.status).toBe(401);
    expect(none.json.detail).toBe('a valid bearer token is required');
    const viewer = await quarantine({ entity: 'ip:10.50.0.2', ttl: '1h', reason: 'looks odd' }, TOKENS.viewer);
    expect(viewer.status).toBe(403);
    expect(viewer.json.detail).toBe('role viewer may not do this; it needs responder');
    expect(await leader.containment!.quarantines.registry.get('ip:10.50.0.2')).toBeUndefined();
  });

  it('a bad body is a 400 problem naming the field; a TTL past the extension bounds is refused naming the bound', async () => {
    const cases: Array<[unknown, string]> = [
      [{ ttl: '1h', reason: 'no entity' }, 'body.entity: '],
      [{ entity: 'ip:999.1.1.1', ttl: '1h', reason: 'bad ip' }, 'body.entity: 999.1.1.1 is not an IP address'],
      [{ entity: 'pod:web-1', ttl: '1h', reason: 'no namespace' }, 'body.entity: a pod is pod:<namespace>/<name>'],
      [{ entity: 'ip:10.50.0.3', ttl: 'forever', reason: 'bad ttl' }, 'body.ttl: '],
      [{ entity: 'ip:10.50.0.3', ttl: '1h', reason: 'no' }, 'body.reason: say why (at least 3 characters)'],
      [{ entity: 'ip:10.50.0.3', ttl: '1h', reason: 'unknown layer', enforcer: 'nftables' }, 'body.enforcer: no enforcer named nftables is configured (configured: labelstore)'],
      [{ entity: 'ip:10.50.0.3', ttl: '2d', reason: 'too long' }, 'body.ttl: 2d is longer than the longest extension, 1d (contain.maxExtensionMs)'],
      [{ entity: 'ip:10.50.0.3', ttl: '30d', reason: 'far too long' }, 'body.ttl: 30d is above the hard limit of a quarantine, 7d'],
    ];
    for (const [body, detail] of cases) {
      const r = await quarantine(body);
      expect({ body, status: r.status, detail: String(r.json.detail).slice(0, detail.length) }).toEqual({ body, status: 400, detail });
    }
    expect(await leader.containment!.quarantines.registry.get('ip:10.50.0.3')).toBeUndefined();
  });

  it('a standby forwards it to the leader, which contains and records it', async () => {
    expect(standby.leadership!.leading).toBe(false);
    const r = await quarantine({ entity: 'ip:10.50.0.9', ttl: '1h', reason: 'sent to the standby' }, TOKENS.responder, standbyBase);
    expect(r.status).toBe(201);
    expect(r.servedBy).toBe(base);
    expect(r.json).toMatchObject({ target: 'ip:10.50.0.9', state: 'applied' });
    expect((await leader.containment!.quarantines.registry.get('ip:10.50.0.9'))?.state).toBe('applied');
    const refused = await quarantine({ entity: 'ip:10.50.0.10', ttl: '1h', reason: 'no' }, TOKENS.responder, standbyBase);
    // The standby checks the body itself before it forwards anything.
    expect(refused).toMatchObject({ status: 400, servedBy: null, json: { detail: 'body.reason: say why (at least 3 characters)' } });
  }, 30_000);
});
