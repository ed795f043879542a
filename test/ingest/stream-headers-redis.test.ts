import { readFileSync } from 'node:fs';
import path from 'node:path';
import Redis from 'ioredis';
import type { Batch, KafkaMessage } from 'kafkajs';
import { Intake } from '../../src/ingest/intake';
import { IntakePool } from '../../src/ingest/intake-pool';
import { StreamHeaderStore, parseStored } from '../../src/ingest/stream-headers';
import { createLogger } from '../../src/logger';
import { Metrics } from '../../src/metrics';
import { REDIS_URL, testConfig } from '../support/stack';

/**
 * The Redis edge of stream headers: what one reader stores, another (a replica, or the same one
 * after a rebalance, on the main thread or on intake threads) replays; a stored value that fails
 * validation is ignored with a warning and never stops the reader. Intake threads run from dist:
 * `npm run -s build` first.
 */
const FIXTURES = path.resolve(__dirname, '../fixtures');
const NOW = Date.parse('2026-12-01T00:00:00Z');
const lines = (file: string) => readFileSync(path.join(FIXTURES, file), 'utf8').split('\n').filter((l) => l.length > 0);
const [VPC_HEADER, ...VPC_RECORDS] = lines('vpcflow/custom-tcp-flags.txt');
const ZEEK = lines('zeek/conn-zed-sample.log');
const ZEEK_HEADER = ZEEK.filter((l) => l.startsWith('#'));
const ZEEK_RECORD = ZEEK.find((l) => !l.startsWith('#'))!;

function batch(topic: string, partition: number, from: number, records: readonly string[]): Batch {
  const messages = records.map((r, i) => ({ key: null, value: Buffer.from(r), offset: String(from + i), timestamp: String(NOW), headers: {}, attributes: 0 }) as unknown as KafkaMessage);
  return { topic, partition, messages } as unknown as Batch;
}

describe('stream headers in Redis', () => {
  const config = testConfig('stream-headers');
  config.ingest.maxEventAgeMs = 0;
  const prefix = config.redis.keyPrefix;
  const warnings: Array<Record<string, unknown>> = [];
  const log = createLogger('warn', 'test', { destination: { write: (line: string) => void warnings.push(JSON.parse(line)) } });
  let redis: Redis;
  const store = () => new StreamHeaderStore(redis, prefix, log);
  const intake = () => new Intake(config, new Metrics({ defaultMetrics: false }), log, () => NOW, store());

  beforeAll(async () => {
    redis = new Redis(REDIS_URL);
    await redis.ping();
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });
  beforeEach(() => {
    warnings.length = 0;
  });

  test('what one reader stores, another replays: its records after the header are admitted, not dead-lettered', async () => {
    const first = await intake().admit(batch('vpc', 0, 0, [VPC_HEADER!, VPC_RECORDS[0]!]), 'vpcflow', 'record');
    expect(first.admitted).toHaveLength(1);
    const stored = parseStored((await redis.get(`${prefix}:stream-header:vpc:0`))!);
    expect(stored).toEqual({ ok: true, value: { v: 1, checkpoints: [{ from: 0, to: 0, lines: [{ offset: 0, text: VPC_HEADER }] }] } });

    const other = await intake().admit(batch('vpc', 0, 2, VPC_RECORDS.slice(1, 4)), 'vpcflow', 'record');
    expect(other.dead).toEqual([]);
    expect(other.admitted).toHaveLength(3);
    // without the store (as before): the records are read by the default format and refused
    const without = new Intake(config, new Metrics({ defaultMetrics: false }), log, () => NOW).admitBatch(batch('vpc', 0, 2, VPC_RECORDS.slice(1, 4)), 'vpcflow', 'record');
    expect(without.dead).toHaveLength(3);
    // another partition has its own header state
    expect((await intake().admit(batch('vpc', 1, 2, VPC_RECORDS.slice(1, 2)), 'vpcflow', 'record')).dead).toHaveLength(1);
  });

  test('a batch read again after a reset on the same reader is primed again', async () => {
    const reader = intake();
    await reader.admit(batch('zeek', 0, 0, [...ZEEK_HEADER, ZEEK_RECORD]), 'zeek', 'record');
    reader.reset();
    const again = await reader.admit(batch('zeek', 0, ZEEK_HEADER.length + 1, [ZEEK_RECORD]), 'zeek', 'record');
    expect(again.dead).toEqual([]);
    expect(again.admitted).toHaveLength(1);
  });

  test('a batch read again by the same reader (its send failed) is decided as the first time: the header after a record does not apply to it', async () => {
    const reader = intake();
    const retried = batch('retry', 0, 0, [VPC_RECORDS[0]!, VPC_HEADER!, VPC_RECORDS[1]!]);
    const first = await reader.admit(retried, 'vpcflow', 'record');
    const again = await reader.admit(retried, 'vpcflow', 'record');
    expect(first.dead).toHaveLength(1);
    expect(first.admitted).toHaveLength(1);
    expect(again.dead.map((d) => d.headers!['cordon-dlq-reason'])).toEqual(first.dead.map((d) => d.headers!['cordon-dlq-reason']));
    expect(again.admitted.map((a) => a.origin)).toEqual(first.admitted.map((a) => a.origin));
  });

  test('on intake threads: the stream is primed after a reset, on a thread that replaced a dead one, and on another replica', async () => {
    const deps = { metrics: new Metrics({ defaultMetrics: false }), log, clock: () => NOW };
    const setup = { limits: config.ingest, inputs: config.kafka.inputs };
    const pool = new IntakePool(setup, 2, deps, store());
    const other = new IntakePool(setup, 2, deps, store());
    try {
      const h = ZEEK_HEADER.length;
      expect((await pool.rekey(batch('tzeek', 0, 0, [...ZEEK_HEADER, ZEEK_RECORD]), 'zeek', 3)).events).toHaveLength(1);
      expect((await pool.rekey(batch('tvpc', 0, 0, [VPC_HEADER!, VPC_RECORDS[0]!]), 'vpcflow', 3)).events).toHaveLength(1);
      pool.reset();
      expect((await pool.rekey(batch('tzeek', 0, h + 1, [ZEEK_RECORD]), 'zeek', 3)).dead).toEqual([]);
      expect((await pool.rekey(batch('tvpc', 0, 2, [VPC_RECORDS[1]!]), 'vpcflow', 3)).events).toHaveLength(1);
      const threads = (pool as unknown as { threads: Array<{ worker: { terminate(): Promise<number> } }> }).threads;
      await Promise.all(threads.map((t) => t.worker.terminate()));
      await new Promise((r) => setTimeout(r, 200)); // the pool replaces them
      expect((await pool.rekey(batch('tvpc', 0, 3, [VPC_RECORDS[2]!]), 'vpcflow', 3)).events).toHaveLength(1);
      const moved = await other.rekey(batch('tzeek', 0, h + 2, [ZEEK_RECORD, ZEEK_RECORD]), 'zeek', 3);
      expect(moved.dead).toEqual([]);
      expect(moved.events).toHaveLength(2);
    } finally {
      await Promise.all([pool.close(), other.close()]);
    }
  });

  test.each([
    ['not JSON', '{"v":1,'],
    ['not a header line', JSON.stringify({ v: 1, checkpoints: [{ from: 0, to: 0, lines: [{ offset: 0, text: '{"action":"denied"}' }] }] })],
    ['a shape claiming the far end of the log', JSON.stringify({ checkpoints: [{ to: 1e15 }] })],
    ['a long string', 'x'.repeat(100_000)],
  ])('a stored value that is %s is ignored with a warning: the records go to the DLQ as without it, and the next header replaces it', async (_, value) => {
    const topic = `hostile-${warnings.length}-${Math.random().toString(36).slice(2, 8)}`;
    const key = `${prefix}:stream-header:${topic}:0`;
    await redis.set(key, value);
    const reader = intake();
    const before = await reader.admit(batch(topic, 0, 5, [VPC_RECORDS[0]!]), 'vpcflow', 'record');
    expect(before.admitted).toEqual([]);
    expect(before.dead.map((d) => String(d.headers!['cordon-dlq-reason']))).toEqual([expect.stringMatching(/expected 14 fields/)]);
    expect(warnings).toContainEqual(expect.objectContaining({ key, msg: 'stored stream header ignored: it fails validation' }));
    const after = await reader.admit(batch(topic, 0, 6, [VPC_HEADER!, VPC_RECORDS[0]!]), 'vpcflow', 'record');
    expect(after.admitted).toHaveLength(1);
    expect(parseStored((await redis.get(key))!)).toMatchObject({ ok: true, value: { checkpoints: [{ from: 6, to: 6 }] } });
  });

  test('a late write of a reader that lost the stream does not take back what the new owner stored', async () => {
    const old = intake();
    const owner = intake();
    await old.admit(batch('late', 0, 0, [VPC_HEADER!]), 'vpcflow', 'record');
    const later = 'version srcaddr dstaddr srcport dstport protocol start action log-status';
    await owner.admit(batch('late', 0, 1, [later]), 'vpcflow', 'record');
    // the old reader, which never saw offset 1, writes again as if from offset 0's batch
    await store().save('late', 0, { v: 1, checkpoints: [{ from: 0, to: 0, lines: [{ offset: 0, text: VPC_HEADER! }] }] });
    const stored = parseStored((await redis.get(`${prefix}:stream-header:late:0`))!);
    expect(stored.ok && stored.value.checkpoints.at(-1)!.lines).toEqual([{ offset: 1, text: later }]);
  });
});
