import { createRequire } from 'node:module';
import { Kafka, logLevel } from 'kafkajs';
import { peakRss } from './rss';

/**
 * One Kafka client of `npm run bench:clients`, in its own process so its CPU and peak RSS are its own.
 *   client-worker <client> consume <brokers> <topic> <count>   a consumer group that does nothing per record
 *   client-worker <client> probe <brokers> <topic>             the Kafka features Cordon relies on, one by one
 * Prints one JSON line.
 */
type ClientName = 'kafkajs' | 'platformatic' | 'confluent';

interface Driver {
  /** Reads `count` records of `topic` from the beginning in a new group; calls `onFirst` at the first record. */
  consume(topic: string, group: string, count: number, onFirst: () => void): Promise<void>;
  createTopic(topic: string, partitions: number): Promise<void>;
  produceIdempotent(topic: string, values: string[]): Promise<void>;
  /** Consumes `count` records in `group` and commits their offsets. */
  consumeAndCommit(topic: string, group: string, count: number): Promise<void>;
  committedTotal(topic: string, group: string): Promise<number>;
  deleteTopic(topic: string): Promise<void>;
}

const nativeRequire = createRequire(__filename);

function kafkajsDriver(brokers: string[]): Driver {
  const kafka = new Kafka({ clientId: 'bench-clients', brokers, logLevel: logLevel.NOTHING });
  const readAll = async (topic: string, group: string, count: number, onFirst: () => void, commit: boolean) => {
    const consumer = kafka.consumer({ groupId: group, maxBytesPerPartition: 1024 * 1024, maxBytes: 10 * 1024 * 1024 });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    let seen = 0;
    await new Promise<void>((resolve) => {
      void consumer.run({
        autoCommit: commit,
        eachBatch: async ({ batch, resolveOffset, commitOffsetsIfNecessary }) => {
          if (seen === 0) onFirst();
          seen += batch.messages.length;
          if (commit) {
            resolveOffset(batch.lastOffset());
            await commitOffsetsIfNecessary();
          }
          if (seen >= count) resolve();
        },
      });
    });
    await consumer.disconnect();
  };
  return {
    consume: (topic, group, count, onFirst) => readAll(topic, group, count, onFirst, false),
    async createTopic(topic, partitions) {
      const admin = kafka.admin();
      await admin.connect();
      await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
      await admin.disconnect();
    },
    async produceIdempotent(topic, values) {
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      await producer.send({ topic, acks: -1, messages: values.map((value, i) => ({ key: String(i), value })) });
      await producer.disconnect();
    },
    consumeAndCommit: (topic, group, count) => readAll(topic, group, count, () => {}, true),
    async committedTotal(topic, group) {
      const admin = kafka.admin();
      await admin.connect();
      const [offsets] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
      await admin.disconnect();
      return (offsets?.partitions ?? []).reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
    },
    async deleteTopic(topic) {
      const admin = kafka.admin();
      await admin.connect();
      await admin.deleteTopics({ topics: [topic] });
      await admin.disconnect();
    },
  };
}

/* eslint-disable @typescript-eslint/no-explicit-any -- an ES module loaded at run time, typed where used */
function platformaticDriver(brokers: string[]): Driver {
  const pk = nativeRequire('@platformatic/kafka') as any;
  const base = { clientId: 'bench-clients', bootstrapBrokers: brokers };
  const readAll = async (topic: string, group: string, count: number, onFirst: () => void, commit: boolean) => {
    const consumer = new pk.Consumer({ ...base, groupId: group, maxBytes: 10 * 1024 * 1024, maxWaitTime: 500 });
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
    let seen = 0;
    await new Promise<void>((resolve, reject) => {
      stream.on('error', reject);
      stream.on('data', (message: any) => {
        if (seen === 0) onFirst();
        seen++;
        if (seen < count) return;
        const done = commit ? message.commit() : Promise.resolve();
        void Promise.resolve(done).then(() => resolve(), reject);
      });
    });
    await stream.close();
    await consumer.close();
  };
  const withAdmin = async <T>(fn: (admin: any) => Promise<T>): Promise<T> => {
    const admin = new pk.Admin(base);
    try {
      return await fn(admin);
    } finally {
      await admin.close();
    }
  };
  return {
    consume: (topic, group, count, onFirst) => readAll(topic, group, count, onFirst, false),
    createTopic: (topic, partitions) => withAdmin((a) => a.createTopics({ topics: [topic], partitions, replicas: 1 })),
    async produceIdempotent(topic, values) {
      const producer = new pk.Producer({ ...base, idempotent: true, serializers: pk.stringSerializers });
      await producer.send({ messages: values.map((value, i) => ({ topic, key: String(i), value })) });
      await producer.close();
    },
    async consumeAndCommit(topic, group, count) {
      // commits each record's offset as it is read, as Cordon commits what it has processed
      const consumer = new pk.Consumer({ ...base, groupId: group, maxWaitTime: 500 });
      const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
      let seen = 0;
      await new Promise<void>((resolve, reject) => {
        stream.on('error', reject);
        stream.on('data', (message: any) => {
          void Promise.resolve(message.commit()).then(() => {
            if (++seen >= count) resolve();
          }, reject);
        });
      });
      await stream.close();
      await consumer.close();
    },
    committedTotal: (topic, group) =>
      withAdmin(async (a) => {
        const groups = await a.listConsumerGroupOffsets({ groups: [group] });
        const partitions = groups.flatMap((g: any) => g.topics.filter((t: any) => t.name === topic).flatMap((t: any) => t.partitions));
        return partitions.reduce((n: number, p: any) => n + Math.max(0, Number(p.committedOffset)), 0);
      }),
    deleteTopic: (topic) => withAdmin((a) => a.deleteTopics({ topics: [topic] })),
  };
}

function confluentDriver(brokers: string[]): Driver {
  const dir = process.env.BENCH_CONFLUENT_DIR;
  if (!dir) throw new Error('BENCH_CONFLUENT_DIR (a directory where @confluentinc/kafka-javascript is installed) is not set');
  const { KafkaJS } = createRequire(`${dir}/`)('@confluentinc/kafka-javascript') as any;
  const kafka = new KafkaJS.Kafka({ kafkaJS: { clientId: 'bench-clients', brokers, logLevel: KafkaJS.logLevel.NOTHING } });
  const readAll = async (topic: string, group: string, count: number, onFirst: () => void, commit: boolean) => {
    const consumer = kafka.consumer({ kafkaJS: { groupId: group, fromBeginning: true, autoCommit: false } });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic] });
    let seen = 0;
    await new Promise<void>((resolve) => {
      void consumer.run({
        eachBatch: async ({ batch, resolveOffset }: any) => {
          if (seen === 0) onFirst();
          seen += batch.messages.length;
          if (commit) {
            resolveOffset(batch.lastOffset());
            await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: String(Number(batch.lastOffset()) + 1) }]);
          }
          if (seen >= count) resolve();
        },
      });
    });
    await consumer.disconnect();
  };
  const withAdmin = async <T>(fn: (admin: any) => Promise<T>): Promise<T> => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      return await fn(admin);
    } finally {
      await admin.disconnect();
    }
  };
  return {
    consume: (topic, group, count, onFirst) => readAll(topic, group, count, onFirst, false),
    createTopic: (topic, partitions) => withAdmin((a) => a.createTopics({ topics: [{ topic, numPartitions: partitions }] })),
    async produceIdempotent(topic, values) {
      const producer = kafka.producer({ kafkaJS: { idempotent: true, acks: -1 } });
      await producer.connect();
      await producer.send({ topic, messages: values.map((value, i) => ({ key: String(i), value })) });
      await producer.disconnect();
    },
    consumeAndCommit: (topic, group, count) => readAll(topic, group, count, () => {}, true),
    committedTotal: (topic, group) =>
      withAdmin(async (a) => {
        const [offsets] = await a.fetchOffsets({ groupId: group, topics: [topic] });
        return (offsets?.partitions ?? []).reduce((n: number, p: any) => n + Math.max(0, Number(p.offset)), 0);
      }),
    deleteTopic: (topic) => withAdmin((a) => a.deleteTopics({ topics: [topic] })),
  };
}
/* eslint-enable @typescript-eslint/no-explicit-any */

const DRIVERS: Record<ClientName, (brokers: string[]) => Driver> = {
  kafkajs: kafkajsDriver,
  platformatic: platformaticDriver,
  confluent: confluentDriver,
};

async function consumeRun(driver: Driver, topic: string, count: number) {
  let first = 0;
  let cpuAtFirst = process.cpuUsage();
  await driver.consume(topic, `${topic}-${process.argv[2]}-${Date.now().toString(36)}`, count, () => {
    first = performance.now();
    cpuAtFirst = process.cpuUsage();
  });
  const seconds = (performance.now() - first) / 1000;
  const cpu = process.cpuUsage(cpuAtFirst);
  return { records: count, perSecond: count / seconds, cpuUsPerRecord: (cpu.user + cpu.system) / count, peakRss: peakRss() };
}

/** Each feature Cordon's Kafka use depends on, checked for real against the broker. */
async function probeRun(driver: Driver, topic: string) {
  const results: Record<string, string> = {};
  const step = async (name: string, fn: () => Promise<void>) => {
    try {
      await fn();
      results[name] = 'ok';
    } catch (err) {
      results[name] = `FAILED: ${(err as Error).message.slice(0, 120)}`;
    }
  };
  const group = `${topic}-probe`;
  await step('admin: create topic', () => driver.createTopic(topic, 3));
  await step('idempotent producer', () => driver.produceIdempotent(topic, Array.from({ length: 30 }, (_, i) => `v${i}`)));
  await step('consumer group + commit', () => driver.consumeAndCommit(topic, group, 30));
  await step('committed offsets read back', async () => {
    const total = await driver.committedTotal(topic, group);
    if (total !== 30) throw new Error(`committed ${total} of 30`);
  });
  await step('admin: delete topic', () => driver.deleteTopic(topic));
  return results;
}

async function main(): Promise<void> {
  const [client, mode, brokers, topic, count] = process.argv.slice(2) as [ClientName, string, string, string, string?];
  const driver = DRIVERS[client](brokers.split(','));
  const result = mode === 'consume' ? await consumeRun(driver, topic, Number(count)) : await probeRun(driver, topic);
  process.stdout.write(`${JSON.stringify({ client, ...result })}\n`);
  process.exit(0);
}

void main().catch((err: unknown) => {
  process.stdout.write(`${JSON.stringify({ error: (err as Error).message })}\n`);
  process.exit(1);
});
