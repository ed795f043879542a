import Redis from 'ioredis';
import type { Kafka } from 'kafkajs';
import type { Config } from '../../src/config';
import { Quarantines } from '../../src/contain/quarantine';
import type { ApplyRequest, Target } from '../../src/enforcer/enforcer';
import { LabelStoreEnforcer } from '../../src/enforcer/label-store';
import { verifyLedger } from '../../src/ledger/audit';
import { Ledger } from '../../src/ledger/ledger';
import { createTopics, deleteTopics, testKafka } from '../support/kafka';
import { REDIS_URL, testConfig, testLog } from '../support/stack';

const web: Target = { entity: 'pod:shop/web-1', kind: 'pod', name: 'web-1', namespace: 'shop' };
const QUARANTINE = { 'cordon.io/quarantine': 'true' };

describe('quarantine leases on the real ledger', () => {
  let kafka: Kafka;
  let redis: Redis;
  const configs: Config[] = [];

  beforeAll(() => {
    kafka = testKafka();
    redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    for (const c of configs) await deleteTopics(kafka, c);
    redis.disconnect();
  });

  async function setup(name: string, clock: () => number = Date.now) {
    const config = testConfig(name);
    configs.push(config);
    await createTopics(kafka, config);
    const ledger = await Ledger.open({ kafka, redis, topic: config.kafka.topics.ledger, prefix: config.redis.keyPrefix, log: testLog });
    const enforcer = new LabelStoreEnforcer(redis, config.redis.keyPrefix);
    const scheduled: number[] = [];
    const q = new Quarantines({ ledger, enforcers: new Map([['labelstore', enforcer]]), schedule: async (l) => void scheduled.push(l.expiresAt), log: testLog, clock });
    return { config, ledger, enforcer, q, scheduled };
  }

  const req = (incidentId: string, ttlMs = 60_000) => ({
    target: web,
    enforcer: 'labelstore',
    labels: QUARANTINE,
    ttlMs,
    incidentId,
    actor: 'playbook:auto-quarantine@abc123',
    reason: 'test',
  });

  it('two incidents on one workload share one lease; the last release restores the original labels exactly', async () => {
    const { config, ledger, enforcer, q } = await setup('two-incidents');
    await enforcer.setLabels(web, { app: 'web', 'cordon.io/quarantine': 'false' });

    const first = await q.contain(req('inc-a'));
    const second = await q.contain(req('inc-b', 120_000));
    expect(first.state).toBe('applied');
    expect(second.holders).toEqual(['inc-a', 'inc-b']);
    expect(second.expiresAt).toBeGreaterThan(first.expiresAt);
    expect(second.priorLabels).toEqual({ 'cordon.io/quarantine': 'false' });
    expect(await enforcer.changes(web)).toMatchObject({ applied: 1, reverted: 0 });

    const afterFirst = await q.release(web.entity, { incidentId: 'inc-a', actor: 'user:alice', reason: 'first incident closed' });
    expect(afterFirst?.state).toBe('applied');
    expect(afterFirst?.holders).toEqual(['inc-b']);
    expect((await enforcer.observe(web)).labels['cordon.io/quarantine']).toBe('true');

    const afterSecond = await q.release(web.entity, { incidentId: 'inc-b', actor: 'user:alice', reason: 'second incident closed' });
    expect(afterSecond?.state).toBe('released');
    expect((await enforcer.observe(web)).labels).toEqual({ app: 'web', 'cordon.io/quarantine': 'false' });
    const changes = await enforcer.changes(web);
    expect(changes).toMatchObject({ applied: 1, reverted: 1 });
    expect(changes.revertedAt).toBeGreaterThanOrEqual(changes.appliedAt!);
    expect(changes.appliedAt).toBeGreaterThan(Date.now() - 60_000);

    await ledger.close();
    const verified = await verifyLedger(kafka, config.kafka.topics.ledger);
    expect(verified).toMatchObject({ ok: true, count: 5 });
  });

  it('is idempotent: containing twice for one incident changes nothing the second time', async () => {
    const { ledger, enforcer, q } = await setup('idempotent');
    await q.contain(req('inc-a'));
    const seq = ledger.head.seq;
    await q.contain(req('inc-a'));
    expect(ledger.head.seq).toBe(seq);
    expect(await enforcer.changes(web)).toMatchObject({ applied: 1, reverted: 0 });
    await ledger.close();
  });

  it('contains a target at most once per incident: a step retried after the hold ended (or joining a later lease) leaves it alone', async () => {
    let now = Date.now();
    const { ledger, enforcer, q } = await setup('once-per-incident', () => now);
    await q.contain(req('inc-a', 10_000));
    now += 11_000;
    expect((await q.release(web.entity, { actor: 'service:cordon', reason: 'lease expired', expired: true }))?.state).toBe('expired');
    const seq = ledger.head.seq;

    // The step's job retried after a restart that outlasted the TTL: nothing applied again, nothing recorded.
    expect((await q.contain(req('inc-a', 10_000))).state).toBe('expired');
    expect(ledger.head.seq).toBe(seq);
    expect(await enforcer.changes(web)).toMatchObject({ applied: 1, reverted: 1 });

    // Another incident still contains it, and the first one's retry does not join that lease.
    expect((await q.contain(req('inc-b', 10_000))).holders).toEqual(['inc-b']);
    expect((await q.contain(req('inc-a', 60_000))).holders).toEqual(['inc-b']);
    expect(await enforcer.changes(web)).toMatchObject({ applied: 2, reverted: 1 });
    await ledger.close();
  });

  it('expires only once the expiry has passed, for every holder at once', async () => {
    let now = Date.now();
    const { ledger, enforcer, q } = await setup('expiry', () => now);
    await q.contain(req('inc-a', 30_000));
    await q.contain(req('inc-b', 10_000));
    expect((await q.release(web.entity, { actor: 'service:cordon', reason: 'early', expired: true }))?.state).toBe('applied');
    now += 31_000;
    const expired = await q.release(web.entity, { actor: 'service:cordon', reason: 'lease expired', expired: true });
    expect(expired?.state).toBe('expired');
    expect(expired?.holders).toEqual([]);
    expect((await enforcer.observe(web)).contained).toBe(false);
    await ledger.close();
  });

  it("passes the step's cut_connections, the protected selectors and who approved to the enforcer's apply", async () => {
    const { ledger, enforcer, q } = await setup('apply-request');
    const seen: ApplyRequest[] = [];
    const apply = enforcer.apply.bind(enforcer);
    enforcer.apply = (r) => (seen.push(r), apply(r));
    const selector = { names: ['db-*'] };
    await q.contain({ ...req('inc-cut'), cutConnections: false, protected: [selector], approvedBy: 'user:alice' });
    expect(seen).toEqual([expect.objectContaining({ target: web, cutConnections: false, protected: [selector], approvedBy: 'user:alice' })]);
    await q.release(web.entity, { incidentId: 'inc-cut', actor: 'user:alice', reason: 'done' });
    await q.contain({ ...req('inc-cut-2'), cutConnections: true });
    expect(seen[1]).toMatchObject({ cutConnections: true });
    await ledger.close();
  });

  it('records a failed apply on the lease with the reason, and applies nothing', async () => {
    const { ledger, enforcer, q } = await setup('failure');
    // The layer refuses (e.g. 403): an enforcer error that retrying will not cure.
    jest.spyOn(enforcer, 'apply').mockRejectedValue(Object.assign(new Error('layer refused: forbidden'), { retriable: false }));
    await expect(q.contain({ ...req('inc-b'), target: { ...web, entity: 'pod:shop/web-3', name: 'web-3' } })).rejects.toThrow('forbidden');
    const lease = await q.registry.get('pod:shop/web-3');
    expect(lease?.state).toBe('failed');
    expect(await enforcer.changes({ ...web, entity: 'pod:shop/web-3' })).toMatchObject({ applied: 0, reverted: 0 });
    await ledger.close();
  });
});
