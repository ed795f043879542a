import { Kafka, logLevel, type Admin, type ITopicConfig, type ISocketFactory, type KafkaConfig, type LogEntry, type Message, type Producer, type SASLOptions, type TopicMessages } from 'kafkajs';
import type { Config } from './config';
import { isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { explainTlsFailure, readKafkaCredentials, type KafkaCredentials, type KafkaTlsConfig } from './kafka-security';
import type { Logger } from './logger';

/** The client library's types, for the rest of Cordon: nothing outside this module (and the assigner) imports the client. */
export type { Admin, Batch, Consumer, EachBatchPayload, IHeaders, Kafka, KafkaMessage, Message, Producer } from 'kafkajs';

/** kafkajs speaks through the service's pino logger. */
function pinoLogCreator(log: Logger) {
  const levels: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
    [logLevel.ERROR]: 'error',
    [logLevel.WARN]: 'warn',
    [logLevel.INFO]: 'info',
    [logLevel.DEBUG]: 'debug',
  };
  return () =>
    ({ namespace, level, log: entry }: LogEntry) => {
      const { message, ...extra } = entry;
      log[levels[level] ?? 'info']({ kafka: namespace, ...extra }, message);
    };
}

export function createKafka(config: Config, log: Logger, clientId = config.kafka.clientId): Kafka {
  // Cordon sets partitions itself where it matters; the v2 partitioner notice is noise.
  process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
  return new Kafka({
    clientId,
    brokers: config.kafka.brokers,
    logLevel: logLevel.WARN,
    logCreator: pinoLogCreator(log.child({ component: 'kafkajs' })),
    retry: { initialRetryTime: 200, retries: 8 },
    ...securityOptions(readKafkaCredentials(config.kafka)),
    ...(config.kafka.tls ? { socketFactory: tlsSocketFactory(config.kafka.tls) } : {}),
  });
}

/**
 * kafkajs's own TLS socket, plus an error listener that runs before kafkajs's and rewrites a
 * certificate failure into what it means and which config key to look at.
 */
function tlsSocketFactory(tls: KafkaTlsConfig): ISocketFactory {
  return ({ host, port, ssl, onConnect }) => {
    const socket = tlsConnect({ host, port, ...(isIP(host) ? {} : { servername: host }), ...ssl }, onConnect);
    socket.setKeepAlive(true, 60_000);
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const explained = explainTlsFailure(err.code, `${host}:${port}`, tls);
      if (explained) err.message = explained;
    });
    return socket;
  };
}

/** TLS and SASL in kafkajs's terms: certificates always verified, SCRAM mechanisms in its lowercase names. */
function securityOptions({ tls, sasl }: KafkaCredentials): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  return {
    ...(tls ? { ssl: { rejectUnauthorized: true, ...tls } } : {}),
    ...(sasl ? { sasl: scram(sasl) } : {}),
  };
}

function scram({ mechanism, username, password }: NonNullable<KafkaCredentials['sasl']>): SASLOptions {
  return mechanism === 'SCRAM-SHA-256' ? { mechanism: 'scram-sha-256', username, password } : { mechanism: 'scram-sha-512', username, password };
}

/**
 * Fetch sizes for every Cordon consumer: kafkajs's own defaults. Larger fetches buy no throughput
 * here and cost resident memory; a record larger than a fetch is still delivered (KIP-74).
 */
export const FETCH = { maxBytesPerPartition: 1024 * 1024, maxBytes: 10 * 1024 * 1024 } as const;

/** Every topic Cordon reads or writes, with its partitioning and retention. Created explicitly, never auto-created. */
/** Where correlators hand hop chains to each other's partitions (src/correlate/handoff.ts). */
export function handoffTopic(config: Config): string {
  return config.kafka.topics.handoffs ?? `${config.kafka.topics.events}.handoffs`;
}

export function cordonTopics(config: Config): ITopicConfig[] {
  const n = config.kafka.partitions;
  const t = config.kafka.topics;
  return [
    ...config.kafka.inputs.map((i) => ({ topic: i.topic, numPartitions: n, configEntries: [bigRecords(8)] })),
    { topic: t.events, numPartitions: n },
    { topic: t.dlq, numPartitions: 1, configEntries: [bigRecords(16)] },
    { topic: t.incidents, numPartitions: n },
    { topic: t.lifecycle, numPartitions: n },
    { topic: handoffTopic(config), numPartitions: n },
    { topic: t.ledger, numPartitions: 1, configEntries: [{ name: 'retention.ms', value: '-1' }] },
  ].map((topic) => ({ replicationFactor: -1, ...topic }));
}

export async function ensureTopics(admin: Admin, topics: ITopicConfig[]): Promise<string[]> {
  const existing = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existing.has(t.topic));
  if (missing.length > 0) await createTopicsReady(admin, missing);
  return missing.map((t) => t.topic);
}

/** Error types a broker answers for a moment after it created a topic, before its metadata has spread. */
const NOT_YET_SERVED = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE']);

/**
 * Creates the topics and returns once every partition has a leader. kafkajs's own `waitForLeaders` retries only
 * LEADER_NOT_AVAILABLE, but a KRaft broker can also answer "does not host this topic-partition" just after creation.
 */
export async function createTopicsReady(admin: Admin, topics: ITopicConfig[], timeoutMs = 30_000): Promise<void> {
  await admin.createTopics({ topics });
  const names = topics.map((t) => t.topic);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const led = await admin.fetchTopicMetadata({ topics: names }).then(
      (meta) => meta.topics.length === names.length && meta.topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0)),
      (err: { type?: string }) => {
        if (err.type && NOT_YET_SERVED.has(err.type)) return false;
        throw err;
      },
    );
    if (led) return;
    if (Date.now() > deadline) throw new Error(`topics ${names.join(', ')} have no leader after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Input and dead-letter topics take oversized records, so an oversized record reaches Cordon and the DLQ keeps its bytes. */
function bigRecords(mib: number) {
  return { name: 'max.message.bytes', value: String(mib * 1024 * 1024) };
}

export async function partitionCount(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    const n = meta.topics[0]?.partitions.length ?? 0;
    if (n === 0) throw new Error(`topic ${topic} has no partitions`);
    return n;
  } finally {
    await admin.disconnect();
  }
}

const CHUNK_BYTES = 512 * 1024;

/**
 * Sends messages in record batches of at most ~512 KiB: the broker's max.message.bytes applies to
 * a whole record batch, and kafkajs puts everything for one partition into one batch.
 */
export async function sendInChunks(producer: Producer, topicMessages: TopicMessages[], acks = -1): Promise<void> {
  let chunk: TopicMessages[] = [];
  let bytes = 0;
  for (const { topic, messages } of topicMessages) {
    let current: Message[] = [];
    chunk.push({ topic, messages: current });
    for (const m of messages) {
      const size = sizeOf(m);
      if (bytes + size > CHUNK_BYTES && bytes > 0) {
        await producer.sendBatch({ topicMessages: chunk.filter((t) => t.messages.length > 0), acks });
        current = [];
        chunk = [{ topic, messages: current }];
        bytes = 0;
      }
      current.push(m);
      bytes += size;
    }
  }
  const rest = chunk.filter((t) => t.messages.length > 0);
  if (rest.length > 0) await producer.sendBatch({ topicMessages: rest, acks });
}

function sizeOf(m: Message): number {
  let n = 64 + byteLength(m.value) + byteLength(m.key);
  if (m.headers) for (const [k, v] of Object.entries(m.headers)) n += k.length + (typeof v === 'string' || Buffer.isBuffer(v) ? byteLength(v) : 16);
  return n;
}

function byteLength(v: string | Buffer | null | undefined): number {
  if (v == null) return 0;
  return typeof v === 'string' ? v.length * 2 : v.length;
}
