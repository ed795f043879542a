import { loadConfig } from '../src/config';
import { createKafka, createTopicsReady, type Producer } from '../src/kafka';
import { createLogger } from '../src/logger';

/**
 * The evaluation behind docs/high-availability.md "Limits": would a transactional producer, with a
 * transactionalId fixed per ledger topic, fence a stale ledger writer at the broker, and what does an
 * append cost then? Against the real broker (CORDON_KAFKA_BROKERS, 127.0.0.1:9092), on a topic of its own:
 *
 *   1. writer A commits one record; writer B (same transactionalId) initialises, which bumps the
 *      producer epoch; A's next transaction is refused; B commits one record;
 *   2. a read_committed reader (kafkajs consumers' default) sees A's first record and B's only;
 *      the offsets show the commit markers between them, and what the admin client reports as the end;
 *   3. BENCH_APPENDS (100) sequential appends of one 600-byte record, acks all, transactional
 *      (kafkajs's default retry, then a 5 ms initial retry) against the idempotent producer the
 *      ledger uses now.
 *
 * node dist/bench/ledger-transactions.js (after npm run -s build)
 */
const N = Number(process.env.BENCH_APPENDS ?? 100);

async function main(): Promise<void> {
  const config = loadConfig({ env: process.env });
  const kafka = createKafka(config, createLogger('fatal'), 'ledger-transactions-bench');
  const topic = `bench-ledger-txn-${Date.now().toString(36)}`;
  const admin = kafka.admin();
  await admin.connect();
  await createTopicsReady(admin, [{ topic, numPartitions: 1, replicationFactor: -1 }]);
  const writer = (initialRetryTime?: number, id = `cordon-ledger:${topic}`) =>
    kafka.producer({ transactionalId: id, idempotent: true, maxInFlightRequests: 1, ...(initialRetryTime ? { retry: { initialRetryTime, retries: 10 } } : {}) });
  const commit = async (p: Producer, value: string) => {
    const txn = await p.transaction();
    try {
      const [meta] = await txn.send({ topic, acks: -1, messages: [{ partition: 0, value }] });
      await txn.commit();
      return meta?.baseOffset;
    } catch (err) {
      await txn.abort().catch(() => undefined);
      throw err;
    }
  };
  try {
    const a = writer(5);
    await a.connect();
    const aAt = await commit(a, 'A: before the takeover');
    const endAfterCommit = (await admin.fetchTopicOffsets(topic))[0]?.high;
    const b = writer(5);
    await b.connect();
    // kafkajs initialises a transactional producer lazily, at its first transaction: a takeover must do it at once.
    await (await b.transaction()).abort();
    const zombie = await commit(a, 'A: after the takeover').then(
      (at) => `landed at offset ${at}`,
      (err: { type?: string; message: string }) => `refused: ${err.type ?? err.message}`,
    );
    const bAt = await commit(b, 'B: the new writer');
    const seen = await readCommitted(kafka, topic, Number((await admin.fetchTopicOffsets(topic))[0]!.high));
    process.stdout.write(
      `A committed at offset ${aAt} (the admin client's end offset just after: ${endAfterCommit}); A's transaction after B initialised: ${zombie}; B committed at offset ${bAt}\n` +
        `a read_committed reader sees: ${seen.join(', ')}\n`,
    );
    await Promise.all([a.disconnect().catch(() => undefined), b.disconnect()]);
    for (const [name, p] of [['transactional, kafkajs default retry', writer(undefined, `${topic}:default`)], ['transactional, 5 ms initial retry', writer(5, `${topic}:fast`)]] as const) {
      await p.connect();
      process.stdout.write(`${name}: ${(await timed(() => commit(p, 'x'.repeat(600)))).toFixed(2)} ms per append\n`);
      await p.disconnect();
    }
    const idempotent = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await idempotent.connect();
    process.stdout.write(`idempotent (the ledger today): ${(await timed(() => idempotent.send({ topic, acks: -1, messages: [{ partition: 0, value: 'x'.repeat(600) }] }))).toFixed(2)} ms per append\n`);
    await idempotent.disconnect();
  } finally {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }
}

async function timed(append: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < N; i++) await append();
  return (performance.now() - start) / N;
}

/** `offset:value` of every record a read_committed consumer delivers below `end`. */
async function readCommitted(kafka: ReturnType<typeof createKafka>, topic: string, end: number): Promise<string[]> {
  const seen: string[] = [];
  const consumer = kafka.consumer({ groupId: `${topic}-reader`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let done: () => void = () => undefined;
  const finished = new Promise<void>((r) => (done = r));
  await consumer.run({
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) seen.push(`${m.offset}:${String(m.value)}`);
      // Control records (commit and abort markers) take offsets but are not delivered.
      if (Number(batch.lastOffset()) + 1 >= end) done();
    },
  });
  await Promise.race([finished, new Promise((r) => setTimeout(r, 15_000))]);
  await consumer.disconnect();
  return seen;
}

void main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
