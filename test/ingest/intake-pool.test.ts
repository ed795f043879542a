import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Batch, KafkaMessage, Message } from 'kafkajs';
import { eventRecord } from '../../src/ingest/event-record';
import { Intake, ORIGIN_HEADER } from '../../src/ingest/intake';
import { IntakePool, intakeThreads } from '../../src/ingest/intake-pool';
import { Metrics } from '../../src/metrics';
import type { Format } from '../../src/normalize/normalizer';
import { testConfig, testLog } from '../support/stack';

/**
 * Intake on worker threads must decide exactly as intake on the main thread: the same events
 * records, in the same order, the same dead letters with the same bytes and reasons, the same
 * counters, with each stream's header state kept per partition. Needs the build (the thread
 * script is dist/src/ingest/intake-thread.js).
 */
const FIXTURES = path.resolve(__dirname, '../fixtures');
const NOW = Date.parse('2026-12-01T00:00:00Z');
const lines = (file: string) => readFileSync(path.join(FIXTURES, file), 'utf8').split('\n').filter((l) => l.length > 0);

const HOSTILE = [
  '{"flow": {"time": ',
  '['.repeat(1000) + ']'.repeat(1000),
  '{"__proto__": {"polluted": 1}, "flow": {}}',
  '',
  '\u0000\u00ff binary',
];

/** Input topics, each a format and the records of its stream (headers first where the format has them). */
const STREAMS: Array<{ topic: string; format: Format | 'auto'; records: string[] }> = [
  { topic: 'vpc', format: 'vpcflow', records: [...lines('vpcflow/custom-tcp-flags.txt'), ...HOSTILE] },
  { topic: 'zeek', format: 'zeek', records: [...lines('zeek/conn-zed-sample.log'), ...HOSTILE] },
  { topic: 'hubble', format: 'hubble', records: [...lines('hubble/exporter-output.jsonl'), ...HOSTILE] },
  { topic: 'wfp', format: 'auto', records: [...lines('wfp/elastic-agent-security-wfp.jsonl'), ...HOSTILE] },
];
const PARTITIONS = 3;
const BATCH = 2;
const EVENT_PARTITIONS = 6;

/** The records of each stream dealt over the partitions, and cut into batches of BATCH. */
function batches(): Batch[][] {
  const rounds: Batch[][] = [];
  for (const { topic, records } of STREAMS) {
    for (let partition = 0; partition < PARTITIONS; partition++) {
      // every partition of a stream gets the header lines, then its share of the records
      const headers = records.filter((r) => r.startsWith('#') || r.startsWith('version '));
      const rest = records.filter((r) => !headers.includes(r)).filter((_, i) => i % PARTITIONS === partition);
      const stream = [...headers, ...rest];
      for (let b = 0; b * BATCH < stream.length; b++) {
        const messages = stream.slice(b * BATCH, (b + 1) * BATCH).map((r, i) => message(r, b * BATCH + i));
        (rounds[b] ??= []).push({ topic, partition, messages } as unknown as Batch);
      }
    }
  }
  return rounds;
}

function message(record: string, offset: number): KafkaMessage {
  const value = record === '' ? null : Buffer.from(record, 'utf8');
  return { key: Buffer.from(`k${offset}`), value, offset: String(offset), timestamp: String(NOW), headers: { case: `c${offset}` }, attributes: 0 } as KafkaMessage;
}

const formatOf = (topic: string) => STREAMS.find((s) => s.topic === topic)!.format;

function config() {
  const c = testConfig('intake-pool');
  c.ingest.maxEventAgeMs = 0;
  c.ingest.maxFutureSkewMs = 100 * 365 * 24 * 3600_000;
  return c;
}

async function counters(m: Metrics): Promise<unknown> {
  const all = await Promise.all([m.ingestRecords.get(), m.ingestRejects.get(), m.ingestEvents.get()]);
  return all.map((c) => c.values.filter((v) => v.value > 0).sort((a, b) => JSON.stringify(a.labels).localeCompare(JSON.stringify(b.labels))));
}

describe('intake on worker threads', () => {
  const clock = () => NOW;
  let pool: IntakePool;
  const poolMetrics = new Metrics({ defaultMetrics: false });

  beforeAll(() => {
    const c = config();
    pool = new IntakePool({ limits: c.ingest, inputs: c.kafka.inputs }, 3, { metrics: poolMetrics, log: testLog, clock });
  });
  afterAll(() => pool.close());

  test('gives the same records, dead letters and counters as intake on the main thread, partitions in parallel', async () => {
    const inlineMetrics = new Metrics({ defaultMetrics: false });
    const inline = new Intake(config(), inlineMetrics, testLog, clock);
    const expected: Record<string, { events: Message[]; dead: Message[] }> = {};
    const got: Record<string, { events: Message[]; dead: Message[] }> = {};
    const rounds = batches();
    for (const round of rounds) {
      for (const batch of round) {
        const { admitted, dead } = inline.admitBatch(batch, formatOf(batch.topic), 'record');
        const events = admitted.map((a) => ({ ...eventRecord(a, EVENT_PARTITIONS), timestamp: a.recordTime, headers: { [ORIGIN_HEADER]: a.origin } }));
        const key = `${batch.topic}/${batch.partition}`;
        expected[key] = { events: [...(expected[key]?.events ?? []), ...events], dead: [...(expected[key]?.dead ?? []), ...dead] };
      }
      // one round's batches, one per partition, are in flight together, as with partitionsConsumedConcurrently
      const replies = await Promise.all(round.map((batch) => pool.rekey(batch, formatOf(batch.topic), EVENT_PARTITIONS)));
      round.forEach((batch, i) => {
        const key = `${batch.topic}/${batch.partition}`;
        got[key] = { events: [...(got[key]?.events ?? []), ...replies[i]!.events], dead: [...(got[key]?.dead ?? []), ...replies[i]!.dead] };
      });
    }
    const events = Object.values(expected).flatMap((e) => e.events);
    const dead = Object.values(expected).flatMap((e) => e.dead);
    expect(events.length).toBeGreaterThan(10);
    expect(new Set(events.map((e) => e.partition)).size).toBeGreaterThan(1);
    expect(dead.length).toBe(HOSTILE.length * STREAMS.length);
    expect(got).toEqual(expected);
    expect(await counters(poolMetrics)).toEqual(await counters(inlineMetrics));
  });

  test('a dead letter keeps the original bytes, key and headers, and the reason', async () => {
    const batch = { topic: 'hubble', partition: 9, messages: [message('{"__proto__": {"polluted": 1}, "flow": {}}', 41)] } as unknown as Batch;
    const { events, dead } = await pool.rekey(batch, 'hubble', EVENT_PARTITIONS);
    expect(events).toEqual([]);
    expect(dead).toHaveLength(1);
    expect(dead[0]!.value).toEqual(batch.messages[0]!.value);
    expect(dead[0]!.key).toEqual(Buffer.from('k41'));
    expect(dead[0]!.headers).toMatchObject({ case: 'c41', 'cordon-dlq-reason': 'hubble: forbidden key "__proto__" (prototype pollution)', 'cordon-source-offset': '41' });
  });

  test('a reset forgets every stream header, as on the main thread', async () => {
    const [header, record] = lines('vpcflow/custom-tcp-flags.txt');
    const at = (r: string, offset: number) => ({ topic: 'vpc', partition: 7, messages: [message(r!, offset)] }) as unknown as Batch;
    expect((await pool.rekey(at(header!, 0), 'vpcflow', EVENT_PARTITIONS)).dead).toEqual([]);
    expect((await pool.rekey(at(record!, 1), 'vpcflow', EVENT_PARTITIONS)).events).toHaveLength(1);
    pool.reset();
    const after = await pool.rekey(at(record!, 2), 'vpcflow', EVENT_PARTITIONS);
    const inline = new Intake(config(), new Metrics({ defaultMetrics: false }), testLog, clock).admitBatch(at(record!, 2), 'vpcflow', 'record');
    expect(after.events).toEqual([]);
    expect(after.dead.map((d) => d.headers?.['cordon-dlq-reason'])).toEqual(inline.dead.map((d) => d.headers?.['cordon-dlq-reason']));
  });

  test('a thread that dies fails its batch in flight, and a new thread takes the next', async () => {
    const sample = lines('hubble/exporter-output.jsonl');
    const many = Array.from({ length: 20_000 }, (_, i) => sample[i % sample.length]!);
    const batch = { topic: 'hubble', partition: 1, messages: many.map(message) } as unknown as Batch;
    const threads = (pool as unknown as { threads: Array<{ worker: { terminate(): Promise<number> } }> }).threads;
    const failed = expect(pool.rekey(batch, 'hubble', EVENT_PARTITIONS)).rejects.toThrow(/intake thread \d exited/);
    await Promise.all(threads.map((t) => t.worker.terminate()));
    await failed;
    const again = await pool.rekey(batch, 'hubble', EVENT_PARTITIONS);
    expect(again.events.length).toBeGreaterThan(0);
  });
});

describe('how many intake threads', () => {
  test.each([
    ['auto', 1, 0],
    ['auto', 2, 0],
    ['auto', 3, 1],
    ['auto', 4, 2],
    ['auto', 32, 4],
    [3, 2, 3],
    [0, 32, 0],
  ] as const)('%s on %i cores: %i', (setting, cores, threads) => {
    expect(intakeThreads(setting, cores)).toBe(threads);
  });
});
