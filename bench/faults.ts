import { execFile, execFileSync } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Redis from 'ioredis';
import type { Admin, Kafka, Message } from 'kafkajs';
import { z } from 'zod';
import { loadConfig, type Config } from '../src/config';
import { LabelStoreEnforcer } from '../src/enforcer/label-store';
import { IncidentStore } from '../src/incidents/store';
import { cordonTopics, createKafka, ensureTopics } from '../src/kafka';
import { takeCheckpoint, verifyLedger, verifyLedgerCheckpoints } from '../src/ledger/audit';
import { FileCheckpointStore } from '../src/ledger/checkpoint';
import { readLedger, type LedgerMessage } from '../src/ledger/reader';
import { QuarantineRegistry } from '../src/ledger/registry';
import type { LedgerRecord } from '../src/ledger/records';
import { createLogger } from '../src/logger';
import { buildAttack, type Attack } from './attack';
import { isolatedKafka } from './run-config';
import { freePort, OUTPUT_DIR, REPO_ROOT, startCordon, writeConfig, type CordonProcess } from './support/cordon-process';
import { PrivateRedis } from './support/private-redis';
import { background, expectAttacksCounted, inputLag, leases, orphanEnds, readyz, sendRetrying, summarize, writePlaybook, type Check, type Expect, type LeaseView, type Result } from './support/fault-trial';
import { REPLICA_ROWS, ReplicaTrial, type ReplicaRow } from './faults-replicas';
import { KubernetesContractServer } from '../test/contract/kubernetes-server';
import { redisAddress, TcpProxy } from '../test/support/tcp-proxy';

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
 * Rows with invariants of their own (printed under the table, each with its figures):
 *   - deleted-pod: the Kubernetes enforcer against the contract server (test/contract), each
 *     attack's pod deleted while its quarantine is applied: every such lease ends with outcome
 *     `gone` in the ledger, and no lease is left;
 *   - changed-label: the same, the quarantine label changed on the pod while applied: the ledger
 *     records `drift_detected`, then contain.driftPolicy (FAULTS_DRIFT_POLICY, reapply by default)
 *     puts the label back (a `quarantine_applied` saying so, the prior labels restored at expiry) or
 *     ends the lease at once with outcome `drifted` and the change left as found;
 *   - redis-down: Cordon reaches the shared Redis through a TCP proxy (test/support/tcp-proxy.ts),
 *     cut for FAULTS_REDIS_DOWN_S (60) seconds: /readyz is 503 throughout, 200 again after, Cordon
 *     stays up, every lease has one pending, one applied and one end record and the chain verifies;
 *   - ledger-tail-cut: signed checkpoints taken while it runs and at the end (FileCheckpointStore);
 *     the ledger topic is then rewritten under its own name without its last records: the intact
 *     ledger passes against the checkpoints, the cut one fails naming the cut.
 *
 * FAULTS (comma list) picks rows. Default: the rows that touch only this run's own processes and
 * connections: sigkill, flaky-enforcer, redis, redis-clients, deleted-pod, changed-label,
 * redis-down, ledger-tail-cut. The redis row gives its Cordon a
 * Redis of its own (bench/support/private-redis.ts: redis-server with an append-only file) and
 * restarts it mid-attack; redis-clients kills Cordon's connections to the shared Redis (CLIENT KILL
 * ADDR of the sockets the Cordon process holds) several times over a few seconds. The rows that
 * restart shared infrastructure (kafka, elasticsearch) run only when named, since other work uses
 * the same broker and cluster: FAULTS=kafka,elasticsearch.
 *
 * The replica rows (bench/faults-replicas.ts) run three replicas each, with FAULTS_QUARANTINES (50)
 * attacks, and print their takeover times; they run only when named (a few minutes each):
 * FAULTS=leader-sigkill,leader-sigstop,replica-redis-cut.
 */
const ROWS = ['sigkill', 'flaky-enforcer', 'redis', 'redis-clients', 'deleted-pod', 'changed-label', 'redis-down', 'ledger-tail-cut', 'kafka', 'elasticsearch', ...REPLICA_ROWS] as const;
type Row = Exclude<(typeof ROWS)[number], ReplicaRow>;
const DEFAULT_ROWS = 'sigkill,flaky-enforcer,redis,redis-clients,deleted-pod,changed-label,redis-down,ledger-tail-cut';
/** Rows whose quarantines go through the Kubernetes enforcer (the contract server), not the label store. */
const KUBE_ROWS: readonly Row[] = ['deleted-pod', 'changed-label'];
const K8S_TOKEN = 'faults-token';
const QUARANTINE_LABEL = 'cordon.io/quarantine';
const POD_LABELS = { app: 'intruder' };
/** How many records the ledger-tail-cut row cuts from the end. */
const CUT_RECORDS = 3;

const Env = z.object({
  FAULTS: z
    .string()
    .default(DEFAULT_ROWS)
    .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))
    .pipe(z.array(z.enum(ROWS)).min(1)),
  FAULTS_TTL_S: z.coerce.number().int().min(3).max(300).default(8),
  FAULTS_ATTACKS: z.coerce.number().int().min(1).max(100).default(6),
  FAULTS_BACKGROUND: z.coerce.number().int().min(0).default(20_000),
  FAULTS_DRIFT_POLICY: z.enum(['reapply', 'release']).default('reapply'),
  FAULTS_REDIS_DOWN_S: z.coerce.number().int().min(1).max(600).default(60),
  FAULTS_QUARANTINES: z.coerce.number().int().min(1).max(500).default(50),
  FAULTS_LOCK_TTL_MS: z.coerce.number().int().min(1_000).max(60_000).default(3_000),
  FAULTS_REDIS_CUT_S: z.coerce.number().int().min(1).max(600).default(10),
  CORDON_KAFKA_BROKERS: z.string().default('127.0.0.1:9092'),
  CORDON_REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
  CORDON_ES_URL: z.string().default('http://127.0.0.1:9200'),
});
type Env = z.infer<typeof Env>;

const ON_TIME_MS = 2_000;
/** Attacks every 1.5 s; for SIGKILL every 12 s, so that each of the three kills (a restart takes ~30 s: the ledger lock and the group session lapse) lands while attacks still arrive. */
const attackEveryMs = (row: Row) => (row === 'sigkill' ? 12_000 : 1_500);


async function main(): Promise<void> {
  const env = Env.parse(process.env);
  const pool = background(env.FAULTS_BACKGROUND);
  const results: Result[] = [];
  for (const row of env.FAULTS) {
    process.stdout.write(`running fault: ${row}...\n`);
    results.push(await (isReplicaRow(row) ? new ReplicaTrial(row, replicaOptions(env), pool) : new Trial(row, env, pool)).run());
  }
  printTable(results);
  process.exitCode = results.every((r) => r.checks.every((c) => c.ok)) ? 0 : 1;
}

function isReplicaRow(row: string): row is ReplicaRow {
  return (REPLICA_ROWS as readonly string[]).includes(row);
}

function replicaOptions(env: Env) {
  return {
    ttlS: env.FAULTS_TTL_S,
    quarantines: env.FAULTS_QUARANTINES,
    lockTtlMs: env.FAULTS_LOCK_TTL_MS,
    redisCutS: env.FAULTS_REDIS_CUT_S,
    brokers: env.CORDON_KAFKA_BROKERS.split(','),
    redisUrl: env.CORDON_REDIS_URL,
  };
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
  /** redis-down: Cordon's way to Redis, cut for the outage. */
  private proxy: TcpProxy | undefined;
  /** deleted-pod, changed-label: the Kubernetes API Cordon's enforcer talks to. */
  private k8s: KubernetesContractServer | undefined;
  /** The targets the fault touched (pod deleted, label changed), and when. */
  private readonly touched = new Map<string, number>();
  /** How many requests the contract server had answered when the fault touched each target. */
  private readonly requestsAtTouch = new Map<string, number>();
  /** redis-down: what /readyz answered during the outage, and how long it took to be ready again. */
  private readyDuring: Array<number | 'no answer'> = [];
  private readyAgainMs = NaN;
  private exitedDuringFault = false;
  /** ledger-tail-cut: where checkpoints go, and the key that signs them. */
  private checkpoints: { store: FileCheckpointStore; privateKey: KeyObject; publicKey: KeyObject } | undefined;
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
      await this.proxy?.stop();
      await this.k8s?.stop();
      if (this.checkpoints) rmSync(this.checkpoints.store.file, { force: true });
    }
  }

  private get kube(): boolean {
    return KUBE_ROWS.includes(this.row);
  }

  private async setup(): Promise<void> {
    if (this.row === 'redis') {
      this.privateRedis = new PrivateRedis(await freePort());
      await this.privateRedis.start();
    }
    const redisUrl = this.privateRedis?.url ?? this.env.CORDON_REDIS_URL;
    if (this.row === 'redis-down') {
      const { host, port } = redisAddress(redisUrl);
      this.proxy = new TcpProxy(host, port);
      await this.proxy.start();
    }
    if (this.kube) {
      this.k8s = new KubernetesContractServer({ [K8S_TOKEN]: { user: 'system:serviceaccount:cordon:cordon', verbs: ['get', 'patch'] } });
      await this.k8s.start();
    }
    if (this.row === 'ledger-tail-cut') {
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      mkdirSync(OUTPUT_DIR, { recursive: true });
      const store = new FileCheckpointStore(join(OUTPUT_DIR, `${this.id}.checkpoints.jsonl`));
      rmSync(store.file, { force: true });
      this.checkpoints = { store, privateKey, publicKey };
    }
    const enforcer = this.kube ? 'kubernetes' : 'labelstore';
    const raw = {
      log: { level: 'warn' },
      kafka: {
        brokers: this.env.CORDON_KAFKA_BROKERS.split(','),
        partitions: 3,
        inputs: [{ topic: `${this.id}.flows`, format: 'auto' }, { topic: `${this.id}.anomalies`, format: 'cordon' }],
        ...isolatedKafka(this.id),
      },
      redis: { url: this.proxy?.url ?? redisUrl, keyPrefix: this.id },
      http: { port: await freePort() },
      ingest: { maxEventAgeMs: 0 },
      correlate: { snapshotIntervalMs: 500 },
      contain: {
        playbooks: writePlaybook(this.id, this.env.FAULTS_TTL_S, enforcer),
        enforcers: this.k8s
          ? { kubernetes: { connection: { mode: 'token', server: this.k8s.url, token: K8S_TOKEN, skipTLSVerify: true }, retry: { retries: 3, initialMs: 50, maxMs: 500 } } }
          : { labelstore: true },
        ...(this.row === 'changed-label' ? { driftPolicy: this.env.FAULTS_DRIFT_POLICY } : {}),
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
    this.redis = new Redis(redisUrl); // not through the proxy: the bench reads on while Cordon's Redis is cut
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
        if (this.k8s) this.k8s.addPod({ ...podOf(attack.root), labels: POD_LABELS });
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
      case 'deleted-pod':
        await this.eachApplied((ns, name) => this.k8s!.deletePod(ns, name));
        this.note = `${this.touched.size} pod(s) deleted while quarantined`;
        return;
      case 'changed-label':
        await this.eachApplied((ns, name) => void this.k8s!.update(ns, name, (pod) => void (pod.metadata.labels = { ...pod.metadata.labels, [QUARANTINE_LABEL]: 'false' })));
        this.note = `${QUARANTINE_LABEL}=false set on ${this.touched.size} quarantined pod(s); contain.driftPolicy ${this.env.FAULTS_DRIFT_POLICY}`;
        return;
      case 'redis-down':
        return this.cutRedis();
      case 'ledger-tail-cut':
        return this.checkpointWhileRunning();
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

  /** Each attack in turn: once its quarantine is applied, does `act` to its pod (and notes when). */
  private async eachApplied(act: (namespace: string, name: string) => void): Promise<void> {
    const registry = new QuarantineRegistry(this.redis, this.config.redis.keyPrefix);
    for (let i = 0; i < this.env.FAULTS_ATTACKS; i++) {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const root = this.attacks[i]?.root;
        if (root && (await registry.get(root))?.state === 'applied') {
          const { namespace, name } = podOf(root);
          act(namespace, name);
          this.touched.set(root, Date.now());
          this.requestsAtTouch.set(root, this.k8s!.requests.length);
          break;
        }
        if (Date.now() > deadline) break; // its check then says which one was never touched
        await sleep(50);
      }
    }
  }

  /** Cuts Cordon's Redis (the proxy) for FAULTS_REDIS_DOWN_S, polling /readyz throughout and until it is ready again. */
  private async cutRedis(): Promise<void> {
    await sleep(2_000);
    const from = Date.now();
    this.proxy!.cut();
    const until = from + this.env.FAULTS_REDIS_DOWN_S * 1000;
    while (Date.now() < until) {
      this.readyDuring.push(await readyz(this.cordon.url));
      await sleep(1_000);
    }
    this.proxy!.restore();
    const restored = Date.now();
    this.exitedDuringFault = this.cordon.exitStatus !== undefined;
    while (!this.cordon.exitStatus && Date.now() < restored + 60_000 && (await readyz(this.cordon.url)) !== 200) await sleep(200);
    const ready = Date.now();
    if (!this.cordon.exitStatus && ready < restored + 60_000) this.readyAgainMs = ready - restored;
    this.downs.push({ from, to: ready });
    const again = Number.isFinite(this.readyAgainMs) ? `ready ${(this.readyAgainMs / 1000).toFixed(1)} s after` : 'not ready within 60 s after';
    this.note = `Redis cut for ${((restored - from) / 1000).toFixed(0)} s (TCP proxy), ${again}`;
  }

  /** A signed checkpoint every 2 s while the attacks arrive (the last one is taken after the stop, in check). */
  private async checkpointWhileRunning(): Promise<void> {
    const { store, privateKey } = this.checkpoints!;
    for (let i = 0; i < Math.ceil((this.env.FAULTS_ATTACKS * attackEveryMs(this.row)) / 2_000); i++) {
      await sleep(2_000);
      await takeCheckpoint(this.kafka, this.config.kafka.topics.ledger, privateKey, [store]);
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
    const checks: Check[] = [];
    const expect = (name: string, ok: boolean, detail: string) => void checks.push({ name, ok, detail });
    const ledger = await this.ledger();
    const store = new IncidentStore(this.redis, this.config.redis.keyPrefix);
    const incidents = await store.list(10_000);
    const counted = expectAttacksCounted(this.attacks, incidents, await this.lag(), expect);

    const all = leases(ledger);
    const labelstore = new LabelStoreEnforcer(this.redis, this.config.redis.keyPrefix);
    let appliedTwice = 0;
    for (const l of all) {
      // The label store keeps its own clock of the restore; the contract server has none: the ledger's record stands in.
      const changes = this.kube ? { applied: l.appliedCount, revertedAt: l.endedAt } : await labelstore.changes({ entity: l.target, kind: 'pod' });
      if (l.appliedCount > 1 || changes.applied > 1) appliedTwice++;
      l.restoredAt = changes.revertedAt;
    }
    const neverQuarantined = this.attacks.filter((a) => !all.some((l) => l.target === a.root && l.appliedCount > 0)).length;
    expect('every attack quarantined, once', appliedTwice + neverQuarantined === 0, `${neverQuarantined} never, ${appliedTwice} twice`);
    const unreleased = all.filter((l) => !l.endedAt || !l.restoredAt);
    const released = all.filter((l) => l.endedAt && l.restoredAt);
    const lateness = released.map((l) => l.restoredAt! - this.dueAt(l.expiresAt));
    const late = lateness.filter((ms) => ms > ON_TIME_MS);
    expect('every quarantine released on time', unreleased.length + late.length === 0, `${unreleased.length} never, ${late.length} late${late.length ? ` (worst ${Math.max(...late)} ms after due)` : ''}`);
    const live = await new QuarantineRegistry(this.redis, this.config.redis.keyPrefix).liveCount();
    expect('no lease left', live === 0, `${live} live in the registry`);
    const orphans = all.reduce((n, l) => n + l.extraRecords, 0) + orphanEnds(ledger);
    expect('each lease recorded once: one pending, one end', orphans === 0, `${orphans} extra record(s)`);
    const recordLags = released.map((l) => l.endedAt! - l.restoredAt!);
    const verify = await verifyLedger(this.kafka, this.config.kafka.topics.ledger);
    expect('the ledger verifies', verify.ok, verify.ok ? `${verify.count} records` : `broken at seq ${verify.seq}: ${verify.reason}`);
    if (this.row === 'elasticsearch') this.note += `; ${await this.indexed(incidents.map((i) => i.id))}`;
    if (this.row === 'deleted-pod') this.checkGone(ledger, all, expect);
    if (this.row === 'changed-label') this.checkDrift(ledger, all, expect);
    if (this.row === 'redis-down') this.checkOutage(ledger, expect);
    if (this.row === 'ledger-tail-cut') await this.checkTailCut(expect);

    return {
      fault: this.row,
      produced: this.produced,
      incidents: incidents.length,
      applied: all.filter((l) => l.appliedCount > 0).length,
      released: released.length,
      lost: counted.lost + neverQuarantined,
      duplicated: counted.duplicated + appliedTwice,
      slowestMs: lateness.length ? Math.max(0, ...lateness) : NaN,
      recordLagMs: recordLags.length && !this.kube ? Math.max(0, ...recordLags) : NaN,
      ledger: verify.ok ? `verifies (${verify.count})` : 'BROKEN',
      checks,
      note: this.note,
    };
  }

  /** deleted-pod: every attack's pod was deleted while quarantined, and its lease ended `gone`. */
  private checkGone(ledger: LedgerRecord[], all: LeaseView[], expect: Expect): void {
    const roots = this.attacks.map((a) => a.root);
    const gone = all.filter((l) => this.touched.has(l.target) && l.outcome === 'gone');
    expect('every attack\'s pod deleted while applied', roots.every((r) => this.touched.has(r)), `${this.touched.size} of ${roots.length}`);
    expect('each deleted pod\'s lease ended, outcome gone in the ledger', gone.length === this.touched.size, `${gone.length} of ${this.touched.size} gone (${describeEnds(all)})`);
    const named = ledger.filter((r) => this.touched.has(r.target) && r.action.startsWith('quarantine_') && /target gone/.test(r.reason)).length;
    expect('the ledger says why (target gone)', named === gone.length, `${named} end record(s) name it`);
  }

  /** changed-label: drift recorded for every changed pod, then settled by the drift policy. */
  private checkDrift(ledger: LedgerRecord[], all: LeaseView[], expect: Expect): void {
    const roots = this.attacks.map((a) => a.root);
    expect('every attack\'s quarantine label changed while applied', roots.every((r) => this.touched.has(r)), `${this.touched.size} of ${roots.length}`);
    const drifts = [...this.touched.keys()].filter((t) => ledger.some((r) => r.action === 'drift_detected' && r.target === t && r.at >= this.touched.get(t)!));
    expect('the ledger says drift (drift_detected) for each', drifts.length === this.touched.size, `${drifts.length} of ${this.touched.size}`);
    const mine = all.filter((l) => this.touched.has(l.target));
    if (this.env.FAULTS_DRIFT_POLICY === 'reapply') {
      const recorded = mine.filter((l) => ledger.some((r) => r.target === l.target && r.action === 'quarantine_applied' && r.reason.startsWith('drift policy reapply'))).length;
      const patched = mine.filter((l) => this.patchedBack(l.target)).length;
      expect('driftPolicy reapply: the label put back (API server), recorded', recorded === mine.length && patched === mine.length, `${patched} of ${mine.length} patched back, ${recorded} recorded`);
      const restored = mine.filter((l) => l.outcome === 'restored' && sameLabels(this.k8s!.pod(podOf(l.target).namespace, podOf(l.target).name)?.metadata.labels, POD_LABELS)).length;
      expect('then released at expiry, prior labels restored', restored === mine.length, `${restored} of ${mine.length} (${describeEnds(mine)})`);
    } else {
      const early = mine.filter((l) => l.outcome === 'drifted' && l.endedAt! < l.expiresAt).length;
      expect('driftPolicy release: the lease ended at once, outcome drifted', early === mine.length, `${early} of ${mine.length} (${describeEnds(mine)})`);
      const asFound = mine.filter((l) => this.k8s!.pod(podOf(l.target).namespace, podOf(l.target).name)?.metadata.labels?.[QUARANTINE_LABEL] === 'false').length;
      expect('the changed label left as found', asFound === mine.length, `${asFound} of ${mine.length}`);
    }
  }

  /** Whether, after the fault touched it, a patch the API server accepted set the pod's quarantine label again. */
  private patchedBack(target: string): boolean {
    const { name } = podOf(target);
    return this.k8s!.requests.slice(this.requestsAtTouch.get(target) ?? 0).some((r) => {
      const labels = (r.body as { metadata?: { labels?: Record<string, unknown> } } | null)?.metadata?.labels;
      return r.method === 'PATCH' && r.status === 200 && r.path.endsWith(`/pods/${name}`) && labels?.[QUARANTINE_LABEL] === 'true';
    });
  }

  /** redis-down: red while Redis was cut, green again after, and the process rode it out. */
  private checkOutage(ledger: LedgerRecord[], expect: Expect): void {
    const { from, to } = this.downs[0]!;
    const before = ledger.filter((r) => r.at < from).length;
    const during = ledger.filter((r) => r.at >= from && r.at < to).length;
    this.note += `; ledger records timed (their \`at\`) ${before} before the cut, ${during} during it or before ready again, ${ledger.length - before - during} after`;
    const green = this.readyDuring.filter((s) => s === 200).length;
    expect('/readyz red during the outage', this.readyDuring.length > 0 && green === 0, `${this.readyDuring.length - green} of ${this.readyDuring.length} polls not ready (${summarize(this.readyDuring)})`);
    expect('/readyz green after', Number.isFinite(this.readyAgainMs), Number.isFinite(this.readyAgainMs) ? `ready ${(this.readyAgainMs / 1000).toFixed(1)} s after Redis was back` : 'not ready within 60 s');
    expect('cordon stayed up through the outage', !this.exitedDuringFault, this.exitedDuringFault ? 'it exited' : 'no exit');
  }

  /** ledger-tail-cut: the intact ledger passes against its checkpoints; with its tail cut it fails, naming the cut. */
  private async checkTailCut(expect: Expect): Promise<void> {
    const { store, privateKey, publicKey } = this.checkpoints!;
    const topic = this.config.kafka.topics.ledger;
    const last = await takeCheckpoint(this.kafka, topic, privateKey, [store]);
    const checkpoints = await store.list();
    const intact = await verifyLedgerCheckpoints(this.kafka, topic, checkpoints, [publicKey]);
    expect('intact ledger passes its checkpoints', intact.ok, `${checkpoints.length} checkpoints, last at seq ${last.seq}${intact.ok ? '' : `: ${intact.reason}`}`);
    const kept = await this.cutTail(topic, CUT_RECORDS);
    const chainOnly = await verifyLedger(this.kafka, topic);
    const cut = await verifyLedgerCheckpoints(this.kafka, topic, checkpoints, [publicKey]);
    const detected = !cut.ok && /tail was cut/.test(cut.reason);
    expect('tail cut detected', detected, `detected == ${detected}: ${cut.ok ? 'passed' : cut.reason}`);
    this.note = `${checkpoints.length} signed checkpoints; the topic rewritten with ${kept} of ${last.seq} records (chain alone: ${chainOnly.ok ? `verifies, ${chainOnly.count} records` : chainOnly.reason})`;
  }

  /** Rewrites the ledger topic, under its own name, without its last `drop` records; returns how many it kept. */
  private async cutTail(topic: string, drop: number): Promise<number> {
    const messages: LedgerMessage[] = [];
    for await (const m of readLedger(this.kafka, topic, { idleTimeoutMs: 10_000 })) messages.push(m);
    const spec = cordonTopics(this.config).find((t) => t.topic === topic)!;
    await this.admin.deleteTopics({ topics: [topic], timeout: 30_000 });
    const deadline = Date.now() + 60_000;
    while (!(await this.admin.createTopics({ topics: [spec], waitForLeaders: true }).catch(() => false))) {
      if (Date.now() > deadline) throw new Error(`${topic}: not created again within 60 s of its deletion`);
      await sleep(500);
    }
    const kept = messages.slice(0, Math.max(0, messages.length - drop));
    const producer = this.kafka.producer();
    await producer.connect();
    await sendRetrying(() => producer.send({ topic, acks: -1, messages: kept.map((m) => ({ key: m.key, value: m.value })) }));
    await producer.disconnect();
    return kept.length;
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
  private lag(): Promise<number> {
    return inputLag(this.admin, this.config);
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


/** The namespace and name of a `pod:<namespace>/<name>` entity key (the attacks' roots). */
function podOf(entity: string): { namespace: string; name: string } {
  const m = /^pod:([^/]+)\/(.+)$/.exec(entity);
  if (!m) throw new Error(`${entity}: not a pod entity`);
  return { namespace: m[1]!, name: m[2]! };
}


function describeEnds(all: LeaseView[]): string {
  return summarize(all.map((l) => (l.endedAt ? `outcome ${l.outcome ?? '(none)'}` : 'not ended')));
}

function sameLabels(a: Record<string, string> | undefined, b: Record<string, string>): boolean {
  return JSON.stringify(Object.entries(a ?? {}).sort()) === JSON.stringify(Object.entries(b).sort());
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


function stack(command: 'restart' | 'down' | 'up', component: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('bash', [join(REPO_ROOT, 'scripts/stack.sh'), command, component], { timeout: 300_000 }, (err, _out, stderr) =>
      err ? reject(new Error(`stack.sh ${command} ${component}: ${stderr.trim().split('\n').pop()}`)) : resolve(),
    );
  });
}


function printTable(results: Result[]): void {
  const head = ['fault', 'events produced', 'incidents', 'quarantines applied', 'released', 'lost', 'duplicated', 'slowest release', 'ledger record after release', 'takeover p50 / p99 / max', 'ledger', 'invariants'];
  const rows = results.map((r) => [
    r.fault,
    String(r.produced),
    String(r.incidents),
    String(r.applied),
    String(r.released),
    String(r.lost),
    String(r.duplicated),
    Number.isFinite(r.slowestMs) ? `${r.slowestMs} ms after due${KUBE_ROWS.includes(r.fault as Row) ? ' (ledger clock)' : ''}` : '-',
    Number.isFinite(r.recordLagMs) ? `≤ ${r.recordLagMs} ms` : '-',
    r.takeoversMs?.length ? describeTakeovers(r.takeoversMs) : '-',
    r.ledger,
    r.checks.every((c) => c.ok) ? `all ${r.checks.length} hold` : `VIOLATED: ${r.checks.filter((c) => !c.ok).map((c) => c.name).join('; ')}`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  process.stdout.write(`\n${line(head)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n${rows.map(line).join('\n')}\n\n`);
  for (const r of results) {
    process.stdout.write(`  ${r.fault}: ${r.note}\n`);
    for (const c of r.checks) process.stdout.write(`    ${c.ok ? 'holds   ' : 'VIOLATED'}  ${c.name}: ${c.detail}\n`);
  }
}

/** e.g. `3.3 / 3.5 / 3.5 s (5)`: the nearest-rank percentiles of the takeover times, and how many. */
function describeTakeovers(ms: number[]): string {
  const sorted = [...ms].sort((a, b) => a - b);
  const rank = (p: number) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
  const s = (x: number) => (x / 1000).toFixed(1);
  return `${s(rank(50))} / ${s(rank(99))} / ${s(sorted[sorted.length - 1]!)} s (${sorted.length})`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

void main().then(() => process.exit(), (err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
