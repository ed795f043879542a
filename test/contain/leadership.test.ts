import Redis from 'ioredis';
import { Leadership, type Term } from '../../src/contain/leadership';
import { WriterLock } from '../../src/ledger/lock';
import { ledgerKeys } from '../../src/ledger/registry';
import { Metrics } from '../../src/metrics';
import { eventually, REDIS_URL, testLog, uniq } from '../support/stack';

/** Leader election on the ledger lock, with a term that only takes the lock (no Kafka). */
describe('leadership', () => {
  const redis = new Redis(REDIS_URL);
  const prefix = uniq('leadership');
  const made: Leadership[] = [];
  afterAll(async () => {
    for (const l of made) await l.stop();
    redis.disconnect();
  });

  function replica(name: string, ttlMs = 1_500) {
    let lock: WriterLock | undefined;
    const metrics = new Metrics({ defaultMetrics: false });
    let leadership: Leadership;
    const term: Term = {
      start: async (waitMs) => {
        lock = await WriterLock.acquire(redis, prefix, name, { ttlMs, waitMs, onLost: (err) => leadership.lost(err) });
        return { token: lock.token, epoch: lock.epoch };
      },
      stop: async () => lock?.release(),
    };
    leadership = new Leadership({ redis, prefix, url: () => `http://${name}.test:8080`, term, firstWaitMs: 0, sliceMs: 300, metrics, log: testLog });
    made.push(leadership);
    return { leadership, metrics, lock: () => lock };
  }
  const gauge = async (m: Metrics, name: string) => (await m.registry.getSingleMetric(name)!.get()).values[0]?.value;

  it('one leads, the other stands by, and takes over at once when the leader stops', async () => {
    const a = replica('a');
    const b = replica('b');
    await a.leadership.start();
    await b.leadership.start();
    expect(a.leadership.status()).toMatchObject({ role: 'leader', takeovers: 0 });
    expect(b.leadership.status()).toMatchObject({ role: 'standby', takeovers: 0 });
    expect(await b.leadership.leader()).toMatchObject({ url: 'http://a.test:8080', token: a.lock()!.token });
    expect(await gauge(a.metrics, 'cordon_leader')).toBe(1);
    expect(await gauge(b.metrics, 'cordon_leader')).toBe(0);

    const stoppedAt = Date.now();
    await a.leadership.stop();
    await eventually(async () => (b.leadership.leading ? true : undefined), 5_000, 'b leads');
    expect(Date.now() - stoppedAt).toBeLessThan(1_000);
    expect(b.leadership.status()).toMatchObject({ role: 'leader', takeovers: 1 });
    expect(b.leadership.status().epoch).toBeGreaterThan(a.lock()!.epoch);
    expect(await gauge(b.metrics, 'cordon_leader_takeovers_total')).toBe(1);
    expect(await b.leadership.leader()).toMatchObject({ url: 'http://b.test:8080' });
  });

  it('a leader whose lock was taken steps down, campaigns, and leads again once the lock is free', async () => {
    const c = replica('c');
    await eventually(async () => ((await redis.exists(ledgerKeys(prefix).lock)) === 1 ? true : undefined));
    // b (from the first test) leads; c waits; b's lock is stolen by an intruder, b must step down.
    await c.leadership.start();
    expect(c.leadership.status().role).toBe('standby');
    const leaderB = made[1]!;
    await redis.set(ledgerKeys(prefix).lock, 'intruder#999', 'PX', 1_000);
    await eventually(async () => (leaderB.status().role === 'standby' ? true : undefined), 5_000, 'b steps down');
    await eventually(async () => (leaderB.leading || c.leadership.leading ? true : undefined), 8_000, 'someone leads again');
    expect([leaderB.leading, c.leadership.leading].filter(Boolean)).toHaveLength(1);
  });
});
