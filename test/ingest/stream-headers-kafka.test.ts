import { readFileSync } from 'node:fs';
import path from 'node:path';
import Redis from 'ioredis';
import type { Kafka } from 'kafkajs';
import type { Config } from '../../src/config';
import { Correlator } from '../../src/correlate/correlator';
import { Rekey } from '../../src/ingest/rekey';
import { Metrics } from '../../src/metrics';
import { createTopics, deleteTopics, testKafka } from '../support/kafka';
import { REDIS_URL, eventually, testConfig, testLog, uniq } from '../support/stack';

/**
 * Against the real broker and Redis: a VPC custom-format input and a Zeek TSV input carry their
 * header once; after a rebalance (a second reader joins the group), a restart (every reader
 * stopped, a new one started) and on a replay from offset 0 by a new group, each record gets the
 * verdict it got the first time: records after the header admitted, the one before it refused.
 * On the rekey path (main thread and two intake threads; those run from dist, `npm run -s build`
 * first) and the keyed path (the correlator).
 */
const FIXTURES = path.resolve(__dirname, '../fixtures');
const lines = (file: string) => readFileSync(path.join(FIXTURES, file), 'utf8').split('\n').filter((l) => l.length > 0);
const [VPC_HEADER, VPC_RECORD] = lines('vpcflow/custom-tcp-flags.txt') as [string, string];
const ZEEK = lines('zeek/conn-zed-sample.log');
const ZEEK_HEADER = ZEEK.filter((l) => l.startsWith('#'));
const ZEEK_RECORD = ZEEK.find((l) => !l.startsWith('#'))!;

/** The n-th record of each input: distinct flows of the same format. */
const vpcRecord = (n: number) => VPC_RECORD.replace(' 43416 ', ` ${50_000 + n} `);
const zeekRecord = (n: number) => ZEEK_RECORD.replace('C8Tful1TvM3Zf5x8fl', `C8Tful1TvM3Zf${String(n).padStart(5, '0')}`).replace('\t39681\t', `\t${40_000 + n}\t`);

type Stage = { start(): Promise<void>; stop(): Promise<void> };

describe.each([
  { path: 'keyed inputs, read by the correlator', keyed: true, threads: 0 },
  { path: 'unkeyed inputs, rekeyed', keyed: false, threads: 0 },
  { path: 'unkeyed inputs, rekeyed on two intake threads', keyed: false, threads: 2 },
])('stream headers against the real broker: $path', ({ keyed, threads }) => {
  const config = testConfig(keyed ? 'headers-keyed' : `headers-rekey-${threads}`);
  config.ingest.threads = threads;
  config.ingest.maxEventAgeMs = 0; // the fixtures' flows are from 2018 and 2019
  const base = config.kafka.inputs[0]!;
  const vpc = { ...base, topic: `${config.kafka.topics.events}.vpc`, format: 'vpcflow' as const, keyed };
  const zeek = { ...base, topic: `${config.kafka.topics.events}.zeek`, format: 'zeek' as const, keyed };
  config.kafka.inputs = [vpc, zeek];
  const group = () => (keyed ? config.kafka.groups.correlate : config.kafka.groups.ingest);
  let kafka: Kafka;
  let redis: Redis;
  const running: Stage[] = [];

  function stage(cfg: Config, metrics: Metrics): Stage {
    return keyed ? new Correlator({ kafka, redis, config: cfg, log: testLog, metrics }) : new Rekey({ kafka, redis, config: cfg, log: testLog, metrics });
  }

  async function started(cfg: Config, metrics: Metrics): Promise<Stage> {
    const s = stage(cfg, metrics);
    await s.start();
    running.push(s);
    return s;
  }

  async function stopAll(): Promise<void> {
    for (const s of running.splice(0)) await s.stop();
  }

  async function produce(topic: string, values: string[]): Promise<void> {
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: values.map((value) => ({ value, partition: 0 })) });
    await producer.disconnect();
  }

  /** Per input, [admitted as events, refused] once `sent` records have been decided (and the header lines skipped, when `headers`). */
  async function decided(metrics: Metrics, sent: number, headers = true): Promise<Record<string, [number, number]>> {
    const count = async (topic: string, outcome: string) => (await metrics.ingestRecords.get()).values.find((v) => v.labels.topic === topic && v.labels.outcome === outcome)?.value ?? 0;
    const out: Record<string, [number, number]> = {};
    for (const [name, topic, headerLines] of [['vpc', vpc.topic, 1], ['zeek', zeek.topic, ZEEK_HEADER.length]] as const) {
      await eventually(async () => ((await count(topic, 'event')) + (await count(topic, 'reject')) >= sent ? true : undefined), 60_000, `${name}: ${sent} records decided`);
      out[name] = [await count(topic, 'event'), await count(topic, 'reject')];
      expect(await count(topic, 'skip')).toBe(headers ? headerLines : 0);
    }
    return out;
  }

  async function groupOf(members: number): Promise<void> {
    const admin = kafka.admin();
    await admin.connect();
    try {
      await eventually(
        async () => {
          const { groups } = await admin.describeGroups([group()]);
          return groups[0]?.state === 'Stable' && groups[0].members.length === members ? true : undefined;
        },
        60_000,
        `${members} members in ${group()}`,
      );
    } finally {
      await admin.disconnect();
    }
  }

  beforeAll(async () => {
    kafka = testKafka();
    redis = new Redis(REDIS_URL);
    await createTopics(kafka, config);
  });

  afterAll(async () => {
    await stopAll();
    await deleteTopics(kafka, config).catch(() => undefined);
    const keys = await redis.keys(`${config.redis.keyPrefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  test('records after a rebalance, a restart and a replay from offset 0 are decided as the first time', async () => {
    // a record before the header (refused: nothing says its format), the header, 3 records
    await produce(vpc.topic, [vpcRecord(0), VPC_HEADER, vpcRecord(1), vpcRecord(2), vpcRecord(3)]);
    await produce(zeek.topic, [zeekRecord(0), ...ZEEK_HEADER, zeekRecord(1), zeekRecord(2), zeekRecord(3)]);
    const first = new Metrics({ defaultMetrics: false });
    await started(config, first);
    expect(await decided(first, 4)).toEqual({ vpc: [3, 1], zeek: [3, 1] });
    const keys = [vpc.topic, zeek.topic].map((t) => `${config.redis.keyPrefix}:stream-header:${t}:0`);
    await eventually(async () => ((await redis.exists(...keys)) === 2 ? true : undefined), 30_000, 'both headers stored');

    // a second reader joins: a rebalance; whoever reads partition 0 now starts its stream over
    await started(config, first);
    await groupOf(2);
    await produce(vpc.topic, [vpcRecord(4), vpcRecord(5), vpcRecord(6)]);
    await produce(zeek.topic, [zeekRecord(4), zeekRecord(5), zeekRecord(6)]);
    expect(await decided(first, 7)).toEqual({ vpc: [6, 1], zeek: [6, 1] });

    // every reader stopped, a new one started: a restart, or the partition on another replica
    await stopAll();
    const restarted = new Metrics({ defaultMetrics: false });
    await started(config, restarted);
    await produce(vpc.topic, [vpcRecord(7), vpcRecord(8)]);
    await produce(zeek.topic, [zeekRecord(7), zeekRecord(8)]);
    expect(await decided(restarted, 2, false)).toEqual({ vpc: [2, 0], zeek: [2, 0] });
    await stopAll();

    // a new group replays from offset 0, with everything stored: the record before the header is refused again
    const replay = { ...config, kafka: { ...config.kafka, groups: { ...config.kafka.groups, ingest: uniq('replay-ingest'), correlate: uniq('replay-correlate') } } };
    const snapshots = await redis.keys(`${config.redis.keyPrefix}:correlate:snapshot:*`);
    if (snapshots.length > 0) await redis.del(...snapshots); // a correlator resumes from its snapshot otherwise
    const replayed = new Metrics({ defaultMetrics: false });
    await started(replay, replayed);
    expect(await decided(replayed, 9)).toEqual({ vpc: [8, 1], zeek: [8, 1] });
  });
});
