import { randomBytes } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { DLQ_HEADERS } from '../../src/ingest/dead-letter';
import Redis from 'ioredis';
import { Correlator } from '../../src/correlate/correlator';
import { ORIGIN_HEADER } from '../../src/ingest/intake';
import { Rekey } from '../../src/ingest/rekey';
import { Metrics } from '../../src/metrics';
import { createTopics, deleteTopics, header, readTopic, testKafka } from '../support/kafka';
import { REDIS_URL, eventually, testConfig, testLog } from '../support/stack';

const NOW = Date.now();

function flow(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: `f-${randomBytes(4).toString('hex')}`,
    time: NOW - 1000,
    action: 'denied',
    src: { ip: '10.1.0.5', workload: { kind: 'host', id: 'ws5.corp', name: 'ws5', labels: {} } },
    dst: { ip: '10.1.0.6', port: 445 },
    protocol: 'tcp',
    dstPort: 445,
    observer: { type: 'cordon', name: 'test' },
    ...overrides,
  };
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

/** Each bad record, and what its dead-letter reason must say. */
const BAD: Array<{ name: string; value: Buffer; reason: RegExp }> = [
  { name: 'malformed JSON', value: Buffer.from('{"id": "x", "time": '), reason: /malformed JSON/ },
  { name: 'truncated record', value: json(flow()).subarray(0, 60), reason: /malformed JSON/ },
  { name: 'wrong type', value: json(flow({ dstPort: '445' })), reason: /dstPort/ },
  { name: 'missing required field', value: json(flow({ src: undefined })), reason: /src/ },
  { name: 'invalid IP', value: json(flow({ dst: { ip: '999.10.0.1' } })), reason: /dst\.ip.*IP/ },
  { name: 'port out of range', value: json(flow({ dstPort: 70000 })), reason: /dstPort/ },
  { name: 'time far in the future', value: json(flow({ time: NOW + 30 * 24 * 3600_000 })), reason: /^future: time/ },
  { name: 'time far in the past', value: json(flow({ time: NOW - 400 * 24 * 3600_000 })), reason: /^stale: time/ },
  { name: 'time before 2000', value: json(flow({ time: 100 })), reason: /time.*before the year 2000/ },
  { name: 'a 5 MB record', value: Buffer.from(JSON.stringify(flow({ pad: 'x'.repeat(5 * 1024 * 1024) }))), reason: /too large/ },
  { name: 'binary garbage', value: Buffer.concat([Buffer.from([0xff, 0xfe, 0x00]), randomBytes(512)]), reason: /not text|unknown format/ },
  { name: '__proto__ key', value: Buffer.from(`{"__proto__":{"polluted":1},${JSON.stringify(flow()).slice(1)}`), reason: /forbidden key "__proto__"/ },
  { name: 'constructor key', value: Buffer.from(`{"constructor":{"prototype":{"polluted":1}},${JSON.stringify(flow()).slice(1)}`), reason: /forbidden key/ },
  {
    name: 'bidi override in a name',
    value: json(flow({ src: { workload: { kind: 'host', id: 'ws5', name: 'gpj.\u202eexe', labels: {} } } })),
    reason: /src\.workload\.name.*bidirectional/,
  },
  { name: 'unknown format', value: json({ hello: 'world', n: 1 }), reason: /unknown format/ },
  // Refused by a scan of the text before JSON.parse (which would take it, and JSON.stringify not).
  { name: '100k-deep array', value: Buffer.from('['.repeat(100_000) + ']'.repeat(100_000)), reason: /^too deep: nesting goes beyond 64 levels at offset 64$/ },
  { name: 'anomaly whose detail nests 100k deep', value: deepAnomaly(100_000), reason: /^too deep: nesting goes beyond 64 levels at offset \d+$/ },
];

/** A valid anomaly but for its `detail`, which the schema takes as any JSON: the rekey stage once died re-serializing it. */
function deepAnomaly(depth: number): Buffer {
  const anomaly = { id: 'a-deep', time: NOW - 1000, entity: { kind: 'host', id: 'ws5.corp', name: 'ws5', labels: {} }, kind: 'rare_port', score: 0.5, detector: 'test' };
  return Buffer.from(`${JSON.stringify(anomaly).slice(0, -1)},"detail":{"x":${'['.repeat(depth)}${']'.repeat(depth)}}}`);
}

describe.each([
  { path: 'keyed input, read by the correlator', keyed: true, threads: 0 },
  { path: 'unkeyed input, rekeyed through the events topic', keyed: false, threads: 0 },
  { path: 'unkeyed input, rekeyed on two intake threads', keyed: false, threads: 2 },
])('ingest against the real broker: $path', ({ keyed, threads }) => {
  let kafka: Kafka;
  let redis: Redis;
  let rekey: Rekey;
  let correlator: Correlator;
  let dead: KafkaMessage[];
  const metrics = new Metrics({ defaultMetrics: false });
  const config = testConfig(keyed ? 'ingest-keyed' : `ingest-rekey-${threads}`);
  config.ingest.threads = threads;
  const input = config.kafka.inputs[0]!;
  input.keyed = keyed;
  const good = [flow(), flow({ action: 'allowed' }), flow()];

  beforeAll(async () => {
    kafka = testKafka();
    redis = new Redis(REDIS_URL);
    await createTopics(kafka, config);
    const producer = kafka.producer();
    await producer.connect();
    const messages = [
      { value: json(good[0]) },
      ...BAD.map((b) => ({ value: b.value, headers: { case: b.name } })),
      { value: json(good[1]) },
      { value: json(good[2]) },
    ];
    // One send to one partition: the bad records share a batch with the good ones.
    await producer.send({ topic: input.topic, messages: messages.map((m) => ({ ...m, partition: 0 })) });
    await producer.disconnect();
    rekey = new Rekey({ kafka, config, log: testLog, metrics });
    correlator = new Correlator({ kafka, redis, config, log: testLog, metrics });
    await correlator.start();
    await rekey.start();
    dead = await readTopic(kafka, config.kafka.topics.dlq, (ms) => ms.length >= BAD.length);
  });

  afterAll(async () => {
    await rekey.stop();
    await correlator.stop();
    await deleteTopics(kafka, config);
    redis.disconnect();
  });

  it.each(BAD)('dead-letters $name with its original bytes, origin and reason', (bad) => {
    const letter = dead.find((m) => header(m, 'case') === bad.name);
    expect(letter).toBeDefined();
    expect(Buffer.compare(letter!.value!, bad.value)).toBe(0);
    expect(header(letter!, DLQ_HEADERS.reason)).toMatch(bad.reason);
    expect(header(letter!, DLQ_HEADERS.topic)).toBe(input.topic);
    expect(header(letter!, DLQ_HEADERS.partition)).toBe('0');
    expect(header(letter!, DLQ_HEADERS.offset)).toMatch(/^\d+$/);
  });

  (keyed ? it.skip : it)('runs its intake on the threads the config names', () => {
    expect(rekey.intakeThreads).toBe(threads);
  });

  it('lets the valid records of the same batch through to the correlation engine', async () => {
    expect(dead).toHaveLength(BAD.length);
    await eventually(async () => (correlator.engine.stats.events >= good.length ? true : undefined), 20_000, 'the good records');
    expect(correlator.engine.stats.events).toBe(good.length);
    expect(correlator.engine.entity('host:ws5.corp')).toBeDefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  (keyed ? it.skip : it)('republishes them keyed and partitioned by source entity, naming their origin', async () => {
    const out = await readTopic(kafka, config.kafka.topics.events, (ms) => ms.length >= good.length);
    expect(out.map((m) => JSON.parse(String(m.value)).id).sort()).toEqual(good.map((g) => g.id).sort());
    expect(out.every((m) => header(m, ORIGIN_HEADER)?.startsWith(`${input.topic}/0/`))).toBe(true);
    expect(out.map((m) => m.key?.toString())).toEqual(['host:ws5.corp', 'host:ws5.corp', 'host:ws5.corp']);
  });

  it('keeps consuming after the bad input', async () => {
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: input.topic, messages: [{ key: 'host:ws5.corp', value: json(flow()) }] });
    await producer.disconnect();
    await eventually(async () => (correlator.engine.stats.events === good.length + 1 ? true : undefined), 20_000, 'the late record');
  });

  it('counts records per topic and rejects per reason on /metrics', async () => {
    const text = await metrics.registry.metrics();
    const topic = input.topic.replace(/\./g, '\\.');
    expect(text).toMatch(new RegExp(`cordon_ingest_records_total\\{topic="${topic}",outcome="reject"\\} ${BAD.length}`));
    expect(text).toMatch(new RegExp(`cordon_ingest_rejects_total\\{topic="${topic}",reason="malformed_json"\\} 2`));
    expect(text).toMatch(new RegExp(`cordon_ingest_rejects_total\\{topic="${topic}",reason="too_large"\\} 1`));
    expect(text).toMatch(new RegExp(`cordon_ingest_rejects_total\\{topic="${topic}",reason="too_deep"\\} 2`));
  });
});
