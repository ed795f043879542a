import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Redis from 'ioredis';
import type { Kafka } from 'kafkajs';
import { freePort, startCordon, writeConfig, type CordonProcess } from '../../bench/support/cordon-process';
import type { Config } from '../../src/config';
import type { Target } from '../../src/enforcer/enforcer';
import { LabelStoreEnforcer } from '../../src/enforcer/label-store';
import { verifyLedger } from '../../src/ledger/audit';
import { QuarantineRegistry } from '../../src/ledger/registry';
import type { Lease } from '../../src/ledger/records';
import { autoPlaybook, childConfig, leaseStep, ledgerRecords, playbookDir, publishIncident, syntheticIncident } from '../contain/support';
import { createTopics, deleteTopics, testKafka } from '../support/kafka';
import { eventually, REDIS_URL } from '../support/stack';

/**
 * Three `cordon run` replicas with containment on, one ledger: exactly one leads (holds the ledger
 * lock), the others are hot standbys that serve the API and forward decisions to the leader. The
 * leader is SIGKILLed: a standby takes over within the lock's TTL, releases the lease that fell due
 * meanwhile, applies nothing twice; the next leader is SIGTERMed and hands over at once. A leader
 * paused (SIGSTOP) past its TTL and resumed after the takeover has its late writes refused.
 * Takeover times are printed. Needs the build (`npm run -s build`).
 */
jest.setTimeout(300_000);

const STEPS = `  - id: quarantine-root
    type: quarantine
    target: root
    enforcer: labelstore
    ttl: 8s
`;
const TOKEN = 'failover-responder-token';
const AUTH = { tokens: [{ name: 'oncall', role: 'responder', sha256: createHash('sha256').update(TOKEN).digest('hex') }] };

interface Replica {
  name: string;
  process: CordonProcess;
}

describe('replicas with containment on: failover', () => {
  let kafka: Kafka;
  let redis: Redis;
  const configs: Config[] = [];
  const running: CordonProcess[] = [];

  beforeAll(() => {
    kafka = testKafka();
    redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    await Promise.all(running.map((p) => p.stop()));
    for (const c of configs) await deleteTopics(kafka, c).catch(() => undefined);
    redis.disconnect();
  });

  async function setup(name: string) {
    const made = await childConfig(name, playbookDir(name, autoPlaybook(name, STEPS)));
    configs.push(made.config);
    await createTopics(kafka, made.config);
    const raw = JSON.parse(readFileSync(made.file, 'utf8')) as { kafka: object; contain: object };
    const spawn = async (replica: string, env: Record<string, string> = {}): Promise<Replica> => {
      const port = await freePort();
      const file = writeConfig(`${made.id}-${replica}`, {
        ...raw,
        kafka: { ...raw.kafka, clientId: `${made.id}-${replica}` },
        http: { port },
        contain: { ...raw.contain, lockWaitMs: 0, advertiseUrl: `http://127.0.0.1:${port}` },
        auth: AUTH,
      });
      const process = await startCordon({ name: `${made.id}-${replica}`, configFile: file, env });
      running.push(process);
      await process.waitReady(120_000);
      return { name: replica, process };
    };
    return { ...made, spawn, registry: new QuarantineRegistry(redis, made.config.redis.keyPrefix), labels: new LabelStoreEnforcer(redis, made.config.redis.keyPrefix) };
  }

  it('SIGKILL: a standby takes over, releases the lease that fell due, applies nothing twice; SIGTERM hands over at once', async () => {
    const s = await setup('failover');
    const first = await s.spawn('a');
    const standbys = [await s.spawn('b'), await s.spawn('c')];
    expect(await role(first)).toBe('leader');
    for (const r of standbys) expect(await role(r)).toBe('standby');
    expect(await metric(first, 'cordon_leader')).toBe(1);
    expect(await metric(standbys[0]!, 'cordon_leader')).toBe(0);

    // A decision on a standby is forwarded to the leader.
    const a = syntheticIncident(`${s.id}-fwd`);
    await publishIncident(kafka, s.config, a);
    await until(s.registry, a.root, 'applied', 60_000);
    const released = await fetch(`${standbys[0]!.process.url}/api/quarantines/${encodeURIComponent(a.root)}/release`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'released on a standby' }),
    });
    expect(released.status).toBe(200);
    expect(released.headers.get('x-cordon-served-by')).toBe(first.process.url);
    expect(((await released.json()) as Lease).state).toBe('released');

    // The leader dies with a lease that falls due while no replica leads.
    const b = syntheticIncident(`${s.id}-due`);
    await publishIncident(kafka, s.config, b);
    const applied = await until(s.registry, b.root, 'applied', 60_000);
    const killedAt = Date.now();
    first.process.kill('SIGKILL');
    const next = await newLeader(standbys, 30_000);
    const sigkillMs = Date.now() - killedAt;
    const expired = await until(s.registry, b.root, 'expired', 30_000);
    const target: Target = { entity: b.root, kind: 'ip', ip: b.root.slice(3) };
    const changes = await s.labels.changes(target);
    const lateMs = changes.revertedAt! - applied.expiresAt;

    // Quarantines flow again under the new leader.
    const c = syntheticIncident(`${s.id}-after`);
    const publishedAt = Date.now();
    await publishIncident(kafka, s.config, c);
    await until(s.registry, c.root, 'applied', 60_000);
    const flowMs = Date.now() - publishedAt;

    const last = standbys.find((r) => r !== next)!;
    const termAt = Date.now();
    next.process.kill('SIGTERM');
    await newLeader([last], 30_000);
    const sigtermMs = Date.now() - termAt;
    expect((await next.process.waitExit(30_000)).code).toBe(0);
    expect(await metric(last, 'cordon_leader_takeovers_total')).toBe(1);

    process.stdout.write(
      `failover: SIGKILL → standby leads in ${sigkillMs} ms (lock TTL ${s.config.contain.lockTtlMs} ms); the due lease released ${lateMs} ms after its expiry; ` +
        `an incident published after the takeover quarantined in ${flowMs} ms; SIGTERM → standby leads in ${sigtermMs} ms\n`,
    );
    expect(sigkillMs).toBeLessThan(s.config.contain.lockTtlMs + 3_000);
    expect(sigtermMs).toBeLessThan(5_000);
    expect(expired.state).toBe('expired');
    expect(lateMs).toBeLessThan(2_000 + sigkillMs);
    expect(changes).toMatchObject({ applied: 1, reverted: 1 });
    for (const i of [a, c]) expect((await s.labels.changes({ entity: i.root, kind: 'ip' })).applied).toBe(1);

    await last.process.stop();
    const records = await ledgerRecords(kafka, s.config);
    expect(records.filter((r) => r.target === b.root && r.action.startsWith('quarantine_')).map(leaseStep)).toEqual([
      'quarantine_applied:pending',
      'quarantine_applied:applied',
      'quarantine_expired:expired',
    ]);
    expect(await verifyLedger(kafka, s.config.kafka.topics.ledger)).toMatchObject({ ok: true, count: records.length });
  });

  it('SIGSTOP: a leader paused past its lease and resumed after the takeover has its late writes refused', async () => {
    const s = await setup('sigstop');
    const env = { CORDON_FAULT: 'before-apply', CORDON_FAULT_SIGNAL: 'SIGSTOP', CORDON_FAULT_ONCE_FILE: `${s.file}.stopped` };
    const paused = await s.spawn('x', env);
    const standby = await s.spawn('y', env);
    expect(await role(paused)).toBe('leader');
    const incident = syntheticIncident(`${s.id}-stop`);
    await publishIncident(kafka, s.config, incident);
    // The leader records the pending lease, then stops itself before the enforcer call.
    await until(s.registry, incident.root, 'pending', 60_000);
    const stoppedAt = Date.now();
    await newLeader([standby], 30_000);
    const takeoverMs = Date.now() - stoppedAt;
    await until(s.registry, incident.root, 'applied', 60_000);

    paused.process.kill('SIGCONT');
    await eventually(async () => (paused.process.logRecords().some((r) => r.msg?.startsWith('leadership lost')) ? true : undefined), 20_000, 'the resumed leader steps down');
    await eventually(async () => ((await role(paused).catch(() => undefined)) === 'standby' ? true : undefined), 20_000, 'the resumed leader is a standby');
    process.stdout.write(`failover: SIGSTOP → standby leads in ${takeoverMs} ms; the resumed leader stood down\n`);

    const target: Target = { entity: incident.root, kind: 'ip', ip: incident.root.slice(3) };
    expect((await s.labels.changes(target)).applied).toBe(1);
    expect(paused.process.exitStatus).toBeUndefined();
    expect(await role(standby)).toBe('leader');
    // The new leader releases the lease at its expiry; the resumed one touches nothing.
    await until(s.registry, incident.root, 'expired', 30_000);
    expect(await s.labels.changes(target)).toMatchObject({ applied: 1, reverted: 1 });
    await Promise.all([paused.process.stop(), standby.process.stop()]);
    const records = await ledgerRecords(kafka, s.config);
    expect(records.filter((r) => r.target === incident.root && r.action.startsWith('quarantine_')).map(leaseStep)).toEqual([
      'quarantine_applied:pending',
      'quarantine_applied:applied',
      'quarantine_expired:expired',
    ]);
    expect(await verifyLedger(kafka, s.config.kafka.topics.ledger)).toMatchObject({ ok: true, count: records.length });
  });
});

async function readiness(r: Replica): Promise<{ status: string; checks: Array<{ name: string; ok: boolean; detail?: string; error?: string }> }> {
  const res = await fetch(`${r.process.url}/readyz`, { signal: AbortSignal.timeout(2_000) });
  return (await res.json()) as never;
}

/** 'leader' or 'standby', as the replica's /readyz leadership check says. */
async function role(r: Replica): Promise<string | undefined> {
  const check = (await readiness(r)).checks.find((c) => c.name === 'leadership');
  return check?.detail?.split(' ', 1)[0];
}

async function metric(r: Replica, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${r.process.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

/** The replica among `candidates` that leads, once one does (polled every 50 ms). */
async function newLeader(candidates: Replica[], timeoutMs: number): Promise<Replica> {
  return eventually(
    async () => {
      for (const r of candidates) if ((await role(r).catch(() => undefined)) === 'leader') return r;
      return undefined;
    },
    timeoutMs,
    'a standby to lead',
  );
}

async function until(registry: QuarantineRegistry, target: string, state: Lease['state'], timeoutMs: number): Promise<Lease> {
  return eventually(async () => {
    const lease = await registry.get(target);
    return lease?.state === state ? lease : undefined;
  }, timeoutMs, `${target} ${state}`);
}
