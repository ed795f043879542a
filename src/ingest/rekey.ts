import type Redis from 'ioredis';
import type { Consumer, EachBatchPayload, Kafka, Message, Producer } from '../kafka';
import type { Config, InputTopic } from '../config';
import { ConsumerSupervisor } from '../consumer-supervisor';
import type { Format } from '../normalize/normalizer';
import { FETCH, partitionCount, sendInChunks } from '../kafka';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { eventRecord } from './event-record';
import { Intake, ORIGIN_HEADER, type Admitted } from './intake';
import { IntakePool, intakeThreads, type Rekeyed } from './intake-pool';
import { StreamHeaderStore } from './stream-headers';

export interface RekeyDeps {
  kafka: Kafka;
  config: Config;
  log: Logger;
  metrics: Metrics;
  clock?: () => number;
  /** Where each stream's header lines are kept across rebalances and restarts; without it they are not. */
  redis?: Redis;
}

/**
 * For input topics whose producers do not key records by source entity (`keyed: false`): reads
 * them, normalizes, and republishes each event to the events topic keyed and partitioned by its
 * subject entity, so that one correlator owns all state of one source. Rejects go to the
 * dead-letter topic. A batch's offsets are committed only after both sends are acknowledged
 * (and after its streams' header lines, if it changed them, are stored).
 */
export class Rekey {
  private readonly consumer: Consumer;
  private readonly producer: Producer;
  private readonly intake: Intake;
  /** Intake on worker threads when there are cores to spare (`ingest.threads`), else undefined. */
  private pool: IntakePool | undefined;
  private readonly inputs: Map<string, InputTopic>;
  private eventPartitions = 1;
  private running = false;
  private readonly supervisor: ConsumerSupervisor;
  private readonly headers: StreamHeaderStore | undefined;

  constructor(private readonly deps: RekeyDeps) {
    const { kafka, config } = deps;
    this.consumer = kafka.consumer({ groupId: config.kafka.groups.ingest, ...FETCH });
    this.supervisor = new ConsumerSupervisor(this.consumer, { name: 'rekey', log: deps.log, metrics: deps.metrics, run: () => this.run() });
    this.producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    this.headers = deps.redis ? new StreamHeaderStore(deps.redis, config.redis.keyPrefix, deps.log) : undefined;
    this.intake = new Intake(config, deps.metrics, deps.log, deps.clock, this.headers);
    this.inputs = new Map(config.kafka.inputs.filter((i) => !i.keyed).map((i) => [i.topic, i]));
  }

  /** Whether any input needs rekeying; the stage only runs then. */
  get needed(): boolean {
    return this.inputs.size > 0;
  }

  async start(): Promise<void> {
    if (!this.needed) return;
    this.eventPartitions = await partitionCount(this.deps.kafka, this.deps.config.kafka.topics.events);
    this.pool = this.startPool();
    await this.producer.connect();
    await this.consumer.connect();
    this.consumer.on(this.consumer.events.REBALANCING, () => {
      this.intake.reset();
      this.pool?.reset();
    });
    await this.consumer.subscribe({ topics: [...this.inputs.keys()], fromBeginning: true });
    await this.run();
    this.running = true;
  }

  private run(): Promise<void> {
    return this.consumer.run({ partitionsConsumedConcurrently: 3, eachBatch: (p) => this.onBatch(p) });
  }

  /** Finishes the batch in flight, commits it, leaves the group. */
  async stop(): Promise<void> {
    if (!this.needed) return;
    this.running = false;
    this.supervisor.stop();
    await this.consumer.disconnect();
    await this.producer.disconnect();
    await this.pool?.close();
  }

  /** How many worker threads its intake runs on (0: the main thread). */
  get intakeThreads(): number {
    return this.pool?.size ?? 0;
  }

  isRunning(): boolean {
    return this.running || !this.needed;
  }

  /** Why its consumer is not consuming (it crashed and is being restarted), or undefined. */
  consumerTrouble(): string | undefined {
    return this.supervisor.trouble;
  }

  private async onBatch({ batch, heartbeat }: EachBatchPayload): Promise<void> {
    const started = process.hrtime.bigint();
    const format = this.inputs.get(batch.topic)?.format ?? 'auto';
    const { events, dead } = await this.admit(batch, format);
    const { topics } = this.deps.config.kafka;
    const topicMessages = [];
    if (events.length > 0) topicMessages.push({ topic: topics.events, messages: events });
    if (dead.length > 0) topicMessages.push({ topic: topics.dlq, messages: dead });
    await heartbeat();
    if (topicMessages.length > 0) await sendInChunks(this.producer, topicMessages);
    this.deps.metrics.batchSeconds.observe({ stage: 'rekey' }, Number(process.hrtime.bigint() - started) / 1e9);
  }

  private startPool(): IntakePool | undefined {
    const { config, metrics, log, clock = Date.now } = this.deps;
    const threads = intakeThreads(config.ingest.threads);
    if (threads === 0) return undefined;
    log.info({ threads }, 'intake runs on worker threads');
    return new IntakePool({ limits: config.ingest, inputs: config.kafka.inputs }, threads, { metrics, log, clock }, this.headers);
  }

  private async admit(batch: EachBatchPayload['batch'], format: Format | 'auto'): Promise<Rekeyed> {
    if (this.pool) return this.pool.rekey(batch, format, this.eventPartitions);
    const { admitted, dead } = await this.intake.admit(batch, format, 'record');
    return { events: admitted.map((a) => this.toEventMessage(a)), dead };
  }

  /** Keyed and partitioned by the subject entity; stamped with the input record's time. */
  private toEventMessage(admitted: Admitted): Message {
    return { ...eventRecord(admitted, this.eventPartitions), timestamp: admitted.recordTime, headers: { [ORIGIN_HEADER]: admitted.origin } };
  }
}
