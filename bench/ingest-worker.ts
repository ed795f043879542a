import Redis from 'ioredis';
import { Correlator } from '../src/correlate/correlator';
import { Intake } from '../src/ingest/intake';
import { IntakePool } from '../src/ingest/intake-pool';
import { FETCH, createKafka, sendInChunks } from '../src/kafka';
import { loadConfig } from '../src/config';
import { createLogger } from '../src/logger';
import { Metrics } from '../src/metrics';
import type { Batch } from 'kafkajs';
import { peakRss } from './rss';

/**
 * One side of the ingest benchmark, in its own process so its peak RSS is its own:
 * `noop` is a kafkajs consumer that does nothing per message (the client's ceiling);
 * `ingest` is Cordon's intake on a kafkajs consumer: decode, validate, normalize, dead-letter;
 * `threads` is the rekey stage's intake on worker threads (BENCH_INTAKE_THREADS, 2): the same, plus
 *   each event's record for the events topic, with three partitions in flight as the stage runs them;
 * `correlate` is the whole correlator stage: the same, plus the correlation engine and snapshots.
 * Prints one JSON line: records, seconds from first to last record, records/s, CPU µs a record
 * over the same span (the process's own accounting: stable while other processes share the
 * cores), peak RSS.
 */
async function main(): Promise<void> {
  const [mode, configJson, countArg] = process.argv.slice(2);
  const config = loadConfig({ env: {}, overrides: JSON.parse(configJson!) });
  const total = Number(countArg);
  const log = createLogger('error');
  const kafka = createKafka(config, log);
  const result =
    mode === 'noop'
      ? await consume(kafka, config, total, () => {})
      : mode === 'ingest'
        ? await ingest(kafka, config, total, log)
        : mode === 'threads'
          ? await threads(kafka, config, total, log)
          : await correlate(kafka, config, total, log);
  process.stdout.write(`${JSON.stringify({ mode, ...result, peakRss: peakRss() })}\n`);
  process.exit(0);
}

type Kafka = ReturnType<typeof createKafka>;
type Config = ReturnType<typeof loadConfig>;
type Log = ReturnType<typeof createLogger>;

/** A plain kafkajs consumer group reader; `perBatch` is all the work done on each batch. */
async function consume(kafka: Kafka, config: Config, total: number, perBatch: (b: Batch) => Promise<void> | void, partitionsConsumedConcurrently = 1) {
  const consumer = kafka.consumer({ groupId: `${config.kafka.groups.ingest}-${process.argv[2]}`, ...FETCH });
  await consumer.connect();
  await consumer.subscribe({ topics: config.kafka.inputs.map((i) => i.topic), fromBeginning: true });
  let count = 0;
  const span = new Span();
  await new Promise<void>((resolve) => {
    void consumer.run({
      partitionsConsumedConcurrently,
      eachBatch: async ({ batch }) => {
        span.begin();
        await perBatch(batch);
        count += batch.messages.length;
        span.end();
        if (count >= total) resolve();
      },
    });
  });
  await consumer.disconnect();
  return span.summary(count);
}

async function ingest(kafka: Kafka, config: Config, total: number, log: Log) {
  const intake = new Intake(config, new Metrics({ defaultMetrics: false }), log);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  let events = 0;
  const result = await consume(kafka, config, total, async (batch) => {
    const { admitted, dead } = intake.admitBatch(batch, config.kafka.inputs[0]!.format, 'record');
    events += admitted.length;
    if (dead.length > 0) await sendInChunks(producer, [{ topic: config.kafka.topics.dlq, messages: dead }]);
  });
  await producer.disconnect();
  return { ...result, events };
}

async function threads(kafka: Kafka, config: Config, total: number, log: Log) {
  const size = Number(process.env.BENCH_INTAKE_THREADS ?? 2);
  const pool = new IntakePool({ limits: config.ingest, inputs: config.kafka.inputs }, size, { metrics: new Metrics({ defaultMetrics: false }), log, clock: Date.now });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  let events = 0;
  const result = await consume(
    kafka,
    config,
    total,
    async (batch) => {
      const { events: records, dead } = await pool.rekey(batch, config.kafka.inputs[0]!.format, config.kafka.partitions);
      events += records.length;
      if (dead.length > 0) await sendInChunks(producer, [{ topic: config.kafka.topics.dlq, messages: dead }]);
    },
    3,
  );
  await producer.disconnect();
  await pool.close();
  return { ...result, events, threads: size };
}

async function correlate(kafka: Kafka, config: Config, total: number, log: Log) {
  const metrics = new Metrics({ defaultMetrics: false });
  const redis = new Redis(config.redis.url);
  const correlator = new Correlator({ kafka, redis, config, log, metrics });
  await correlator.start();
  const span = new Span();
  let count = 0;
  for (;;) {
    count = (await metrics.ingestRecords.get()).values.reduce((n, v) => n + v.value, 0);
    if (count > 0) span.begin();
    if (count >= total) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  span.end();
  await correlator.stop();
  redis.disconnect();
  return { ...span.summary(count), entities: correlator.engine.size.entities };
}

/** Wall clock and this process's CPU from the first record to the last. */
class Span {
  private first = 0;
  private last = 0;
  private cpu0: NodeJS.CpuUsage | undefined;
  private cpu: NodeJS.CpuUsage | undefined;

  begin(): void {
    if (this.first !== 0) return;
    this.first = performance.now();
    this.cpu0 = process.cpuUsage();
  }

  end(): void {
    this.last = performance.now();
    this.cpu = process.cpuUsage(this.cpu0);
  }

  summary(count: number) {
    const seconds = (this.last - this.first) / 1000;
    const cpuUs = this.cpu ? this.cpu.user + this.cpu.system : 0;
    return { records: count, seconds, perSecond: count / seconds, cpuUsPerRecord: cpuUs / count };
  }
}

void main();
