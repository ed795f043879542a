import { resolve } from 'node:path';
import Redis from 'ioredis';
import type { Kafka, KafkaMessage } from 'kafkajs';
import type { Config } from '../../src/config';
import { CHANGE_HEADER, Correlator } from '../../src/correlate/correlator';
import { CorrelationEngine } from '../../src/correlate/engine';
import type { Incident } from '../../src/correlate/incident';
import { subjectKey, type CordonEvent } from '../../src/events';
import { ORIGIN_HEADER } from '../../src/ingest/intake';
import { DLQ_HEADERS } from '../../src/ingest/dead-letter';
import { StatusRequests } from '../../src/incidents/status-requests';
import { Metrics } from '../../src/metrics';
import { partitionFor } from '../../src/partition';
import { produceFile } from '../../src/produce';
import { createTopics, deleteTopics, header, readTopic, testKafka } from '../support/kafka';
import { REDIS_URL, eventually, testConfig, testLog } from '../support/stack';
import { BUILDER_SOURCES, T0, denied, host, keyOf } from './builder';
import { createTopicsReady } from '../../src/kafka';

const DATASETS = resolve(__dirname, '../../../shared/datasets/otrf-lateral-movement');

async function publishEvents(kafka: Kafka, config: Config, events: Array<{ event: CordonEvent; origin: string }>) {
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({
    topic: config.kafka.topics.events,
    messages: events.map(({ event, origin }) => ({
      key: subjectKey(event),
      partition: partitionFor(subjectKey(event), config.kafka.partitions),
      value: JSON.stringify(event),
      timestamp: String(event.time),
      headers: { [ORIGIN_HEADER]: origin },
    })),
  });
  await producer.disconnect();
}

const changes = (ms: KafkaMessage[]) =>
  ms.map((m) => ({ type: header(m, CHANGE_HEADER), incident: JSON.parse(String(m.value)) as Incident }));

describe('the correlator against real Kafka and Redis', () => {
  let kafka: Kafka;
  let redis: Redis;
  const configs: Config[] = [];

  beforeAll(() => {
    kafka = testKafka();
    redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    for (const c of configs) await deleteTopics(kafka, c);
    redis.disconnect();
  });

  async function setup(name: string): Promise<Config> {
    const config = testConfig(name, { correlate: { snapshotIntervalMs: 0, engine: { roles: { trustedLabelSources: BUILDER_SOURCES } } } });
    configs.push(config);
    await createTopics(kafka, config);
    return config;
  }

  it('turns a recorded attack on the flows topic into one incident on the incidents topic and in Redis', async () => {
    const config = await setup('pipeline');
    const producer = kafka.producer();
    await producer.connect();
    const file = `${DATASETS}/covenant_sharpsc_create_dcerpc_smb_svcctl.jsonl.gz`;
    const sent = await produceFile(producer, file, config.kafka.inputs[0]!.topic, { format: 'wfp', timestamp: 'event' }, 3);
    await producer.disconnect();
    expect(sent).toBe(219);

    const correlator = new Correlator({ kafka, redis, config, log: testLog, metrics: new Metrics({ defaultMetrics: false }) });
    await correlator.start();
    const out = changes(await readTopic(kafka, config.kafka.topics.incidents, (ms) => ms.length >= 1));
    await correlator.stop();

    const opened = out.filter((c) => c.type === 'incident_opened');
    expect(opened).toHaveLength(1);
    const incident = opened[0]!.incident;
    expect(incident.entities.find((e) => e.position === 'root')?.ip).toBe('172.18.39.5');
    expect(incident.entities.map((e) => e.ip)).toContain('172.18.39.6');
    const stored = await correlator.incidents.get(incident.id);
    expect(stored?.root).toBe(incident.root);
  });

  it('hands a partition over: the next owner resumes from the snapshot and drops what was already applied', async () => {
    const config = await setup('handover');
    const [ws1, ws2, ws3] = [host('ws1', '10.1.0.1', 'workstation'), host('ws2', '10.1.0.2', 'workstation'), host('ws3', '10.1.0.3', 'workstation')];
    const first = { event: denied(ws1, ws2, 135, T0), origin: 'in/0/10/0' };

    const a = new Correlator({ kafka, redis, config, log: testLog, metrics: new Metrics({ defaultMetrics: false }) });
    await a.start();
    await publishEvents(kafka, config, [first]);
    const opened = changes(await readTopic(kafka, config.kafka.topics.incidents, (ms) => ms.length >= 1));
    await a.stop();
    expect(opened.map((c) => c.type)).toEqual(['incident_opened']);

    const metrics = new Metrics({ defaultMetrics: false });
    const b = new Correlator({ kafka, redis, config, log: testLog, metrics });
    await b.start();
    // The first event again (a replayed ingest batch), then new evidence against a third host.
    await publishEvents(kafka, config, [first, { event: denied(ws1, ws3, 445, T0 + 60_000), origin: 'in/0/11/0' }]);
    const all = changes(await readTopic(kafka, config.kafka.topics.incidents, (ms) => ms.length >= 2));
    await b.stop();

    expect(all.map((c) => c.type)).toEqual(['incident_opened', 'incident_updated']);
    const updated = all[1]!.incident;
    expect(updated.id).toBe(opened[0]!.incident.id);
    expect(updated.path.nodes).toEqual([keyOf(ws1), keyOf(ws2), keyOf(ws3)]);
    expect(updated.counters.denied).toBe(2);
    expect(await metrics.registry.getSingleMetricAsString('cordon_correlate_events_total')).toMatch(/result="duplicate"\} 1/);
  });
  it('writes an applied batch\'s incident however long Kafka refuses it (the incidents topic gone for a while)', async () => {
    const config = await setup('durable-write');
    const [ws1, ws2] = [host('ws1', '10.1.0.1', 'workstation'), host('ws2', '10.1.0.2', 'workstation')];
    const admin = kafka.admin();
    await admin.connect();
    // A client that gives up after one retry: what keeps the incident is the correlator's own retry.
    const impatient = testKafka(1);
    const correlator = new Correlator({ kafka: impatient, redis, config, log: testLog, metrics: new Metrics({ defaultMetrics: false }) });
    await correlator.start();
    try {
      await admin.deleteTopics({ topics: [config.kafka.topics.incidents] });
      await publishEvents(kafka, config, [{ event: denied(ws1, ws2, 135, T0), origin: 'in/0/10/0' }]);
      await new Promise((r) => setTimeout(r, 4_000));
      // Kafka first, then the Redis view: neither has it yet, and the input is not committed past it.
      expect(await correlator.incidents.list()).toEqual([]);
      const [committed] = await admin.fetchOffsets({ groupId: config.kafka.groups.correlate, topics: [config.kafka.topics.events] });
      expect(committed!.partitions.every((p) => p.offset === '-1' || p.offset === '0')).toBe(true);

      await createTopicsReady(admin, [{ topic: config.kafka.topics.incidents, numPartitions: config.kafka.partitions }]);
      const out = changes(await readTopic(kafka, config.kafka.topics.incidents, (ms) => ms.length >= 1, 30_000));
      expect(out.map((c) => c.type)).toEqual(['incident_opened']);
      expect((await correlator.incidents.get(out[0]!.incident.id))?.counters.denied).toBe(1);
    } finally {
      await correlator.stop();
      await admin.disconnect();
    }
  });

  it('a status request that comes before its incident\'s evidence waits for it, across a restart', async () => {
    const config = await setup('early-status');
    const [ws1, ws2] = [host('ws1', '10.1.0.1', 'workstation'), host('ws2', '10.1.0.2', 'workstation')];
    const evidence = { event: denied(ws1, ws2, 135, T0), origin: 'in/0/10/0' };
    // The id the incident will have (the engine is deterministic): as containment would know it
    // from before a restart whose replay has not rebuilt the incident yet.
    const expected = new CorrelationEngine(config.correlate.engine).ingest(evidence.event).find((c) => c.type === 'incident_opened')!;
    const incident = (expected as Extract<typeof expected, { type: 'incident_opened' }>).incident;
    const requests = new StatusRequests(kafka, config.kafka.topics.lifecycle);
    await requests.connect();
    await requests.request(incident, 'containing', 'playbook:auto-quarantine', 'quarantine pending');
    await requests.disconnect();

    const a = new Correlator({ kafka, redis, config, log: testLog, metrics: new Metrics({ defaultMetrics: false }) });
    await a.start();
    const admin = kafka.admin();
    await admin.connect();
    try {
      // The request is taken in and committed (idle snapshot) while its incident is unknown.
      await eventually(async () => {
        const [committed] = await admin.fetchOffsets({ groupId: config.kafka.groups.correlate, topics: [config.kafka.topics.lifecycle] });
        return committed?.partitions.some((p) => p.offset === '1') ? true : undefined;
      }, 20_000, 'the lifecycle request committed');
    } finally {
      await admin.disconnect();
    }
    await a.stop();

    const b = new Correlator({ kafka, redis, config, log: testLog, metrics: new Metrics({ defaultMetrics: false }) });
    await b.start();
    try {
      await publishEvents(kafka, config, [evidence]);
      const stored = await eventually(async () => {
        const i = await b.incidents.get(incident.id);
        return i?.status === 'containing' ? i : undefined;
      }, 20_000, 'the incident containing');
      expect(stored.root).toBe(incident.root);
      expect(stored.version).toBe(2);
    } finally {
      await b.stop();
    }
  });

  it('applies status requests from the lifecycle topic as new incident versions, and dead-letters bad ones', async () => {
    const config = await setup('lifecycle');
    const producer = kafka.producer();
    await producer.connect();
    const file = `${DATASETS}/covenant_sharpsc_create_dcerpc_smb_svcctl.jsonl.gz`;
    await produceFile(producer, file, config.kafka.inputs[0]!.topic, { format: 'wfp', timestamp: 'event' }, 3);
    const correlator = new Correlator({ kafka, redis, config, log: testLog, metrics: new Metrics({ defaultMetrics: false }) });
    await correlator.start();
    try {
      const opened = changes(await readTopic(kafka, config.kafka.topics.incidents, (ms) => ms.length >= 1))[0]!.incident;
      const requests = new StatusRequests(kafka, config.kafka.topics.lifecycle);
      await requests.connect();
      await requests.request(opened, 'containing', 'playbook:auto-quarantine', 'quarantine pending');
      await requests.request(opened, 'contained', 'playbook:auto-quarantine', 'quarantine applied');
      await requests.request(opened, 'open', 'user:mallory', 'reopen'); // forbidden: contained cannot go back to open
      await requests.disconnect();
      await producer.send({ topic: config.kafka.topics.lifecycle, messages: [{ key: opened.root, value: '{"incident":"x","status":"bogus"}' }] });

      const statuses = await eventually(async () => {
        const out = changes(await readTopic(kafka, config.kafka.topics.incidents, () => false, 3_000)).filter((c) => c.incident.id === opened.id);
        const last = out.at(-1)?.incident;
        return last?.status === 'contained' ? out.map((c) => [c.incident.status, c.incident.version]) : undefined;
      }, 30_000, 'the contained version');
      // One batch may carry both requests; then only its last version is published.
      expect(statuses.at(-1)).toEqual(['contained', opened.version + 2]);
      expect([
        [['open', opened.version], ['containing', opened.version + 1], ['contained', opened.version + 2]],
        [['open', opened.version], ['contained', opened.version + 2]],
      ]).toContainEqual(statuses);
      expect((await correlator.incidents.get(opened.id))?.status).toBe('contained');
      const dead = await readTopic(kafka, config.kafka.topics.dlq, (ms) => ms.length >= 1);
      expect(header(dead[0]!, DLQ_HEADERS.reason)).toMatch(/status request.*status/);
      expect(String(dead[0]!.value)).toBe('{"incident":"x","status":"bogus"}');
    } finally {
      await producer.disconnect();
      await correlator.stop();
    }
  });
});
