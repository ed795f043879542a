import { Kafka, logLevel, type KafkaMessage } from 'kafkajs';
import { cordonTopics, createTopicsReady, ensureTopics } from '../../src/kafka';
import type { Config } from '../../src/config';
import { KAFKA_BROKERS, uniq } from './stack';

/** `retries`: how often the client retries a failed request itself (kafkajs default 5, up to 30 s). */
export function testKafka(retries?: number): Kafka {
  return new Kafka({ clientId: uniq('test'), brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING, ...(retries !== undefined ? { retry: { retries, initialRetryTime: 100 } } : {}) });
}

export async function createTopics(kafka: Kafka, config: Config): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await ensureTopics(admin, cordonTopics(config));
  } finally {
    await admin.disconnect();
  }
}

/** The config's ledger topic, created as Cordon creates it (1 partition, infinite retention), plus `configEntries`; returns its name. */
export async function createLedgerTopic(kafka: Kafka, config: Config, configEntries: Array<{ name: string; value: string }> = []): Promise<string> {
  const spec = cordonTopics(config).find((t) => t.topic === config.kafka.topics.ledger)!;
  spec.configEntries = [...(spec.configEntries ?? []), ...configEntries];
  const admin = kafka.admin();
  await admin.connect();
  try {
    await createTopicsReady(admin, [spec]);
  } finally {
    await admin.disconnect();
  }
  return spec.topic;
}

export async function deleteTopics(kafka: Kafka, config: Config): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics: cordonTopics(config).map((t) => t.topic) });
  } finally {
    await admin.disconnect();
  }
}

/** Reads a topic from the beginning until `until(messages)` holds or the time runs out. */
export async function readTopic(
  kafka: Kafka,
  topic: string,
  until: (messages: KafkaMessage[]) => boolean,
  timeoutMs = 30_000,
): Promise<KafkaMessage[]> {
  const consumer = kafka.consumer({ groupId: uniq('reader'), maxBytesPerPartition: 32 * 1024 * 1024 });
  const messages: KafkaMessage[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  await consumer.run({
    eachMessage: async ({ message }) => {
      messages.push(message);
      if (until(messages)) done();
    },
  });
  const timer = setTimeout(done, timeoutMs);
  await finished;
  clearTimeout(timer);
  await consumer.disconnect();
  return messages;
}

export function header(message: KafkaMessage, name: string): string | undefined {
  const v = message.headers?.[name];
  return v === undefined ? undefined : String(v);
}
