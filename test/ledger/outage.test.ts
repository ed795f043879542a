import Redis from 'ioredis';
import type { Kafka } from 'kafkajs';
import type { Config } from '../../src/config';
import { verifyLedger } from '../../src/ledger/audit';
import { Ledger } from '../../src/ledger/ledger';
import { LedgerLockLostError } from '../../src/ledger/lock';
import { ledgerKeys } from '../../src/ledger/registry';
import { createLedgerTopic, testKafka } from '../support/kafka';
import { redisAddress, TcpProxy } from '../support/tcp-proxy';
import { eventually, REDIS_URL, testConfig, testLog } from '../support/stack';
import { mixedEntries, quarantineHistory } from './fixtures';

/**
 * The ledger writer across a Redis outage longer than its lock's TTL (real Kafka and Redis; the
 * writer reaches Redis through a TCP proxy the test cuts, the shared Redis keeps running).
 */

const TTL = 1_000;
let kafka: Kafka;
let redis: Redis;
const topics: string[] = [];

beforeAll(() => {
  kafka = testKafka();
  redis = new Redis(REDIS_URL);
});
afterAll(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics }).catch(() => undefined);
  await admin.disconnect();
  redis.disconnect();
});

async function setup(name: string): Promise<Config> {
  const config = testConfig(name);
  await createLedgerTopic(kafka, config);
  topics.push(config.kafka.topics.ledger);
  return config;
}

describe('the ledger writer after a Redis outage longer than its lock TTL', () => {
  const { host, port } = redisAddress(REDIS_URL);
  let proxy: TcpProxy;
  let viaProxy: Redis;

  beforeEach(async () => {
    proxy = new TcpProxy(host, port);
    await proxy.start();
    viaProxy = new Redis(proxy.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  });
  afterEach(async () => {
    viaProxy.disconnect();
    await proxy.stop();
  });

  const open = (config: Config, r: Redis, owner: string) =>
    Ledger.open({ kafka, redis: r, log: testLog, topic: config.kafka.topics.ledger, prefix: config.redis.keyPrefix, owner, lockTtlMs: TTL });

  it('takes its lapsed lock back when Redis returns and nobody took it, and goes on appending; unwritable says why meanwhile', async () => {
    const config = await setup('ledger-outage');
    const keys = ledgerKeys(config.redis.keyPrefix);
    const ledger = await open(config, viaProxy, 'replica-a');
    try {
      await ledger.append(mixedEntries(1)[0]!);
      expect(ledger.unwritable).toBeUndefined();

      proxy.cut();
      await eventually(async () => ((await redis.exists(keys.lock)) === 0 ? true : undefined), 5_000, 'the lock lapsed');
      await expect(ledger.append(mixedEntries(2)[1]!)).rejects.toThrow();
      expect(ledger.unwritable).toMatch(/^the ledger writer lock could not be renewed since \S+ \(.+\); appends wait until Redis answers$/);

      proxy.restore();
      await eventually(async () => (ledger.unwritable === undefined ? true : undefined), 5_000, 'the writer writable again');
      expect(await redis.get(keys.lock)).toBe(ledger.token);
      expect((await ledger.append(mixedEntries(3)[2]!)).seq).toBe(2);
    } finally {
      await ledger.close();
    }
    expect(await verifyLedger(kafka, config.kafka.topics.ledger)).toMatchObject({ ok: true, count: 2 });
  }, 30_000);

  it('does not take it back when another writer took it during the outage: it stops, and says so', async () => {
    const config = await setup('ledger-outage-taken');
    const keys = ledgerKeys(config.redis.keyPrefix);
    const first = await open(config, viaProxy, 'replica-a');
    let second: Ledger | undefined;
    try {
      await first.append(mixedEntries(1)[0]!);
      proxy.cut();
      await eventually(async () => ((await redis.exists(keys.lock)) === 0 ? true : undefined), 5_000, 'the lock lapsed');
      second = await open(config, redis, 'replica-b');
      await second.append(mixedEntries(2)[1]!);
      await second.close(); // the lock is free again, but the epoch has moved on
      second = undefined;

      proxy.restore();
      await eventually(async () => (/stopped appending/.test(first.unwritable ?? '') ? true : undefined), 5_000, 'the first writer stopped');
      expect(first.unwritable).toMatch(/expired or was taken by another writer/);
      await expect(first.append(mixedEntries(3)[2]!)).rejects.toThrow(LedgerLockLostError);
      expect(await redis.get(keys.lock)).toBeNull();
    } finally {
      await second?.close();
      await first.close();
    }
    expect(await verifyLedger(kafka, config.kafka.topics.ledger)).toMatchObject({ ok: true, count: 2 });
  }, 30_000);

  it('a lock that lapses while an append is in flight (its registry update fenced) is taken back and the update made: the writer goes on', async () => {
    const config = await setup('ledger-lapse-inflight');
    const keys = ledgerKeys(config.redis.keyPrefix);
    const ledger = await open(config, redis, 'replica-a');
    const history = quarantineHistory();
    try {
      for (const [i, entry] of history.entries()) {
        // Redis expiring the lock at some moment of the append: before the send, during it, or after.
        const lapse = new Promise((r) => setTimeout(r, i % 4)).then(() => redis.del(keys.lock));
        await ledger.append(entry);
        await lapse;
      }
      expect(ledger.unwritable).toBeUndefined();
      await ledger.append(mixedEntries(1)[0]!);
      const live = Object.fromEntries((await ledger.registry.all()).map((l) => [l.target, l.state]));
      expect(live).toMatchObject({ 'pod:a': 'applied', 'pod:b': 'applied', 'pod:c': 'released', 'pod:d': 'expired', 'pod:e': 'failed', 'pod:f': 'pending' });
    } finally {
      await ledger.close();
    }
    expect(await verifyLedger(kafka, config.kafka.topics.ledger)).toMatchObject({ ok: true, count: history.length + 1 });
  }, 30_000);
});
