import { readFileSync } from 'node:fs';
import Redis from 'ioredis';
import type { Kafka } from 'kafkajs';
import { freePort, startCordon, writeConfig, type CordonProcess } from '../../bench/support/cordon-process';
import type { Config } from '../../src/config';
import { LabelStoreEnforcer } from '../../src/enforcer/label-store';
import { verifyLedger } from '../../src/ledger/audit';
import { QuarantineRegistry } from '../../src/ledger/registry';
import { autoPlaybook, childConfig, playbookDir, publishIncident, syntheticIncident } from '../contain/support';
import { createTopics, deleteTopics, testKafka } from '../support/kafka';
import { eventually, REDIS_URL } from '../support/stack';
import { TcpProxy, redisAddress } from '../support/tcp-proxy';

/**
 * Two replicas with containment on, each reaching Redis through a TCP proxy of its own. The
 * leader's is cut past its lock's TTL: the other replica takes over; when Redis answers again the
 * cut replica finds its lock taken, steps down, and campaigns again, so that it takes over in turn
 * when the new leader stops (a graceful BullMQ close begun while its connection still reconnects
 * would hang that for good). Needs the build (`npm run -s build`).
 */
jest.setTimeout(240_000);

const STEPS = `  - id: quarantine-root
    type: quarantine
    target: root
    enforcer: labelstore
    ttl: 6s
`;

interface Replica {
  process: CordonProcess;
  proxy: TcpProxy;
}

describe('a replica cut off from Redis', () => {
  let kafka: Kafka;
  let redis: Redis;
  let config: Config | undefined;
  const replicas: Replica[] = [];

  beforeAll(() => {
    kafka = testKafka();
    redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.process.stop()));
    await Promise.all(replicas.map((r) => r.proxy.stop()));
    if (config) await deleteTopics(kafka, config).catch(() => undefined);
    redis.disconnect();
  });

  it('steps down once Redis answers again, and takes over later in turn', async () => {
    const made = await childConfig('redis-cut', playbookDir('redis-cut', autoPlaybook('redis-cut', STEPS)));
    config = made.config;
    await createTopics(kafka, made.config);
    const raw = JSON.parse(readFileSync(made.file, 'utf8')) as { kafka: object; contain: object };
    const spawn = async (name: string): Promise<Replica> => {
      const { host, port: redisPort } = redisAddress(REDIS_URL);
      const proxy = new TcpProxy(host, redisPort);
      await proxy.start();
      const port = await freePort();
      const file = writeConfig(`${made.id}-${name}`, {
        ...raw,
        kafka: { ...raw.kafka, clientId: `${made.id}-${name}` },
        redis: { url: proxy.url, keyPrefix: made.config.redis.keyPrefix },
        http: { port },
        contain: { ...raw.contain, lockWaitMs: 0, lockTtlMs: 3_000, advertiseUrl: `http://127.0.0.1:${port}` },
      });
      const process = await startCordon({ name: `${made.id}-${name}`, configFile: file });
      const replica = { process, proxy };
      replicas.push(replica);
      await process.waitReady(120_000);
      return replica;
    };
    const cut = await spawn('a');
    const other = await spawn('b');
    expect(await role(cut)).toBe('leader');
    const registry = new QuarantineRegistry(redis, made.config.redis.keyPrefix);
    const labels = new LabelStoreEnforcer(redis, made.config.redis.keyPrefix);

    // A quarantine applied by the leader, due while it is cut off.
    const incident = syntheticIncident(`${made.id}-cut`);
    await publishIncident(kafka, made.config, incident);
    await eventually(async () => ((await registry.get(incident.root))?.state === 'applied' ? true : undefined), 60_000, 'applied');

    cut.proxy.cut();
    const cutAt = Date.now();
    await eventually(async () => ((await role(other)) === 'leader' ? true : undefined), 30_000, 'the other replica to lead');
    const takeoverMs = Date.now() - cutAt;
    await new Promise((r) => setTimeout(r, 8_000));
    cut.proxy.restore();
    await eventually(async () => ((await role(cut)) === 'standby' ? true : undefined), 30_000, 'the cut replica to stand by');
    expect(cut.process.logRecords().some((r) => r.msg?.startsWith('leadership lost'))).toBe(true);
    await eventually(async () => ((await registry.get(incident.root))?.state === 'expired' ? true : undefined), 30_000, 'released by the new leader');

    // The cut replica campaigns again: when the leader stops, it takes over.
    const stoppedAt = Date.now();
    await other.process.stop();
    await eventually(async () => ((await role(cut)) === 'leader' ? true : undefined), 30_000, 'the cut replica to lead again');
    process.stdout.write(`redis-cut: the other replica led ${takeoverMs} ms after the cut; the cut one led again ${Date.now() - stoppedAt} ms after the other stopped\n`);
    expect(cut.process.exitStatus).toBeUndefined();
    expect((await labels.changes({ entity: incident.root, kind: 'ip' })).applied).toBe(1);
    await cut.process.stop();
    expect(await verifyLedger(kafka, made.config.kafka.topics.ledger)).toMatchObject({ ok: true });
  });
});

/** 'leader' or 'standby', as the replica's /readyz leadership check says. */
async function role(r: Replica): Promise<string | undefined> {
  try {
    const res = await fetch(`${r.process.url}/readyz`, { signal: AbortSignal.timeout(2_000) });
    const body = (await res.json()) as { checks: Array<{ name: string; detail?: string }> };
    return body.checks.find((c) => c.name === 'leadership')?.detail?.split(' ', 1)[0];
  } catch {
    return undefined;
  }
}
