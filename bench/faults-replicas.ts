import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Redis from 'ioredis';
import type { Config } from '../src/config';
import { LabelStoreEnforcer } from '../src/enforcer/label-store';
import { IncidentStore } from '../src/incidents/store';
import { cordonTopics, createKafka, ensureTopics, type Admin, type Kafka, type Message } from '../src/kafka';
import { verifyLedger } from '../src/ledger/audit';
import { readLedger } from '../src/ledger/reader';
import type { LedgerRecord } from '../src/ledger/records';
import { QuarantineRegistry } from '../src/ledger/registry';
import { createLogger } from '../src/logger';
import { loadConfig } from '../src/config';
import { buildAttack, type Attack } from './attack';
import { isolatedKafka } from './run-config';
import { freePort, OUTPUT_DIR, startCordon, writeConfig, type CordonProcess } from './support/cordon-process';
import { expectAttacksCounted, inputLag, leases, orphanEnds, sendRetrying, sleep, writePlaybook, type Check, type Expect, type Result } from './support/fault-trial';
import { redisAddress, TcpProxy } from '../test/support/tcp-proxy';

/**
 * The replica rows of `npm run faults` (issue #14): three `cordon run` replicas with containment on,
 * one ledger, while attacks yield FAULTS_QUARANTINES (50) quarantines in the label store.
 *
 *   - leader-sigkill: the leader is SIGKILLed, again and again while attacks arrive; each time a
 *     new replica is started in its place.
 *   - leader-sigstop: the leader is paused (SIGSTOP) past its lock's TTL, then continued. The first
 *     two pauses come from the leaders themselves at CORDON_FAULT points, so that a write is in
 *     flight: after the enforcer applied, before the ledger says so (a late ledger append), then
 *     before the enforcer call (a late enforcer call); the third is sent by the bench at any moment.
 *     Each resumed replica must log its late writes refused, step down, and stay up.
 *   - replica-redis-cut: every replica reaches Redis through a TCP proxy of its own
 *     (test/support/tcp-proxy.ts); the leader's is cut for FAULTS_REDIS_CUT_S (10) seconds, again
 *     and again. The cut replica must step down once it reaches Redis again, and stay up.
 *
 * The invariants are bench/faults.ts's: no event lost or counted twice, one incident per attack,
 * every attack quarantined once, every quarantine released within 2 s of its expiry (or of the
 * takeover, for one that fell due while no replica led), one pending and one end record per lease,
 * the ledger verifies. Besides: no record of a stale term lands after its successor's first.
 * A row's takeover times run from the fault to the moment another replica's /readyz says it leads.
 * The replicas run with contain.lockTtlMs FAULTS_LOCK_TTL_MS (3 s): a SIGKILL takeover is about that.
 */
export const REPLICA_ROWS = ['leader-sigkill', 'leader-sigstop', 'replica-redis-cut'] as const;
export type ReplicaRow = (typeof REPLICA_ROWS)[number];

export interface ReplicaOptions {
  /** The quarantines' TTL (s). */
  ttlS: number;
  /** How many attacks, each quarantining its root once. */
  quarantines: number;
  lockTtlMs: number;
  redisCutS: number;
  brokers: string[];
  redisUrl: string;
}

const REPLICAS = 3;
const ON_TIME_MS = 2_000;
const ATTACK_EVERY_MS = 1_500;
/** The pause between one fault's recovery and the next fault. */
const FAULT_GAP_MS = 4_000;
/** A fault that no other replica took over within this long is a violated invariant (the target is 5 s). */
const TAKEOVER_TIMEOUT_MS = 30_000;
const LATE_WRITE = /^late write refused/;
const STEPPED_DOWN = /^leadership lost/;

interface Replica {
  name: string;
  process: CordonProcess;
  /** replica-redis-cut: this replica's way to Redis. */
  proxy?: TcpProxy;
}

/** What a replica's /readyz `leadership` check says. */
interface Role {
  role: 'leader' | 'standby' | 'unknown';
  /** Since when it has had its role (epoch ms). */
  since?: number;
}

/** One fault: from when it struck to when another replica led. */
interface Fault {
  victim: Replica;
  from: number;
  to: number;
  /** Whether another replica took over (within TAKEOVER_TIMEOUT_MS); if not, `to` is when any replica led again. */
  takenOver: boolean;
  /** leader-sigstop: how the pause came (fault point or the bench), and the late writes the victim logged as refused. */
  how?: string;
  refused?: string[];
  /** The victim stepped down (logged it, and /readyz says standby) and is still running. */
  steppedDown?: boolean;
}

export class ReplicaTrial {
  private readonly id: string;
  private readonly live: Replica[] = [];
  private readonly started: Replica[] = [];
  private readonly attacks: Attack[] = [];
  private readonly faults: Fault[] = [];
  private raw!: Record<string, unknown> & { contain: object; kafka: object };
  private config!: Config;
  private kafka!: Kafka;
  private admin!: Admin;
  private redis!: Redis;
  private produced = 0;
  private workloadDone = false;
  private note = '';

  constructor(
    private readonly row: ReplicaRow,
    private readonly options: ReplicaOptions,
    private readonly pool: Message[],
  ) {
    this.id = `faults-${row}-${Date.now().toString(36)}`;
  }

  async run(): Promise<Result> {
    await this.setup();
    try {
      const workload = this.workload().finally(() => (this.workloadDone = true));
      await this.fault();
      await workload;
      await this.settle();
      await this.stopAll();
      return await this.check();
    } finally {
      await Promise.all(this.started.map((r) => r.process.stop()));
      await Promise.all(this.started.map((r) => r.proxy?.stop()));
      await this.admin.deleteTopics({ topics: cordonTopics(this.config).map((t) => t.topic) }).catch(() => {});
      await this.admin.disconnect();
      this.redis.disconnect();
    }
  }

  private async setup(): Promise<void> {
    this.raw = {
      log: { level: 'warn' },
      kafka: { brokers: this.options.brokers, partitions: 3, inputs: [{ topic: `${this.id}.flows`, format: 'auto' }], ...isolatedKafka(this.id) },
      redis: { url: this.options.redisUrl, keyPrefix: this.id },
      ingest: { maxEventAgeMs: 0 },
      correlate: { snapshotIntervalMs: 500 },
      contain: {
        playbooks: writePlaybook(this.id, this.options.ttlS, 'labelstore'),
        enforcers: { labelstore: true },
        reconcileIntervalMs: 1_000,
        lockWaitMs: 0,
        lockTtlMs: this.options.lockTtlMs,
        breaker: { maxConcurrent: 100_000, maxNew: 100_000 },
      },
    };
    this.config = loadConfig({ file: writeConfig(`${this.id}-base`, { ...this.raw, http: { port: 1 } }), env: {} });
    this.kafka = createKafka(this.config, createLogger('fatal'), `${this.id}-bench`);
    this.admin = this.kafka.admin();
    await this.admin.connect();
    await ensureTopics(this.admin, cordonTopics(this.config));
    this.redis = new Redis(this.options.redisUrl);
    for (let i = 0; i < REPLICAS; i++) await this.spawn(i === 0 ? 'after-apply' : 'before-apply');
  }

  /** Starts one more replica (on its own port and client id) and waits until it is ready. */
  private async spawn(faultPoint?: 'after-apply' | 'before-apply'): Promise<Replica> {
    const name = `${this.id}-r${this.started.length + 1}`;
    const port = await freePort();
    let proxy: TcpProxy | undefined;
    if (this.row === 'replica-redis-cut') {
      const { host, port: redisPort } = redisAddress(this.options.redisUrl);
      proxy = new TcpProxy(host, redisPort);
      await proxy.start();
    }
    const file = writeConfig(name, {
      ...this.raw,
      kafka: { ...this.raw.kafka, clientId: name },
      redis: { url: proxy?.url ?? this.options.redisUrl, keyPrefix: this.id },
      http: { port },
      contain: { ...this.raw.contain, advertiseUrl: `http://127.0.0.1:${port}` },
    });
    // leader-sigstop: the first leader pauses itself after an enforcer call, the next one before one (once each).
    const env: Record<string, string> =
      this.row === 'leader-sigstop' && faultPoint
        ? { CORDON_FAULT: faultPoint, CORDON_FAULT_SIGNAL: 'SIGSTOP', CORDON_FAULT_ONCE_FILE: this.marker(faultPoint) }
        : {};
    const child = await startCordon({ name, configFile: file, env: { CORDON_LOG_LEVEL: process.env.FAULTS_LOG_LEVEL ?? 'warn', ...env } });
    const replica: Replica = { name, process: child, ...(proxy ? { proxy } : {}) };
    this.started.push(replica);
    this.live.push(replica);
    await child.waitReady(120_000);
    return replica;
  }

  /** The file a fault point writes just before the process pauses itself there. */
  private marker(point: 'after-apply' | 'before-apply'): string {
    return join(OUTPUT_DIR, `${this.id}.${point}.paused`);
  }

  /** The background in slices, each followed by an attack, one every ATTACK_EVERY_MS. */
  private async workload(): Promise<void> {
    const producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry: { retries: 30, maxRetryTime: 5_000 } });
    await producer.connect();
    const topic = this.config.kafka.inputs[0]!.topic;
    const base = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 2 * 3_600_000;
    const steps = this.options.quarantines;
    const slice = Math.ceil(this.pool.length / steps);
    try {
      for (let i = 0; i < steps; i++) {
        const attack = buildAttack(`${this.id}-${i}`, base + i * 60_000);
        this.attacks.push(attack);
        const messages = [...this.pool.slice(i * slice, (i + 1) * slice), ...attack.records.map((r) => ({ key: r.key, value: r.value, timestamp: String(r.time) }))];
        for (let j = 0; j < messages.length; j += 1_000) await sendRetrying(() => producer.send({ topic, acks: -1, messages: messages.slice(j, j + 1_000) }));
        this.produced += messages.length;
        await sleep(ATTACK_EVERY_MS);
      }
    } finally {
      await producer.disconnect();
    }
  }

  /** Faults one after another while the attacks arrive (at least three). */
  private async fault(): Promise<void> {
    await sleep(FAULT_GAP_MS);
    for (let n = 0; n < 3 || !this.workloadDone; n++) {
      if (this.row === 'leader-sigkill') await this.killLeader();
      else if (this.row === 'leader-sigstop') await this.pauseLeader(n);
      else await this.cutLeader();
      await sleep(FAULT_GAP_MS);
    }
    const steps = this.faults.map((f) => `${((f.to - f.from) / 1000).toFixed(1)} s${f.takenOver ? '' : ' NOT taken over'}${f.how ? ` (${f.how}${f.refused ? `; ${describeRefused(f.refused)}` : ''})` : ''}`);
    this.note = `${this.faults.length} faults, each until another replica led: ${steps.join(', ')}`;
  }

  private async killLeader(): Promise<void> {
    const replica = await this.leader();
    const from = Date.now();
    replica.process.kill('SIGKILL');
    await replica.process.waitExit(10_000);
    this.live.splice(this.live.indexOf(replica), 1);
    this.faults.push({ victim: replica, from, ...(await this.takenOver(replica, from)) });
    await this.spawn();
  }

  /**
   * Pauses 0 and 1 are the leaders' own (CORDON_FAULT points: a write in flight), later ones the
   * bench's. Each lasts past the TTL and until another replica leads, plus a second.
   */
  private async pauseLeader(n: number): Promise<void> {
    let victim: Replica;
    let from: number;
    let how: string;
    if (n < 2) {
      const marker = this.marker(n === 0 ? 'after-apply' : 'before-apply');
      victim = await this.waitFor(async () => (existsSync(marker) ? this.live.find((r) => isStopped(r.process.pid)) : undefined), 120_000, `a leader pausing itself (${marker})`);
      from = statSync(marker).mtimeMs;
      how = n === 0 ? 'paused itself after an enforcer call, before its ledger record' : 'paused itself before an enforcer call';
    } else {
      victim = await this.leader();
      from = Date.now();
      victim.process.kill('SIGSTOP');
      how = 'SIGSTOP from the bench';
    }
    const { to, takenOver } = await this.takenOver(victim, from);
    await sleep(Math.max(0, to + 1_000 - Date.now()));
    const logged = victim.process.logRecords().length;
    victim.process.kill('SIGCONT');
    const steppedDown = await this.stepsDown(victim, logged);
    const refused = victim.process
      .logRecords()
      .slice(logged)
      .filter((r) => LATE_WRITE.test(r.msg ?? ''))
      .map((r) => String(r.write));
    this.faults.push({ victim, from, to, takenOver, how, refused, steppedDown });
  }

  private async cutLeader(): Promise<void> {
    const replica = await this.leader();
    const from = Date.now();
    replica.proxy!.cut();
    const taken = await this.takenOver(replica, from);
    await sleep(Math.max(0, from + this.options.redisCutS * 1000 - Date.now()));
    const logged = replica.process.logRecords().length;
    replica.proxy!.restore();
    const restored = Date.now();
    const steppedDown = await this.stepsDown(replica, logged);
    // Nobody took over: once Redis answers again the victim takes its lapsed lock back, and leads on.
    const to = taken.takenOver ? taken.to : await this.takenOver(undefined, restored).then((t) => t.to);
    this.faults.push({ victim: replica, from, to, takenOver: taken.takenOver, how: `Redis cut ${((restored - from) / 1000).toFixed(0)} s`, steppedDown: taken.takenOver ? steppedDown : undefined });
  }

  /** The one replica that leads now (polled every 50 ms). */
  private leader(): Promise<Replica> {
    return this.waitFor(async () => {
      const roles = await Promise.all(this.live.map(roleOf));
      const leaders = this.live.filter((_, i) => roles[i]!.role === 'leader');
      return leaders.length === 1 ? leaders[0] : undefined;
    }, 60_000, 'one leader');
  }

  /**
   * When a replica other than `victim` took the lead after `from`: the `leader since` its /readyz
   * says. If none did within TAKEOVER_TIMEOUT_MS: when any replica leads again (the victim too).
   */
  private async takenOver(victim: Replica | undefined, from: number): Promise<{ to: number; takenOver: boolean }> {
    const since = (candidates: Replica[], timeoutMs: number) =>
      this.waitFor(async () => {
        const roles = await Promise.all(candidates.map(roleOf));
        return roles.find((r) => r.role === 'leader' && r.since! >= from)?.since;
      }, timeoutMs, `takeover from ${victim?.name ?? 'nobody'}`);
    const other = await since(this.live.filter((r) => r !== victim), TAKEOVER_TIMEOUT_MS).catch(() => undefined);
    if (other !== undefined) return { to: other, takenOver: true };
    const any = await this.leader();
    return { to: Math.max(from, (await roleOf(any)).since ?? Date.now()), takenOver: false };
  }

  /** Whether the resumed (or reconnected) victim logs that it lost the lead, answers standby, and still runs. */
  private async stepsDown(victim: Replica, logged: number): Promise<boolean> {
    return this.waitFor(
      async () => {
        if (victim.process.exitStatus) return false;
        const said = victim.process.logRecords().slice(logged).some((r) => STEPPED_DOWN.test(r.msg ?? ''));
        return said && (await roleOf(victim)).role === 'standby' ? true : undefined;
      },
      30_000,
      `${victim.name} to step down`,
    ).catch(() => false);
  }

  private async waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = await probe();
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`${this.row}: no ${what} within ${timeoutMs} ms`);
      await sleep(50);
    }
  }

  /** Waits until every attack's incident counts all its records and every lease has ended. */
  private async settle(): Promise<void> {
    const deadline = Date.now() + 120_000 + this.options.ttlS * 1000;
    while (Date.now() < deadline) {
      if (await this.settled().catch(() => false)) return;
      await sleep(1_000);
    }
  }

  private async settled(): Promise<boolean> {
    const all = leases(await this.ledger());
    const incidents = await new IncidentStore(this.redis, this.config.redis.keyPrefix).list(10_000);
    const complete = this.attacks.every((a) => incidents.some((i) => i.root === a.root && i.counters.denied >= a.records.length));
    const quarantined = this.attacks.every((a) => all.some((l) => l.target === a.root));
    return complete && quarantined && all.every((l) => l.endedAt) && (await inputLag(this.admin, this.config)) === 0;
  }

  /** Standbys first, the leader last, so that no takeover happens on the way out. */
  private async stopAll(): Promise<void> {
    const roles = await Promise.all(this.live.map(async (r) => ({ r, leads: (await roleOf(r)).role === 'leader' })));
    await Promise.all(roles.filter((x) => !x.leads).map((x) => x.r.process.stop(60_000)));
    await Promise.all(roles.filter((x) => x.leads).map((x) => x.r.process.stop(60_000)));
    const bad = this.live.filter((r) => r.process.exitStatus?.code !== 0);
    if (bad.length) this.note += `; the final graceful stop of ${bad.map((r) => r.name).join(', ')} did not end with code 0`;
  }

  private async check(): Promise<Result> {
    const checks: Check[] = [];
    const expect: Expect = (name, ok, detail) => void checks.push({ name, ok, detail });
    const ledger: LedgerRecord[] = [];
    for await (const m of readLedger(this.kafka, this.config.kafka.topics.ledger, { idleTimeoutMs: 10_000 })) ledger.push(JSON.parse(String(m.value)) as LedgerRecord);
    const writers: Array<string | undefined> = [];
    for await (const m of readLedger(this.kafka, this.config.kafka.topics.ledger, { idleTimeoutMs: 10_000, raw: true })) writers.push(m.writer);
    const incidents = await new IncidentStore(this.redis, this.config.redis.keyPrefix).list(10_000);
    const counted = expectAttacksCounted(this.attacks, incidents, await inputLag(this.admin, this.config), expect);

    const all = leases(ledger);
    const labelstore = new LabelStoreEnforcer(this.redis, this.config.redis.keyPrefix);
    let appliedTwice = 0;
    for (const l of all) {
      const changes = await labelstore.changes({ entity: l.target, kind: 'pod' });
      if (l.appliedCount > 1 || changes.applied > 1) appliedTwice++;
      l.restoredAt = changes.revertedAt;
    }
    const neverQuarantined = this.attacks.filter((a) => !all.some((l) => l.target === a.root && l.appliedCount > 0)).length;
    expect('every attack quarantined, once', appliedTwice + neverQuarantined === 0, `${neverQuarantined} never, ${appliedTwice} twice`);
    const released = all.filter((l) => l.endedAt && l.restoredAt);
    const lateness = released.map((l) => l.restoredAt! - this.dueAt(l.expiresAt));
    const late = lateness.filter((ms) => ms > ON_TIME_MS);
    const unreleased = all.length - released.length;
    expect('every quarantine released within 2 s of expiry (plus the takeover)', unreleased + late.length === 0, `${unreleased} never, ${late.length} late${late.length ? ` (worst ${Math.max(...late)} ms after due)` : ''}`);
    const live = await new QuarantineRegistry(this.redis, this.config.redis.keyPrefix).liveCount();
    expect('no lease left', live === 0, `${live} live in the registry`);
    const orphans = all.reduce((n, l) => n + l.extraRecords, 0) + orphanEnds(ledger);
    expect('each lease recorded once: one pending, one end', orphans === 0, `${orphans} extra record(s)`);
    const verify = await verifyLedger(this.kafka, this.config.kafka.topics.ledger);
    expect('the ledger verifies', verify.ok, verify.ok ? `${verify.count} records` : `broken at seq ${verify.seq}: ${verify.reason}`);
    const stuck = this.faults.filter((f) => !f.takenOver);
    expect(`every fault taken over by another replica within ${TAKEOVER_TIMEOUT_MS / 1000} s`, stuck.length === 0, `${this.faults.length - stuck.length} of ${this.faults.length}${stuck.length ? ` (not: ${stuck.map((f) => f.victim.name).join(', ')})` : ''}`);
    this.checkFencing(writers, verify.fenced ?? 0, expect);

    const recordLags = released.map((l) => l.endedAt! - l.restoredAt!);
    return {
      fault: this.row,
      produced: this.produced,
      incidents: incidents.length,
      applied: all.filter((l) => l.appliedCount > 0).length,
      released: released.length,
      lost: counted.lost + neverQuarantined,
      duplicated: counted.duplicated + appliedTwice,
      slowestMs: lateness.length ? Math.max(0, ...lateness) : NaN,
      recordLagMs: recordLags.length ? Math.max(0, ...recordLags) : NaN,
      ledger: verify.ok ? `verifies (${verify.count}${verify.fenced ? `; ${verify.fenced} fenced late write(s) skipped` : ''})` : 'BROKEN',
      checks,
      note: this.note,
      takeoversMs: this.faults.map((f) => f.to - f.from),
    };
  }

  /**
   * Fencing, as the ledger shows it: every message names its writer (the `cordon-ledger-writer`
   * header), and each one of a stale term after a newer one (a late write that reached the log) is
   * fenced: the readers skipped exactly those. Every paused or cut-off replica stepped down and
   * stayed up; leader-sigstop: late writes were tried, and refused.
   */
  private checkFencing(writers: Array<string | undefined>, fenced: number, expect: Expect): void {
    const epochs = writers.map((w) => Number(/#(\d+)$/.exec(w ?? '')?.[1] ?? NaN));
    const unnamed = epochs.filter((e) => Number.isNaN(e)).length;
    let highest = 0;
    let stale = 0;
    for (const e of epochs) {
      if (e < highest) stale++;
      else highest = Math.max(highest, e);
    }
    const terms = new Set(epochs).size;
    expect('every message names its writer', unnamed === 0, `${unnamed} without a writer token; ${terms} terms wrote`);
    expect('every late write of a stale term that reached the log is fenced (readers skip it)', stale === fenced, `${stale} late write(s) in the log, ${fenced} fenced`);
    const survivors = this.faults.filter((f) => f.steppedDown !== undefined);
    if (survivors.length > 0) {
      const down = survivors.filter((f) => f.steppedDown).length;
      expect('each paused or cut-off leader stepped down and stayed up', down === survivors.length, `${down} of ${survivors.length}`);
    }
    if (this.row === 'leader-sigstop') {
      const refused = this.faults.flatMap((f) => f.refused ?? []);
      expect('late writes were tried and refused', refused.length > 0, describeRefused(refused));
    }
  }

  /** When a lease expiring at `expiresAt` must be released: then, or when another replica led, if none did then. */
  private dueAt(expiresAt: number): number {
    const gap = this.faults.find((f) => expiresAt >= f.from && expiresAt <= f.to);
    return gap ? gap.to : expiresAt;
  }

  private async ledger(): Promise<LedgerRecord[]> {
    const records: LedgerRecord[] = [];
    for await (const m of readLedger(this.kafka, this.config.kafka.topics.ledger, { idleTimeoutMs: 10_000 })) records.push(JSON.parse(String(m.value)) as LedgerRecord);
    return records;
  }
}

/** The replica's role from its /readyz `leadership` check ('unknown' when it does not answer within a second). */
async function roleOf(r: Replica): Promise<Role> {
  try {
    const res = await fetch(`${r.process.url}/readyz`, { signal: AbortSignal.timeout(1_000) });
    const body = (await res.json()) as { checks?: Array<{ name: string; detail?: string }> };
    const detail = body.checks?.find((c) => c.name === 'leadership')?.detail ?? '';
    const m = /^(leader|standby) since (\S+?);?\s/.exec(detail);
    return m ? { role: m[1] as 'leader' | 'standby', since: Date.parse(m[2]!) } : { role: 'unknown' };
  } catch {
    return { role: 'unknown' };
  }
}

/** Whether the process is stopped (SIGSTOP): state T in /proc/<pid>/stat. */
function isStopped(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'T';
  } catch {
    return false;
  }
}

/** e.g. `2 late writes refused (append ×1, enforcer call ×1)`. */
function describeRefused(writes: string[]): string {
  const counts = new Map<string, number>();
  for (const w of writes) counts.set(w, (counts.get(w) ?? 0) + 1);
  return `${writes.length} late write(s) refused${writes.length ? ` (${[...counts].map(([w, n]) => `${w} ×${n}`).join(', ')})` : ''}`;
}
