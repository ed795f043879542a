import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Redis from 'ioredis';
import type { Admin, Kafka, Message } from 'kafkajs';
import { z } from 'zod';
import { loadConfig, type Config } from '../src/config';
import { LabelStoreEnforcer } from '../src/enforcer/label-store';
import { IncidentStore } from '../src/incidents/store';
import { cordonTopics, createKafka, ensureTopics } from '../src/kafka';
import { verifyLedger } from '../src/ledger/audit';
import { readLedger } from '../src/ledger/reader';
import type { LedgerRecord } from '../src/ledger/records';
import { createLogger } from '../src/logger';
import { formatIssue, loadPlaybooks } from '../src/playbook/load';
import { presetConfig } from '../src/simulate/presets';
import { Scenario } from '../src/simulate/scenario';
import { buildAttack, type Attack } from './attack';
import { isolatedKafka } from './run-config';
import { freePort, OUTPUT_DIR, REPO_ROOT, startCordon, writeConfig, type CordonProcess } from './support/cordon-process';
import { PrivateRedis } from './support/private-redis';

/**
 * `npm run faults`: the service under faults, one row each, as a table. Every row runs a real
 * `cordon run` child on its own topics and Redis prefix, sends a slice of the generator's
 * enterprise background and a series of short attacks (bench/attack.ts) while the fault happens,
 * and each attack's root is quarantined in the label store for TTL seconds by an auto playbook.
 *
 * Invariants, checked per row from the ledger, the Redis incident view and the label store's own
 * change counters (which outlive the process):
 *   - no event lost or applied twice: each attack's incident counts exactly its records, and the
 *     correlator's committed offsets reach the end of the input topics;
 *   - no incident lost or duplicated: one incident id per attack root;
 *   - no quarantine lost or applied twice: every attack's root quarantined, with one `applied`
 *     transition and one real change per target;
 *   - every quarantine released within 2 s of its expiry, or of Cordon being up again if it was
 *     down at the expiry: released is when the label store really restored the target (its own
 *     clock); the ledger's record of it may follow later when the ledger (Kafka) was down;
 *   - the ledger verifies.
 *
 * FAULTS (comma list) picks rows. Default: the rows that touch only this run's own processes and
 * connections: sigkill, flaky-enforcer, redis, redis-clients. The redis row gives its Cordon a
 * Redis of its own (bench/support/private-redis.ts: redis-server with an append-only file) and
 * restarts it mid-attack; redis-clients kills Cordon's connections to the shared Redis (CLIENT KILL
 * ADDR of the sockets the Cordon process holds) several times over a few seconds. The rows that
 * restart shared infrastructure (kafka, elasticsearch) run only when named, since other work uses
 * the same broker and cluster: FAULTS=kafka,elasticsearch.
 */
const ROWS = ['sigkill', 'flaky-enforcer', 'redis', 'redis-clients', 'kafka', 'elasticsearch'] as const;
type Row = (typeof ROWS)[number];

const Env = z.object({
  FAULTS: z
    .string()
    .default('sigkill,flaky-enforcer,redis,redis-clients')
    .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))
    .pipe(z.array(z.enum(ROWS)).min(1)),
  FAULTS_TTL_S: z.coerce.number().int().min(3).max(300).default(8),
  FAULTS_ATTACKS: z.coerce.number().int().min(1).max(100).default(6),
  FAULTS_BACKGROUND: z.coerce.number().int().min(0).default(20_000),
  CORDON_KAFKA_BROKERS: z.string().default('127.0.0.1:9092'),
  CORDON_REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
  CORDON_ES_URL: z.string().default('http://127.0.0.1:9200'),
});
type Env = z.infer<typeof Env>;

const ON_TIME_MS = 2_000;
/** Attacks every 1.5 s; for SIGKILL every 12 s, so that each of the three kills (a restart takes ~30 s: the ledger lock and the group session lapse) lands while attacks still arrive. */
const attackEveryMs = (row: Row) => (row === 'sigkill' ? 12_000 : 1_500);

interface Result {
  fault: string;
  produced: number;
  incidents: number;
  applied: number;
  released: number;
  lost: number;
  duplicated: number;
  /** The slowest release (the target restored) after it was due (ms, 0 when early), or NaN without releases. */
  slowestMs: number;
  /** The longest the ledger's record of a release came after the release itself (ms), or NaN. */
  recordLagMs: number;
  ledger: string;
  violations: string[];
  note: string;
}

async function main(): Promise<void> {
  const env = Env.parse(process.env);
  const pool = background(env.FAULTS_BACKGROUND);
  const results: Result[] = [];
  for (const row of env.FAULTS) {
    process.stdout.write(`running fault: ${row}...\n`);
    results.push(await new Trial(row, env, pool).run());
  }
  printTable(results);
  process.exitCode = results.every((r) => r.violations.length === 0) ? 0 : 1;
}

/** One row: a Cordon child, the workload, the fault, then the invariants. */
class Trial {
  private readonly id: string;
  private readonly downs: Array<{ from: number; to: number }> = [];
  private readonly attacks: Attack[] = [];
  private cordon!: CordonProcess;
  private configFile!: string;
  private config!: Config;
  private kafka!: Kafka;
  private admin!: Admin;
  private redis!: Redis;
  private privateRedis: PrivateRedis | undefined;
  private produced = 0;
  private note = '';

  constructor(
    private readonly row: Row,
    private readonly env: Env,
    private readonly pool: Message[],
  ) {
    this.id = `faults-${row}-${Date.now().toString(36)}`;
  }

  async run(): Promise<Result> {
    await this.setup();
    try {
      const workload = this.workload();
      await this.fault();
      await workload;
      await this.settle();
      await this.cordon.stop(60_000);
      const exit = this.cordon.exitStatus;
      if (exit?.code !== 0) this.note += `; the final graceful stop ended with ${exit?.signal ?? `code ${exit?.code}`}`;
      return await this.check();
    } finally {
      await this.cordon?.stop();
      await this.admin.deleteTopics({ topics: cordonTopics(this.config).map((t) => t.topic) }).catch(() => {});
      await this.admin.disconnect();
      this.redis.disconnect();
      await this.privateRedis?.remove();
    }
  }

  private async setup(): Promise<void> {
    if (this.row === 'redis') {
      this.privateRedis = new PrivateRedis(await freePort());
      await this.privateRedis.start();
    }
    const redisUrl = this.privateRedis?.url ?? this.env.CORDON_REDIS_URL;
    const raw = {
      log: { level: 'warn' },
      kafka: {
        brokers: this.env.CORDON_KAFKA_BROKERS.split(','),
        partitions: 3,
        inputs: [{ topic: `${this.id}.flows`, format: 'auto' }, { topic: `${this.id}.anomalies`, format: 'cordon' }],
        ...isolatedKafka(this.id),
      },
      redis: { url: redisUrl, keyPrefix: this.id },
      http: { port: await freePort() },
      ingest: { maxEventAgeMs: 0 },
      correlate: { snapshotIntervalMs: 500 },
      contain: {
        playbooks: writePlaybook(this.id, this.env.FAULTS_TTL_S),
        enforcers: { labelstore: true },
        reconcileIntervalMs: 1_000,
        // a restarted process waits for the killed one's ledger lock to lapse
        lockWaitMs: 60_000,
        breaker: { maxConcurrent: 100_000, maxNew: 100_000 },
      },
      ...(this.row === 'elasticsearch' ? { elasticsearch: { url: this.env.CORDON_ES_URL, enabled: true, indexPrefix: this.id } } : {}),
    };
    this.configFile = writeConfig(this.id, raw);
    this.config = loadConfig({ file: this.configFile, env: {} });
    this.kafka = createKafka(this.config, createLogger('fatal'), `${this.id}-bench`);
    this.admin = this.kafka.admin();
    await this.admin.connect();
    await ensureTopics(this.admin, cordonTopics(this.config));
    this.redis = new Redis(redisUrl);
    this.redis.on('error', () => undefined); // the redis row restarts it: ioredis reconnects by itself
    await this.start();
  }

  private async start(): Promise<void> {
    this.cordon = await startCordon({
      name: this.id,
      configFile: this.configFile,
      env: { CORDON_LOG_LEVEL: 'warn', ...(this.row === 'flaky-enforcer' ? { CORDON_FAULT: 'flaky-enforcer' } : {}) },
    });
    await this.cordon.waitReady(120_000);
  }

  /** The background in slices, each followed by an attack, one every attackEveryMs, in parallel with the fault. */
  private async workload(): Promise<void> {
    const producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry: { retries: 30, maxRetryTime: 5_000 } });
    await producer.connect();
    const topic = this.config.kafka.inputs[0]!.topic;
    const base = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 2 * 3_600_000;
    try {
      const steps = Math.max(this.env.FAULTS_ATTACKS, 1);
      const slice = Math.ceil(this.pool.length / steps);
      for (let i = 0; i < steps; i++) {
        const attack = buildAttack(`${this.id}-${i}`, base + i * 60_000);
        this.attacks.push(attack);
        const messages = [...this.pool.slice(i * slice, (i + 1) * slice), ...attack.records.map((r) => ({ key: r.key, value: r.value, timestamp: String(r.time) }))];
        for (let j = 0; j < messages.length; j += 1_000) await sendRetrying(() => producer.send({ topic, acks: -1, messages: messages.slice(j, j + 1_000) }));
        this.produced += messages.length;
        await sleep(attackEveryMs(this.row));
      }
    } finally {
      await producer.disconnect();
    }
  }

  private async fault(): Promise<void> {
    switch (this.row) {
      case 'sigkill':
        for (let i = 0; i < 3; i++) {
          await sleep(2_500);
          const from = Date.now();
          this.cordon.kill('SIGKILL');
          await this.cordon.waitExit(10_000);
          await this.start();
          this.downs.push({ from, to: Date.now() });
        }
        this.note = `3 SIGKILLs, down ${this.downs.map((d) => `${((d.to - d.from) / 1000).toFixed(1)} s`).join(', ')}`;
        return;
      case 'flaky-enforcer':
        this.note = 'every other enforcer call fails (CORDON_FAULT=flaky-enforcer)';
        return;
      case 'redis':
        return this.restart('redis', async () => {
          await sleep(3_000);
          await this.privateRedis!.stop();
          await sleep(3_000);
          await this.privateRedis!.start();
        });
      case 'redis-clients':
        return this.killRedisClients();
      case 'kafka':
        return this.restart('kafka', async () => {
          await sleep(3_000);
          await stack('restart', 'kafka');
        });
      case 'elasticsearch':
        return this.restart('elasticsearch', async () => {
          await sleep(1_000);
          await stack('down', 'elasticsearch');
          await sleep(60_000);
          await stack('up', 'elasticsearch');
        });
    }
  }

  /** Kills the Cordon process's own Redis connections, every 250 ms for 5 s. */
  private async killRedisClients(): Promise<void> {
    await sleep(2_000);
    let killed = 0;
    const until = Date.now() + 5_000;
    while (Date.now() < until) {
      for (const addr of redisSockets(this.cordon.pid)) killed += Number(await this.redis.client('KILL', 'ADDR', addr).then(() => 1, () => 0));
      await sleep(250);
    }
    this.note = `${killed} of Cordon's Redis connections killed over 5 s`;
  }

  private async restart(what: string, action: () => Promise<void>): Promise<void> {
    const from = Date.now();
    await action();
    this.note = `${what} ${what === 'elasticsearch' ? 'stopped' : 'restarted'}, back after ${((Date.now() - from) / 1000).toFixed(0)} s`;
  }

  /** Waits until every attack's incident counts all its records and every lease has ended. */
  private async settle(): Promise<void> {
    const deadline = Date.now() + 120_000 + this.env.FAULTS_TTL_S * 1000;
    while (Date.now() < deadline) {
      if (await this.superviseOnce()) continue;
      const ready = await this.settled().catch(() => false);
      if (ready) return;
      await sleep(1_000);
    }
  }

  /** As a supervisor would: a Cordon that exited during the fault is started again (and noted). */
  private async superviseOnce(): Promise<boolean> {
    const exit = this.cordon.exitStatus;
    if (!exit) return false;
    const from = Date.now();
    this.note += `; cordon exited (${exit.signal ?? `code ${exit.code}`}) and was restarted`;
    await this.start();
    this.downs.push({ from, to: Date.now() });
    return true;
  }

  private async settled(): Promise<boolean> {
    const all = leases(await this.ledger());
    const incidents = await new IncidentStore(this.redis, this.config.redis.keyPrefix).list(10_000);
    const complete = this.attacks.every((a) => incidents.some((i) => i.root === a.root && i.counters.denied >= a.records.length));
    const quarantined = this.attacks.every((a) => all.some((l) => l.target === a.root));
    // The correlator commits what it applied with its snapshots, idle or not: nothing left behind.
    return complete && quarantined && all.every((l) => l.endedAt) && (await this.lag()) === 0;
  }

  private async check(): Promise<Result> {
    const violations: string[] = [];
    const ledger = await this.ledger();
    const store = new IncidentStore(this.redis, this.config.redis.keyPrefix);
    const incidents = await store.list(10_000);
    let lostEvents = await this.lag();
    let dupEvents = 0;
    let lostIncidents = 0;
    let dupIncidents = 0;
    for (const a of this.attacks) {
      const mine = incidents.filter((i) => i.root === a.root);
      if (mine.length === 0) lostIncidents++;
      if (mine.length > 1) dupIncidents += mine.length - 1;
      const counted = mine.reduce((n, i) => n + i.counters.denied, 0);
      lostEvents += Math.max(0, a.records.length - counted);
      dupEvents += Math.max(0, counted - a.records.length);
    }
    if (lostEvents > 0) violations.push(`${lostEvents} event(s) lost`);
    if (dupEvents > 0) violations.push(`${dupEvents} event(s) counted twice`);
    if (lostIncidents > 0) violations.push(`${lostIncidents} incident(s) lost`);
    if (dupIncidents > 0) violations.push(`${dupIncidents} incident(s) duplicated`);

    const all = leases(ledger);
    const labelstore = new LabelStoreEnforcer(this.redis, this.config.redis.keyPrefix);
    let appliedTwice = 0;
    for (const l of all) {
      const changes = await labelstore.changes({ entity: l.target, kind: 'pod' });
      if (l.appliedCount > 1 || changes.applied > 1) appliedTwice++;
      l.restoredAt = changes.revertedAt;
    }
    if (appliedTwice > 0) violations.push(`${appliedTwice} quarantine(s) applied twice`);
    const neverQuarantined = this.attacks.filter((a) => !all.some((l) => l.target === a.root && l.appliedCount > 0)).length;
    if (neverQuarantined > 0) violations.push(`${neverQuarantined} attack(s) never quarantined`);
    const unreleased = all.filter((l) => !l.endedAt || !l.restoredAt);
    if (unreleased.length > 0) violations.push(`${unreleased.length} quarantine(s) never released`);
    const released = all.filter((l) => l.endedAt && l.restoredAt);
    const lateness = released.map((l) => l.restoredAt! - this.dueAt(l.expiresAt));
    const late = lateness.filter((ms) => ms > ON_TIME_MS);
    if (late.length > 0) violations.push(`${late.length} released late (worst ${Math.max(...late)} ms after due)`);
    const recordLags = released.map((l) => l.endedAt! - l.restoredAt!);
    const verify = await verifyLedger(this.kafka, this.config.kafka.topics.ledger);
    if (!verify.ok) violations.push(`ledger broken at seq ${verify.seq}: ${verify.reason}`);
    if (this.row === 'elasticsearch') this.note += `; ${await this.indexed(incidents.map((i) => i.id))}`;

    return {
      fault: this.row,
      produced: this.produced,
      incidents: incidents.length,
      applied: all.filter((l) => l.appliedCount > 0).length,
      released: released.length,
      lost: lostEvents + lostIncidents + neverQuarantined,
      duplicated: dupEvents + dupIncidents + appliedTwice,
      slowestMs: lateness.length ? Math.max(0, ...lateness) : NaN,
      recordLagMs: recordLags.length ? Math.max(0, ...recordLags) : NaN,
      ledger: verify.ok ? `verifies (${verify.count})` : 'BROKEN',
      violations,
      note: this.note,
    };
  }

  /** When a lease expiring at `expiresAt` must be released: then, or when Cordon was up again. */
  private dueAt(expiresAt: number): number {
    const down = this.downs.find((d) => expiresAt >= d.from && expiresAt <= d.to);
    return down ? down.to : expiresAt;
  }

  private async ledger(): Promise<LedgerRecord[]> {
    const records: LedgerRecord[] = [];
    for await (const m of readLedger(this.kafka, this.config.kafka.topics.ledger, { idleTimeoutMs: 10_000 })) records.push(JSON.parse(String(m.value)) as LedgerRecord);
    return records;
  }

  /** Input records the correlator has not committed: once settled and stopped, records never taken in. */
  private async lag(): Promise<number> {
    let lag = 0;
    for (const input of this.config.kafka.inputs) {
      const ends = await this.admin.fetchTopicOffsets(input.topic);
      const [committed] = await this.admin.fetchOffsets({ groupId: this.config.kafka.groups.correlate, topics: [input.topic] });
      for (const p of ends) {
        const c = committed?.partitions.find((x) => x.partition === p.partition)?.offset ?? '-1';
        lag += Number(p.high) - Math.max(Number(c), Number(p.low));
      }
    }
    return lag;
  }

  /** How many of the incidents reached Elasticsearch once it was back (waits up to 90 s for the SIEM writer's retries). */
  private async indexed(ids: string[]): Promise<string> {
    const deadline = Date.now() + 90_000;
    let found = 0;
    let status = 'no answer';
    while (Date.now() < deadline) {
      const res = await fetch(`${this.env.CORDON_ES_URL}/${this.id}-incidents/_search?size=0&track_total_hits=true`).catch(() => undefined);
      status = String(res?.status ?? 'no answer');
      if (res?.ok) found = ((await res.json()) as { hits: { total: { value: number } } }).hits.total.value;
      if (found >= ids.length) break;
      await sleep(2_000);
    }
    return `${found} of ${ids.length} incidents in Elasticsearch afterwards${found === 0 ? ` (last answer ${status})` : ''}`;
  }
}

interface LeaseView {
  target: string;
  expiresAt: number;
  appliedCount: number;
  /** When the ledger recorded its end. */
  endedAt?: number;
  /** When the label store restored the target. */
  restoredAt?: number;
}

/** Each lease (a target's quarantine from pending to its end) as the ledger tells it. */
function leases(records: LedgerRecord[]): LeaseView[] {
  const open = new Map<string, LeaseView>();
  const done: LeaseView[] = [];
  for (const r of records) {
    if (!r.action.startsWith('quarantine_')) continue;
    const after = r.after as { state?: string; expiresAt?: number } | null;
    const before = r.before as { state?: string } | null;
    let lease = open.get(r.target);
    if (!lease && after?.state === 'pending') open.set(r.target, (lease = { target: r.target, expiresAt: after.expiresAt!, appliedCount: 0 }));
    if (!lease) continue;
    if (after?.expiresAt) lease.expiresAt = after.expiresAt;
    if (after?.state === 'applied' && before?.state !== 'applied') lease.appliedCount++;
    if (after?.state === 'expired' || after?.state === 'released' || after?.state === 'failed') {
      lease.endedAt = r.at;
      open.delete(r.target);
      done.push(lease);
    }
  }
  return [...done, ...open.values()];
}

/** The TCP peers (host:port) of the Cordon process's connections to Redis, as Redis sees them. */
function redisSockets(pid: number): string[] {
  const out = execFileSync('ss', ['-Htnp', 'state', 'established', 'dport', '= :6379'], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l.includes(`pid=${pid},`))
    .map((l) => l.trim().split(/\s+/)[2]!)
    .filter(Boolean);
}

/** The workload's producer rides out a broker restart: a failed send is tried again for up to 3 minutes. */
async function sendRetrying(send: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      await send();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(1_000);
    }
  }
}

function stack(command: 'restart' | 'down' | 'up', component: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('bash', [join(REPO_ROOT, 'scripts/stack.sh'), command, component], { timeout: 300_000 }, (err, _out, stderr) =>
      err ? reject(new Error(`stack.sh ${command} ${component}: ${stderr.trim().split('\n').pop()}`)) : resolve(),
    );
  });
}

function background(size: number): Message[] {
  if (size === 0) return [];
  const scenario = new Scenario(presetConfig('enterprise', { seed: 2, maxRecords: size }));
  const pool: Message[] = [];
  for (const r of scenario.records()) {
    // Anomalies go to the anomalies topic in production; here every record goes to the flows topic
    // (format auto detects them), which keeps the lag check to one place.
    // Sent now (no timestamp): the generator's 2024 event times would fall to the broker's retention.
    pool.push({ key: r.key, value: r.text });
    if (pool.length >= size) break;
  }
  return pool;
}

function writePlaybook(id: string, ttlS: number): string {
  mkdirSync(OUTPUT_DIR, { recursive: true });
  const file = join(OUTPUT_DIR, `${id}.playbook.yaml`);
  writeFileSync(
    file,
    [
      'apiVersion: cordon.io/v1',
      'kind: Playbook',
      'name: faults-quarantine',
      'description: the fault table quarantines the root of every incident in the label store',
      'priority: 900',
      'mode: auto',
      'match: { severity: low }',
      'steps:',
      `  - { id: quarantine-root, type: quarantine, target: root, enforcer: labelstore, ttl: ${ttlS}s }`,
      'safety:',
      '  protected_approval: { approvers: [soc-oncall], deadline: 15m }',
      '  max_concurrent_quarantines: 100000',
      '  circuit_breaker: { max_new_quarantines: 100000, per: 10m }',
      '',
    ].join('\n'),
  );
  const loaded = loadPlaybooks([file]);
  if (loaded.issues.length > 0) throw new Error(`faults playbook refused:\n${loaded.issues.map(formatIssue).join('\n')}`);
  return file;
}

function printTable(results: Result[]): void {
  const head = ['fault', 'events produced', 'incidents', 'quarantines applied', 'released', 'lost', 'duplicated', 'slowest release', 'ledger record after release', 'ledger', 'invariants'];
  const rows = results.map((r) => [
    r.fault,
    String(r.produced),
    String(r.incidents),
    String(r.applied),
    String(r.released),
    String(r.lost),
    String(r.duplicated),
    Number.isFinite(r.slowestMs) ? `${r.slowestMs} ms after due` : '-',
    Number.isFinite(r.recordLagMs) ? `≤ ${r.recordLagMs} ms` : '-',
    r.ledger,
    r.violations.length ? `VIOLATED: ${r.violations.join('; ')}` : 'all hold',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  process.stdout.write(`\n${line(head)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n${rows.map(line).join('\n')}\n\n`);
  for (const r of results) process.stdout.write(`  ${r.fault}: ${r.note}\n`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

void main().then(() => process.exit(), (err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
