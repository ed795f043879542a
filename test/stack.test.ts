import type { Client } from '@elastic/elasticsearch';
import { createEsClient } from '../src/siem/es-client';
import { Queue, Worker, QueueEvents } from 'bullmq';
import IORedis from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { ES_URL, ES_VERSION, KAFKA_BROKERS, REDIS_URL, eventually, uniq } from './support/stack';
import { createTopicsReady } from '../src/kafka';

/** Proves each real component of the local stack is real: a round trip through each. */
describe('the real local stack', () => {
  it('Kafka: produces and consumes a message through a consumer group', async () => {
    const kafka = new Kafka({ clientId: uniq('stack'), brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
    const topic = uniq('stack-kafka');
    const admin = kafka.admin();
    await admin.connect();
    await createTopicsReady(admin, [{ topic, numPartitions: 1 }]);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ key: 'k', value: 'hello cordon' }] });
    const consumer = kafka.consumer({ groupId: uniq('stack-group') });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const received: string[] = [];
    await consumer.run({ eachMessage: async ({ message }) => void received.push(String(message.value)) });
    await eventually(async () => (received.length > 0 ? true : undefined), 30_000, 'the message');
    expect(received).toEqual(['hello cordon']);
    await Promise.all([consumer.disconnect(), producer.disconnect()]);
    await admin.deleteTopics({ topics: [topic] });
    await admin.disconnect();
  });

  it('Elasticsearch: indexes and searches a document', async () => {
    const es = createEsClient({ node: ES_URL });
    const index = uniq('stack-es');
    // The integ-test-zip distribution has no root info endpoint; node info carries the version.
    const nodes = await es.nodes.info({ node_id: '_local' });
    expect(Object.values(nodes.nodes)[0]?.version).toBe(ES_VERSION);
    await es.index({ index, id: 'doc-1', document: { entity: 'workstation5', port: 445 }, refresh: 'wait_for' });
    const found = await es.search<{ entity: string }>({ index, query: { term: { port: 445 } } });
    expect(found.hits.hits.map((h) => h._source?.entity)).toEqual(['workstation5']);
    await es.indices.delete({ index });
    await es.close();
  });

  it('Redis + BullMQ: enqueues a job and a worker processes it', async () => {
    const connection = new IORedis(REDIS_URL, { maxRetriesPerRequest: null });
    const name = uniq('stack-bullmq');
    const queue = new Queue(name, { connection });
    const eventsConnection = new IORedis(REDIS_URL, { maxRetriesPerRequest: null });
    const events = new QueueEvents(name, { connection: eventsConnection });
    await events.waitUntilReady();
    const worker = new Worker(name, async (job) => ({ doubled: (job.data as { n: number }).n * 2 }), { connection });
    const job = await queue.add('double', { n: 21 }, { jobId: 'job-21' });
    const result = await job.waitUntilFinished(events, 20_000);
    expect(result).toEqual({ doubled: 42 });
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
    await events.close();
    eventsConnection.disconnect();
    connection.disconnect();
  });
});
