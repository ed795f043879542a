import type { Kafka } from 'kafkajs';
import { ConsumerSupervisor } from '../src/consumer-supervisor';
import { Metrics } from '../src/metrics';
import { testKafka } from './support/kafka';
import { eventually, testLog, uniq } from './support/stack';
import { createTopicsReady } from '../src/kafka';

/**
 * A consumer that dies is running again (real Kafka, real kafkajs consumers): one whose handler
 * fails with an error kafkajs does not retry stays dead unless the supervisor restarts it; one
 * kafkajs restarts itself is left to kafkajs. Either way `trouble` names it until it has joined again.
 */

describe('consumer supervisor', () => {
  let kafka: Kafka;
  const topics: string[] = [];

  beforeAll(() => {
    kafka = testKafka();
  });
  afterAll(async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics }).catch(() => undefined);
    await admin.disconnect();
  });

  async function topicWith(name: string, values: string[]): Promise<string> {
    const topic = uniq(name);
    topics.push(topic);
    const admin = kafka.admin();
    await admin.connect();
    await createTopicsReady(admin, [{ topic, numPartitions: 1 }]);
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: values.map((value) => ({ value })) });
    await producer.disconnect();
    return topic;
  }

  /** A consumer whose handler throws `poison` on its first batch, then takes every record. */
  async function consumerFailingOnce(topic: string, poison: Error) {
    const seen: string[] = [];
    let thrown = false;
    // No retries of its own: a failed batch is a crash at once, restarted by kafkajs after 300 ms when retriable.
    const consumer = kafka.consumer({ groupId: uniq('sup'), maxWaitTimeInMs: 200, retry: { retries: 0, initialRetryTime: 300 } });
    const metrics = new Metrics({ defaultMetrics: false });
    const run = () =>
      consumer.run({
        eachBatch: async ({ batch }) => {
          if (!thrown) {
            thrown = true;
            throw poison;
          }
          seen.push(...batch.messages.map((m) => String(m.value)));
        },
      });
    const supervisor = new ConsumerSupervisor(consumer, { name: 'test', log: testLog, metrics, run, backoff: { initialMs: 200, maxMs: 1_000 } });
    const troubles: string[] = [];
    const watch = setInterval(() => supervisor.trouble && troubles.push(supervisor.trouble), 20);
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await run();
    const stop = async () => {
      clearInterval(watch);
      supervisor.stop();
      await consumer.disconnect();
    };
    return { seen, supervisor, metrics, troubles, stop };
  }

  const count = async (metrics: Metrics, name: 'consumerCrashes' | 'consumerRestarts') => (await metrics[name].get()).values.reduce((n, v) => n + v.value, 0);

  it('a consumer kafkajs leaves dead (non-retriable error) is restarted by the supervisor and takes the records again', async () => {
    const topic = await topicWith('sup-dead', ['a', 'b', 'c']);
    const poison = Object.assign(new Error('poison record'), { retriable: false });
    const c = await consumerFailingOnce(topic, poison);
    try {
      await eventually(async () => (c.seen.length === 3 ? true : undefined), 20_000, 'every record taken after the restart');
      expect(c.seen).toEqual(['a', 'b', 'c']);
      expect(c.troubles[0]).toMatch(/^consumer test crashed at \S+ \(.*poison record.*\); Cordon restarts it \(attempt 1\)$/);
      await eventually(async () => (c.supervisor.trouble === undefined ? true : undefined), 5_000, 'no trouble once joined again');
      expect(await count(c.metrics, 'consumerRestarts')).toBe(1);
      expect((await c.metrics.consumerCrashes.get()).values.filter((v) => v.value > 0)).toEqual([expect.objectContaining({ labels: { consumer: 'test', restart: 'cordon' }, value: 1 })]);
    } finally {
      await c.stop();
    }
  }, 40_000);

  it('a consumer kafkajs restarts itself (retriable error) is left to kafkajs; trouble names it until it has joined again', async () => {
    const topic = await topicWith('sup-retried', ['a', 'b']);
    const c = await consumerFailingOnce(topic, new Error('broker hiccup'));
    try {
      await eventually(async () => (c.seen.length === 2 ? true : undefined), 20_000, 'every record taken after kafkajs restarted it');
      expect(c.troubles[0]).toMatch(/\(.*broker hiccup.*\); the client restarts it$/);
      await eventually(async () => (c.supervisor.trouble === undefined ? true : undefined), 5_000, 'no trouble once joined again');
      expect(await count(c.metrics, 'consumerRestarts')).toBe(0);
      expect(await count(c.metrics, 'consumerCrashes')).toBe(1);
    } finally {
      await c.stop();
    }
  }, 40_000);
});
