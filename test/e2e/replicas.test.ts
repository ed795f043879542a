import { AssignerProtocol, type Admin, type Kafka } from 'kafkajs';
import Redis from 'ioredis';
import { buildAttack, type Attack } from '../../bench/attack';
import { freePort, startCordon, writeConfig, type CordonProcess } from '../../bench/support/cordon-process';
import { loadConfig, type Config } from '../../src/config';
import type { Incident } from '../../src/correlate/incident';
import { IncidentStore } from '../../src/incidents/store';
import { cordonTopics, createKafka, ensureTopics } from '../../src/kafka';
import { partitionFor } from '../../src/partition';
import { eventually, KAFKA_BROKERS, REDIS_URL, testLog, uniq } from '../support/stack';
import { isolatedKafka } from '../../bench/run-config';
import { autoPlaybook, playbookDir } from '../contain/support';

/**
 * Two `cordon run` replicas in one consumer group. An attack starts on a partition one of them
 * owns; that replica is SIGKILLed; the attack goes on. The survivor must take the partition over
 * and resume the campaign from the snapshot in Redis: the same incident (same id) grows.
 *
 * The second stage of the attack lies in a later hour than the first, so a replica that had
 * restarted the campaign from nothing would open an incident with another id (ids come from the
 * root and the campaign window's start, rounded to the hour), or none at all.
 *
 * Needs the build (`npm run -s build`): the replicas are the real service as child processes.
 */
jest.setTimeout(240_000);

const HOUR = 3_600_000;
const PARTITIONS = 2;

describe('two replicas in one consumer group', () => {
  const id = uniq('replicas');
  let kafka: Kafka;
  let admin: Admin;
  let redis: Redis;
  let config: Config;
  const replicas: Array<{ name: string; process: CordonProcess }> = [];

  beforeAll(async () => {
    const base = {
      kafka: {
        brokers: KAFKA_BROKERS,
        partitions: PARTITIONS,
        inputs: [{ topic: `${id}.flows`, format: 'auto' }, { topic: `${id}.anomalies`, format: 'cordon' }],
        ...isolatedKafka(id),
      },
      redis: { url: REDIS_URL, keyPrefix: id },
      correlate: { snapshotIntervalMs: 300 },
      // Containment on in both: one leads (holds the ledger lock), the other is a hot standby.
      contain: {
        enabled: true,
        lockWaitMs: 0,
        playbooks: playbookDir(id, autoPlaybook(id, '  - id: quarantine-root\n    type: quarantine\n    target: root\n    enforcer: labelstore\n    ttl: 1h\n')),
        enforcers: { labelstore: true },
      },
    };
    config = loadConfig({ env: {}, overrides: base });
    kafka = createKafka(config, testLog);
    admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, cordonTopics(config));
    redis = new Redis(REDIS_URL);
    for (const name of ['a', 'b']) {
      const file = writeConfig(`${id}-${name}`, { ...base, kafka: { ...base.kafka, clientId: `${id}-${name}` }, http: { port: await freePort() } });
      replicas.push({ name, process: await startCordon({ name: `${id}-${name}`, configFile: file }) });
    }
    await Promise.all(replicas.map((r) => r.process.waitReady(120_000)));
    const roles = await Promise.all(replicas.map((r) => leadershipRole(r.process.url)));
    expect(roles.sort()).toEqual(['leader', 'standby']);
  });

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.process.stop()));
    await admin?.deleteTopics({ topics: cordonTopics(config).map((t) => t.topic) }).catch(() => {});
    await admin?.disconnect();
    redis?.disconnect();
  });

  it('the survivor takes the killed replica\'s partition and continues its incident (same id, more evidence)', async () => {
    const store = new IncidentStore(redis, config.redis.keyPrefix);
    const start = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR + 5 * 60_000;
    const first = buildAttack(id, start, 0, 2);
    const partition = partitionFor(first.root, PARTITIONS);
    await assigned(2);

    await produce(first);
    const opened = await eventually(
      async () => {
        const i = await incidentOf(store, first.root);
        return i && i.counters.denied >= first.records.length ? i : undefined;
      },
      60_000,
      'the incident of the whole first stage',
    );
    const owner = await ownerOf(partition);
    // Let at least one snapshot of the owner's partition (taken every 300 ms) include the incident.
    await new Promise((r) => setTimeout(r, 2_000));

    const victim = replicas.find((r) => r.name === owner)!;
    victim.process.kill('SIGKILL');
    expect((await victim.process.waitExit(10_000)).signal).toBe('SIGKILL');
    const survivor = replicas.find((r) => r.name !== owner)!;

    const second = buildAttack(id, start + 80 * 60_000, 2, 2);
    expect(second.root).toBe(first.root);
    await produce(second);

    const grown = await eventually(
      async () => {
        const i = await store.get(opened.id);
        return i && i.counters.denied >= opened.counters.denied + second.records.length ? i : undefined;
      },
      150_000,
      'the incident to grow after the takeover',
    );
    expect(await ownerOf(partition)).toBe(survivor.name);
    expect(grown.id).toBe(opened.id);
    expect(grown.firstSeen).toBe(opened.firstSeen);
    expect(grown.lastSeen).toBeGreaterThanOrEqual(second.records[0]!.time);
    expect(grown.counters.denied).toBe(opened.counters.denied + second.records.length);
    expect(grown.entities.length).toBeGreaterThan(opened.entities.length);
    const all = (await store.list(1000)).filter((i) => i.root === first.root);
    expect(all.map((i) => i.id)).toEqual([opened.id]);
    expect(survivor.process.exitStatus).toBeUndefined();
  });

  async function leadershipRole(url: string): Promise<string | undefined> {
    const body = (await (await fetch(`${url}/readyz`)).json()) as { checks: Array<{ name: string; detail?: string }> };
    return body.checks.find((c) => c.name === 'leadership')?.detail?.split(' ', 1)[0];
  }

  async function produce(attack: Attack): Promise<void> {
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    await producer.send({
      topic: config.kafka.inputs[0]!.topic,
      acks: -1,
      messages: attack.records.map((r) => ({ key: r.key, value: r.value, timestamp: String(r.time) })),
    });
    await producer.disconnect();
  }

  async function incidentOf(store: IncidentStore, root: string): Promise<Incident | undefined> {
    return (await store.list(1000)).find((i) => i.root === root);
  }

  /** Which replica (by client id suffix) holds the partition of the correlate group now. */
  async function ownerOf(partition: number): Promise<string | undefined> {
    const { groups } = await admin.describeGroups([config.kafka.groups.correlate]);
    for (const m of groups[0]?.members ?? []) {
      const decoded = AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
      if (decoded?.assignment[config.kafka.inputs[0]!.topic]?.includes(partition)) return m.clientId.slice(id.length + 1);
    }
    return undefined;
  }

  async function assigned(members: number): Promise<void> {
    await eventually(
      async () => {
        const { groups } = await admin.describeGroups([config.kafka.groups.correlate]);
        const g = groups[0];
        return g?.state === 'Stable' && g.members.length === members ? true : undefined;
      },
      90_000,
      `${members} members in a stable correlate group`,
    );
  }
});
