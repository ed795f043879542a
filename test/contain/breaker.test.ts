import Redis from 'ioredis';
import type { Kafka } from 'kafkajs';
import type { Config } from '../../src/config';
import { CircuitBreaker, type AdmitRequest, type BreakerLimits, type PlaybookLimits } from '../../src/contain/breaker';
import { Quarantines } from '../../src/contain/quarantine';
import type { Target } from '../../src/enforcer/enforcer';
import { LabelStoreEnforcer } from '../../src/enforcer/label-store';
import { exportLedger } from '../../src/ledger/audit';
import { Ledger } from '../../src/ledger/ledger';
import type { LedgerRecord } from '../../src/ledger/records';
import { createTopics, deleteTopics, testKafka } from '../support/kafka';
import { REDIS_URL, testConfig, testLog } from '../support/stack';

/**
 * The caps and breakers one quarantine at a time passes (src/contain/breaker.ts), on real Redis and
 * the real ledger: atomic under concurrency, counted from the live leases, approved ones exempt,
 * the service breaker opening and closing with its ledger records.
 */

const WIDE: BreakerLimits = { maxConcurrent: 1000, maxNew: 1000, windowMs: 600_000, coolDownMs: 60_000 };
const pb = (over: Partial<PlaybookLimits> = {}): PlaybookLimits => ({ playbook: 'caps', maxConcurrent: 1000, maxNew: 1000, windowMs: 600_000, per: '10m', ...over });
const T0 = Date.UTC(2026, 0, 1);

describe('CircuitBreaker (real Redis, real ledger)', () => {
  let kafka: Kafka;
  let redis: Redis;
  const configs: Config[] = [];
  const ledgers: Ledger[] = [];

  beforeAll(() => {
    kafka = testKafka();
    redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    for (const l of ledgers) await l.close();
    for (const c of configs) await deleteTopics(kafka, c);
    redis.disconnect();
  });

  async function setup(name: string, limits: BreakerLimits = WIDE) {
    const config = testConfig(name);
    configs.push(config);
    await createTopics(kafka, config);
    const prefix = config.redis.keyPrefix;
    const ledger = await Ledger.open({ kafka, redis, topic: config.kafka.topics.ledger, prefix, log: testLog });
    ledgers.push(ledger);
    const breaker = new CircuitBreaker(redis, prefix, ledger, limits, testLog);
    const q = new Quarantines({ ledger, enforcers: new Map([['labelstore', new LabelStoreEnforcer(redis, prefix)]]), schedule: async () => undefined, log: testLog });
    const target = (n: number): Target => ({ entity: `ip:10.9.0.${n}`, kind: 'ip', ip: `10.9.0.${n}` });
    const contain = (incidentId: string, n: number) =>
      q.contain({ target: target(n), enforcer: 'labelstore', labels: { 'cordon.io/quarantine': 'true' }, ttlMs: 3_600_000, incidentId, actor: 'playbook:caps@1', reason: 'test' });
    const records = async (): Promise<LedgerRecord[]> => {
      const out: LedgerRecord[] = [];
      await exportLedger(kafka, config.kafka.topics.ledger, (line) => void out.push(JSON.parse(line) as LedgerRecord));
      return out;
    };
    return { breaker, q, target, contain, records };
  }

  const req = (n: number, limits: PlaybookLimits, approved = false): AdmitRequest => ({ incidentId: `inc-${n}`, target: `ip:10.9.0.${n}`, approved, limits });

  it('concurrent admissions never pass a cap together: of 12 at once under max_concurrent_quarantines 3, exactly 3 pass', async () => {
    const { breaker } = await setup('brk-atomic');
    const limits = pb({ maxConcurrent: 3 });
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => breaker.admit(T0, req(i, limits))));
    expect(results.filter((r) => r.ok)).toHaveLength(3);
    const refused = results.filter((r): r is { ok: false; reason: string } => !r.ok);
    expect(new Set(refused.map((r) => r.reason))).toEqual(new Set(['max_concurrent_quarantines 3 reached: 3 live quarantines of playbook caps']));
  });

  it('counts the live quarantines of the playbook; an ended one no longer counts; an approved one is exempt but counts', async () => {
    const { breaker, q, contain, target } = await setup('brk-live');
    const limits = pb({ maxConcurrent: 1 });
    expect(await breaker.admit(T0, req(1, limits, true))).toEqual({ ok: true });
    await contain('inc-1', 1);
    expect(await breaker.admit(T0, req(2, limits))).toEqual({ ok: false, reason: 'max_concurrent_quarantines 1 reached: 1 live quarantines of playbook caps' });
    expect(await breaker.admit(T0, req(3, limits, true))).toEqual({ ok: true }); // approved: past the cap
    await q.release(target(1).entity, { incidentId: 'inc-1', actor: 'user:alice', reason: 'done' });
    // inc-3 was admitted but never applied: in flight, it counts for a while, then no longer
    expect((await breaker.admit(T0, req(4, limits))).ok).toBe(false);
    expect(await breaker.admit(T0 + 61_000, req(4, limits))).toEqual({ ok: true });
    // another playbook has its own count
    expect(await breaker.admit(T0, req(5, pb({ playbook: 'other', maxConcurrent: 1 })))).toEqual({ ok: true });
  });

  it("the playbook's circuit_breaker: past max_new_quarantines within the window, refused until the window moves on", async () => {
    const { breaker } = await setup('brk-rate');
    const limits = pb({ maxNew: 2, windowMs: 600_000, per: '10m' });
    expect((await breaker.admit(T0, req(1, limits))).ok).toBe(true);
    expect((await breaker.admit(T0 + 1000, req(2, limits))).ok).toBe(true);
    expect(await breaker.admit(T0 + 2000, req(3, limits))).toEqual({ ok: false, reason: 'circuit breaker tripped: 2 quarantines in 10m (playbook caps, circuit_breaker 2 per 10m)' });
    expect((await breaker.admit(T0 + 2000, req(4, limits, true))).ok).toBe(true); // approved: exempt, and not counted as new
    expect((await breaker.admit(T0 + 600_500, req(3, limits))).ok).toBe(true); // the first has left the window
    expect((await breaker.admit(T0 + 600_600, req(5, limits))).ok).toBe(false);
  });

  it('the service cap counts every live lease; the service breaker opens and closes with ledger records', async () => {
    const { breaker, contain, records } = await setup('brk-service', { maxConcurrent: 1, maxNew: 2, windowMs: 600_000, coolDownMs: 60_000 });
    await contain('inc-9', 9);
    expect(await breaker.admit(T0, req(1, pb()))).toEqual({ ok: false, reason: 'service cap reached: 1 quarantines live (contain.breaker.maxConcurrent 1)' });

    const { breaker: rate, records: rateRecords } = await setup('brk-service-rate', { maxConcurrent: 100, maxNew: 2, windowMs: 600_000, coolDownMs: 60_000 });
    expect((await rate.admit(T0, req(1, pb()))).ok).toBe(true);
    expect((await rate.admit(T0, req(2, pb()))).ok).toBe(true);
    const opened = await rate.admit(T0 + 10, req(3, pb()));
    expect(opened).toEqual({ ok: false, reason: expect.stringMatching(/^service circuit breaker tripped: 2 new quarantines within 600 s \(limit 2\)/) });
    expect(await rate.admit(T0 + 20, req(4, pb()))).toEqual({ ok: false, reason: `service circuit breaker tripped: open until ${new Date(T0 + 60_010).toISOString()}` });
    expect((await rate.admit(T0 + 30, req(5, pb(), true))).ok).toBe(true); // approved: exempt
    // after the cool-down it closes (the window is still full, so it opens again at once)
    expect((await rate.admit(T0 + 60_011, req(6, pb()))).ok).toBe(false);
    await ledgers.at(-1)!.close();
    await ledgers.at(-2)!.close();
    ledgers.splice(-2);
    expect((await records()).map((r) => r.action)).toEqual(['quarantine_applied', 'quarantine_applied']);
    expect((await rateRecords()).map((r) => r.action)).toEqual(['circuit_breaker_opened', 'circuit_breaker_closed', 'circuit_breaker_opened']);
  });
});
