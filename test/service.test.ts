import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import type { Config } from '../src/config';
import { checkpointSigned, FileCheckpointStore } from '../src/ledger/checkpoint';
import { ledgerKeys } from '../src/ledger/registry';
import { Service } from '../src/service';
import { autoPlaybook, ledgerRecords, playbookDir, publishIncident, syntheticIncident } from './contain/support';
import { createTopics, deleteTopics, testKafka } from './support/kafka';
import { eventually, REDIS_URL, testConfig, testLog } from './support/stack';
import { redisAddress, TcpProxy } from './support/tcp-proxy';

describe('the service as a whole', () => {
  it('a stage that fails to start stops the stages already started and says why', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cordon-bad-playbooks-'));
    writeFileSync(join(dir, 'broken.yaml'), 'apiVersion: cordon.io/v1\nkind: Playbook\nname: broken\nsteps: 12\n');
    const service = new Service(testConfig('badstart', { contain: { playbooks: dir, enforcers: { labelstore: true } } }), testLog);
    await expect(service.start()).rejects.toThrow(/playbooks refused:[\s\S]*broken\.yaml/);
    await eventually(async () => (service.redis.status === 'end' ? true : undefined), 5_000, 'the Redis connection closed');
  });
});

describe('the service across a Redis outage longer than the ledger lock TTL (Redis behind a TCP proxy the test cuts)', () => {
  const kafka = testKafka();
  const { host, port } = redisAddress(REDIS_URL);
  const proxy = new TcpProxy(host, port);
  let direct: Redis;
  let service: Service | undefined;
  let config: Config;

  beforeAll(async () => {
    direct = new Redis(REDIS_URL);
    await proxy.start();
  });
  afterAll(async () => {
    await service?.stop();
    await deleteTopics(kafka, config);
    direct.disconnect();
    await proxy.stop();
  });

  it('/readyz names the ledger writer as not ready while it cannot write, and is ready again once it has its lock back', async () => {
    const playbooks = playbookDir('svc-outage', autoPlaybook('svc-outage', '  - id: quarantine-root\n    type: quarantine\n    target: root\n    enforcer: labelstore\n    ttl: 1h\n'));
    config = testConfig('svc-outage', { contain: { playbooks, enforcers: { labelstore: true } } });
    config.redis.url = proxy.url;
    await createTopics(kafka, config);
    service = new Service(config, testLog);
    await service.start();
    const url = `http://127.0.0.1:${(service.http.server.address() as { port: number }).port}/readyz`;
    const ready = async () => (await fetch(url)).json() as Promise<{ status: string; checks: Array<{ name: string; ok: boolean; error?: string }> }>;
    await eventually(async () => ((await ready()).status === 'ready' ? true : undefined), 20_000, 'ready');

    proxy.cut();
    const lock = ledgerKeys(config.redis.keyPrefix).lock;
    await eventually(async () => ((await direct.exists(lock)) === 0 ? true : undefined), 30_000, 'the writer lock lapsed');
    const down = await ready();
    expect(down.status).toBe('not ready');
    expect(down.checks.find((c) => c.name === 'ledger')).toMatchObject({ ok: false, error: expect.stringMatching(/^the ledger writer lock could not be renewed since/) });

    proxy.restore();
    const up = await eventually(async () => {
      const r = await ready();
      return r.status === 'ready' ? r : undefined;
    }, 30_000, 'ready again');
    expect(up.checks.find((c) => c.name === 'ledger')).toEqual({ name: 'ledger', ok: true });
    expect(await direct.get(lock)).toBe(service.containment!.ledger.token);
  }, 120_000);
});

describe('a consumer that dies is restarted', () => {
  const kafka = testKafka();
  let service: Service | undefined;
  let config: Config;

  afterAll(async () => {
    await service?.stop();
    await deleteTopics(kafka, config);
  });

  it('a correlator that cannot join its group (held by a consumer of another protocol) is not ready, and runs once restarted', async () => {
    config = testConfig('svc-crash', { contain: { enabled: false } });
    await createTopics(kafka, config);
    // Another deployment misconfigured onto the correlator's group, with the default assigner.
    const intruder = kafka.consumer({ groupId: config.kafka.groups.correlate, maxWaitTimeInMs: 200 });
    await intruder.connect();
    await intruder.subscribe({ topic: config.kafka.topics.events, fromBeginning: true });
    await intruder.run({ eachMessage: async () => undefined });
    await eventually(async () => ((await describeGroup(kafka, config.kafka.groups.correlate)) === 'Stable' ? true : undefined), 20_000, 'the intruder holds the group');

    service = new Service(config, testLog);
    await service.start();
    const url = `http://127.0.0.1:${(service.http.server.address() as { port: number }).port}`;
    const correlate = async () => ((await (await fetch(`${url}/readyz`)).json()) as { checks: Array<{ name: string; ok: boolean; error?: string }> }).checks.find((c) => c.name === 'correlate');
    const down = await eventually(async () => {
      const c = await correlate();
      return c?.ok === false ? c : undefined;
    }, 20_000, 'correlate not ready');
    expect(down.error).toMatch(/^consumer correlate crashed at \S+ \(.+\); Cordon restarts it \(attempt \d+\)$/);

    await intruder.disconnect();
    await eventually(async () => ((await correlate())?.ok ? true : undefined), 40_000, 'correlate ready again');
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/cordon_consumer_restarts_total\{consumer="correlate"\} [1-9]/);
  }, 90_000);
});

async function describeGroup(kafka: ReturnType<typeof testKafka>, groupId: string): Promise<string | undefined> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.describeGroups([groupId])).groups[0]?.state;
  } finally {
    await admin.disconnect();
  }
}

describe('the service with signed ledger checkpoints', () => {
  const kafka = testKafka();
  let service: Service | undefined;
  let config: Config;

  afterAll(async () => {
    await service?.stop();
    await deleteTopics(kafka, config);
  });

  it('a checkpoint store that refuses writes turns /readyz red and counts failures; once it accepts, the applied quarantine is checkpointed and ready again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cordon-svc-checkpoints-'));
    const keys = generateKeyPairSync('ed25519');
    const keyFile = join(dir, 'checkpoint.key');
    writeFileSync(keyFile, keys.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const storeDir = join(dir, 'not-yet'); // appendFile fails with ENOENT until the directory exists
    const playbooks = playbookDir('svc-ckpt', autoPlaybook('svc-ckpt', '  - id: quarantine-root\n    type: quarantine\n    target: root\n    enforcer: labelstore\n    ttl: 1h\n'));
    config = testConfig('svc-ckpt', {
      contain: { playbooks, enforcers: { labelstore: true } },
      ledger: { checkpoint: { privateKeyFile: keyFile, intervalMs: 1000, store: { kind: 'file', path: join(storeDir, 'checkpoints.jsonl') } } },
    });
    await createTopics(kafka, config);
    service = new Service(config, testLog);
    await service.start();
    const base = `http://127.0.0.1:${(service.http.server.address() as { port: number }).port}`;
    const check = async () => ((await (await fetch(`${base}/readyz`)).json()) as { checks: Array<{ name: string; ok: boolean; error?: string }> }).checks.find((c) => c.name === 'ledger-checkpoints');
    expect(await check()).toEqual({ name: 'ledger-checkpoints', ok: true }); // an empty ledger has nothing to checkpoint

    await publishIncident(kafka, config, syntheticIncident('svc-ckpt'));
    const down = await eventually(async () => {
      const c = await check();
      return c?.ok === false ? c : undefined;
    }, 30_000, 'ledger-checkpoints not ready');
    expect(down.error).toMatch(/^checkpoint of seq \d+ to file .*checkpoints\.jsonl failed: ENOENT/);
    expect(await (await fetch(`${base}/metrics`)).text()).toMatch(/cordon_ledger_checkpoints_total\{outcome="failed"\} [1-9]/);

    mkdirSync(storeDir);
    await eventually(async () => ((await check())?.ok ? true : undefined), 15_000, 'ledger-checkpoints ready again');
    const stored = await new FileCheckpointStore(join(storeDir, 'checkpoints.jsonl')).list();
    const applied = (await ledgerRecords(kafka, config)).filter((r) => r.action === 'quarantine_applied' && (r.after as { state?: string } | null)?.state === 'applied');
    expect(applied).toHaveLength(1);
    expect(stored.at(-1)!.seq).toBeGreaterThanOrEqual(applied[0]!.seq);
    expect(stored.every((c) => checkpointSigned(c, [keys.publicKey]))).toBe(true);
    expect(await (await fetch(`${base}/metrics`)).text()).toMatch(/cordon_ledger_checkpoints_total\{outcome="written"\} [1-9]/);
  }, 90_000);
});
