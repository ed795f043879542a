import { readFileSync } from 'node:fs';
import path from 'node:path';
import { produceFile } from '../../src/produce';
import { readTopic, testKafka } from '../support/kafka';
import { uniq } from '../support/stack';
import { createTopicsReady } from '../../src/kafka';

/** `cordon produce` over a pretty-printed JSON array, against the shared Kafka: one keyed message per element. */
const ILLUMIO = path.resolve(__dirname, '../fixtures/illumio/traffic_query_response.json');
const ZEEK_TSV = path.resolve(__dirname, '../fixtures/zeek/conn-zed-sample.log');

describe('produce: a JSON array file', () => {
  const kafka = testKafka();
  const topic = uniq('cordon-test-produce-array');
  const tsvTopic = uniq('cordon-test-produce-zeek-tsv');

  beforeAll(async () => {
    const admin = kafka.admin();
    await admin.connect();
    await createTopicsReady(admin, [{ topic, numPartitions: 2 }, { topic: tsvTopic, numPartitions: 2 }]);
    await admin.disconnect();
  });

  afterAll(async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topic, tsvTopic] }).catch(() => undefined);
    await admin.disconnect();
  });

  test('sends each element as its own message, keyed by its source and stamped with its event time', async () => {
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const sent = await produceFile(producer, ILLUMIO, topic, { format: 'auto', timestamp: 'event', progress: false }, 2).finally(() =>
      producer.disconnect(),
    );
    const elements = JSON.parse(readFileSync(ILLUMIO, 'utf8')) as { timestamp_range: { first_detected: string } }[];
    expect(sent).toBe(elements.length);
    const messages = await readTopic(kafka, topic, (m) => m.length >= elements.length);
    expect(messages).toHaveLength(elements.length);
    const values = messages.map((m) => JSON.parse(String(m.value)) as (typeof elements)[number]);
    expect(values).toEqual(expect.arrayContaining(elements));
    expect(messages.every((m) => m.key !== null && m.key.length > 0)).toBe(true);
    const times = messages.map((m) => Number(m.timestamp)).sort();
    expect(times).toEqual(elements.map((e) => Date.parse(e.timestamp_range.first_detected)).sort());
  });

  test('a Zeek TSV header goes to every partition, ahead of the records, for each partition reader', async () => {
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const lines = readFileSync(ZEEK_TSV, 'utf8').split('\n').filter(Boolean);
    const headers = lines.filter((l) => l.startsWith('#'));
    await produceFile(producer, ZEEK_TSV, tsvTopic, { format: 'zeek', timestamp: 'event', progress: false }, 2).finally(() => producer.disconnect());
    const got = await byPartition(tsvTopic, 2 * headers.length + 1);
    expect(got.map((p) => p.slice(0, headers.length))).toEqual([headers, headers]);
    expect(got.flat().filter((v) => !v.startsWith('#'))).toEqual(lines.filter((l) => !l.startsWith('#')));
  });

  /** The values of each partition of a topic, in offset order, once `total` messages arrived. */
  async function byPartition(name: string, total: number): Promise<string[][]> {
    const consumer = kafka.consumer({ groupId: uniq('reader') });
    const out: string[][] = [[], []];
    await consumer.connect();
    await consumer.subscribe({ topic: name, fromBeginning: true });
    let n = 0;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        out[partition]!.push(String(message.value));
        if (++n >= total) done();
      },
    });
    const timer = setTimeout(done, 30_000);
    await finished;
    clearTimeout(timer);
    await consumer.disconnect();
    return out;
  }
});
