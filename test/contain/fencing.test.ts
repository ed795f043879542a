import Redis from 'ioredis';
import type { Kafka } from 'kafkajs';
import type { Config } from '../../src/config';
import { Quarantines } from '../../src/contain/quarantine';
import { FencedCallError, type Target } from '../../src/enforcer/enforcer';
import { LabelStoreEnforcer } from '../../src/enforcer/label-store';
import { verifyLedger } from '../../src/ledger/audit';
import { Ledger } from '../../src/ledger/ledger';
import { LedgerLockLostError } from '../../src/ledger/lock';
import { ledgerKeys } from '../../src/ledger/registry';
import { createTopics, deleteTopics, testKafka } from '../support/kafka';
import { REDIS_URL, testConfig, testLog } from '../support/stack';

/**
 * A leader paused (or cut off) longer than its lock's TTL, resumed after a standby took over:
 * the ledger refuses its appends, and the label store refuses its enforcer calls in the same step
 * that checks the lock. The new leader's calls go through; the ledger verifies.
 */
const web: Target = { entity: 'pod:shop/web-1', kind: 'pod', name: 'web-1', namespace: 'shop' };
const QUARANTINE = { 'cordon.io/quarantine': 'true' };

describe('a stale leader is fenced', () => {
  let kafka: Kafka;
  let redis: Redis;
  let config: Config;
  const ledgers: Ledger[] = [];

  beforeAll(async () => {
    kafka = testKafka();
    redis = new Redis(REDIS_URL);
    config = testConfig('fencing');
    await createTopics(kafka, config);
  });
  afterAll(async () => {
    for (const l of ledgers) await l.close().catch(() => undefined);
    await deleteTopics(kafka, config);
    redis.disconnect();
  });

  const open = async (owner: string, onLockLost?: (err: LedgerLockLostError) => void) => {
    const ledger = await Ledger.open({ kafka, redis, topic: config.kafka.topics.ledger, prefix: config.redis.keyPrefix, log: testLog, owner, lockTtlMs: 3_000, ...(onLockLost ? { onLockLost } : {}) });
    ledgers.push(ledger);
    const enforcer = new LabelStoreEnforcer(redis, config.redis.keyPrefix);
    const q = new Quarantines({ ledger, enforcers: new Map([['labelstore', enforcer]]), schedule: async () => {}, log: testLog });
    return { ledger, enforcer, q };
  };

  it('refuses the old leader’s ledger appends and enforcer calls once a newer epoch holds the lock', async () => {
    const lost: LedgerLockLostError[] = [];
    const old = await open('old-leader', (err) => lost.push(err));
    const applied = await old.q.contain({ target: web, enforcer: 'labelstore', labels: QUARANTINE, ttlMs: 60_000, incidentId: 'inc-1', actor: 'service:test', reason: 'contain' });
    expect(applied.state).toBe('applied');
    const staleFence = await old.ledger.fence();

    // The old leader's lock lapses (it was paused past its TTL) and a standby takes over.
    await redis.del(ledgerKeys(config.redis.keyPrefix).lock);
    const next = await open('new-leader');
    expect(next.ledger.epoch).toBeGreaterThan(old.ledger.epoch);

    await expect(old.ledger.append({ actor: 'service:test', action: 'incident_updated', target: web.entity, before: null, after: { status: 'closed', from: 'open' }, reason: 'late write' })).rejects.toThrow(LedgerLockLostError);
    expect(lost).toHaveLength(1);
    const before = await next.enforcer.changes(web);
    await expect(next.enforcer.revert({ target: web, labels: { 'cordon.io/quarantine': null }, takenAt: Date.now() }, 'lease', staleFence)).rejects.toThrow(FencedCallError);
    await expect(next.enforcer.apply({ target: web, labels: { 'cordon.io/zone': 'x' }, expiresAt: Date.now() + 1000, leaseId: 'l', fence: staleFence })).rejects.toMatchObject({ code: 'fenced', retriable: false });
    await expect(old.q.release(web.entity, { actor: 'service:test', reason: 'late release' })).rejects.toThrow(LedgerLockLostError);
    expect(await next.enforcer.changes(web)).toEqual(before);
    expect((await next.enforcer.observe(web)).contained).toBe(true);

    const released = await next.q.release(web.entity, { actor: 'service:test', reason: 'new leader releases' });
    expect(released?.state).toBe('released');
    expect(await next.enforcer.changes(web)).toMatchObject({ applied: 1, reverted: 1 });
    const report = await verifyLedger(kafka, config.kafka.topics.ledger);
    expect(report.ok).toBe(true);
  }, 60_000);
});
