import type { Client } from '@elastic/elasticsearch';
import type Redis from 'ioredis';
import type { Consumer, EachBatchPayload, Kafka } from '../kafka';
import type { Config } from '../config';
import { ConsumerSupervisor } from '../consumer-supervisor';
import { FETCH } from '../kafka';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { createElasticsearchClient, SiemWriter } from './elasticsearch';
import type { SiemDoc } from './inputs';
import { readSiemDoc, type TopicRole } from './records';
import { SplunkWriter, type HecFailure } from './splunk-hec';

export interface SiemStageDeps {
  kafka: Kafka;
  redis: Redis;
  config: Config;
  log: Logger;
  metrics?: Metrics;
}

/** Splunk gave up on these for lack of an answer (down, busy, no ack), not because it refused them. */
function undelivered(f: HecFailure): boolean {
  return f.status === null || f.status === 429 || f.status >= 500 || (f.status === 200 && f.code === 0);
}

export class SplunkUnavailable extends Error {
  override name = 'SplunkUnavailable';
}

/**
 * The SIEM stage: its own consumer group reads the incidents, ledger and dead-letter topics and
 * hands every record to the SIEMs that are on. A batch's offsets are committed only after its
 * documents are durable: queued in the Redis outbox for Elasticsearch (src/siem/elasticsearch.ts
 * writes them in bulk and retries until Elasticsearch has them), and taken by Splunk HEC (or
 * refused by it for good, which is recorded). When Splunk cannot be reached the batch fails and is
 * read again, so Splunk may see a record twice; Elasticsearch never does (ids).
 */
export class SiemStage {
  readonly elasticsearch: SiemWriter | undefined;
  readonly splunk: SplunkWriter | undefined;
  private readonly esClient: Client | undefined;
  private consumer: Consumer | undefined;
  private supervisor: ConsumerSupervisor | undefined;
  private readonly failures: HecFailure[] = [];
  private readonly roles: Map<string, TopicRole>;
  private running = false;

  static wanted(config: Config): boolean {
    return config.elasticsearch.enabled || config.splunk.enabled;
  }

  constructor(private readonly deps: SiemStageDeps) {
    const { config, log } = deps;
    const t = config.kafka.topics;
    this.roles = new Map<string, TopicRole>([
      [t.incidents, 'incidents'],
      [t.ledger, 'ledger'],
      [t.dlq, 'dlq'],
    ]);
    if (config.elasticsearch.enabled) {
      this.esClient = createElasticsearchClient(config.elasticsearch);
      this.elasticsearch = new SiemWriter({
        client: this.esClient,
        redis: deps.redis,
        keyPrefix: config.redis.keyPrefix,
        config: config.elasticsearch,
        log: log.child({ siem: 'elasticsearch' }),
      });
    }
    if (config.splunk.enabled) {
      this.splunk = new SplunkWriter(config.splunk, log.child({ siem: 'splunk' }), { onFailure: (f) => this.failures.push(f) });
    }
  }

  isRunning(): boolean {
    return this.running;
  }

  /** Documents per sink and outcome since start, for the metrics endpoint. */
  documentCounts(): Record<string, Record<string, number>> {
    const documents: Record<string, Record<string, number>> = {};
    const es = this.elasticsearch?.counters;
    if (es) documents.elasticsearch = { enqueued: es.enqueued, written: es.written, duplicate: es.duplicates, failed: es.failed };
    const hec = this.splunk?.sender.counters;
    if (hec) documents.splunk = { enqueued: hec.events, written: hec.delivered, refused: hec.failed };
    return documents;
  }

  /** Splunk's refusals (4xx with its code) since start, newest last. */
  splunkFailures(): readonly HecFailure[] {
    return this.splunk?.sender.failures ?? [];
  }

  async start(): Promise<void> {
    const { kafka, config } = this.deps;
    this.elasticsearch?.start();
    const consumer = kafka.consumer({ groupId: config.kafka.groups.siem, ...FETCH });
    this.consumer = consumer;
    const run = () => consumer.run({ eachBatch: (p) => this.onBatch(p) });
    this.supervisor = new ConsumerSupervisor(consumer, { name: 'siem', log: this.deps.log, ...(this.deps.metrics && { metrics: this.deps.metrics }), run });
    await consumer.connect();
    await consumer.subscribe({ topics: [...this.roles.keys()], fromBeginning: true });
    await run();
    this.running = true;
  }

  /** Why its consumer is not consuming (it crashed and is being restarted), or undefined. */
  consumerTrouble(): string | undefined {
    return this.supervisor?.trouble;
  }

  async stop(): Promise<void> {
    this.running = false;
    this.supervisor?.stop();
    await this.consumer?.disconnect();
    this.consumer = undefined;
    await this.splunk?.stop();
    const es = await this.elasticsearch?.stop({ drainTimeoutMs: this.deps.config.siem.drainTimeoutMs });
    if (es && !es.drained) this.deps.log.warn({ pending: es.pending }, 'documents still queued for Elasticsearch; the next start writes them');
    await this.esClient?.close();
  }

  private async onBatch({ batch, heartbeat }: EachBatchPayload): Promise<void> {
    const role = this.roles.get(batch.topic);
    if (!role) return;
    const docs: SiemDoc[] = [];
    for (const m of batch.messages) {
      const r = readSiemDoc(role, m);
      if ('doc' in r) docs.push(r.doc);
      else if ('error' in r) this.deps.log.warn({ topic: batch.topic, partition: batch.partition, offset: m.offset, reason: r.error }, 'record not sent to the SIEM: it does not parse');
    }
    if (docs.length === 0) return;
    // a Splunk outage is retried for a while inside the batch: keep the group membership meanwhile
    const beat = setInterval(() => void heartbeat().catch(() => undefined), 3_000);
    try {
      await this.elasticsearch?.enqueue(docs);
      if (this.splunk) await this.toSplunk(docs);
    } finally {
      clearInterval(beat);
    }
  }

  private async toSplunk(docs: readonly SiemDoc[]): Promise<void> {
    const from = this.failures.length;
    this.splunk!.enqueue(docs);
    await this.splunk!.flush();
    const lost = this.failures.splice(from).filter(undelivered);
    if (lost.length > 0) {
      const n = lost.reduce((s, f) => s + f.events.length, 0);
      throw new SplunkUnavailable(`Splunk HEC did not take ${n} event(s) (${lost[0]!.text}); the batch will be read again`);
    }
  }
}
