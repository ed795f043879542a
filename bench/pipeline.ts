import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import type { Consumer, Kafka, Message } from 'kafkajs';
import { z } from 'zod';
import { loadConfig, type Config } from '../src/config';
import { cordonTopics, createKafka, ensureTopics } from '../src/kafka';
import { createLogger } from '../src/logger';
import { buildAttack, decisiveIndex, type Attack } from './attack';
import { cpuSecondsOf, mib, peakRssOf } from './rss';
import { consumed, drainConfig, generatePool, produceBacklog, SEND_RECORDS, type PoolRecord } from './support/backlog';
import { freePort, OUTPUT_DIR, startCordon, writeConfig, type CordonProcess } from './support/cordon-process';
import { writeRootQuarantinePlaybook } from './support/playbook';

/**
 * `npm run bench:pipeline`: the whole service under load, as a separate process. The generator's
 * enterprise background (a pool of records generated up front, then sent over and over at a
 * steady rate) goes into the real Kafka with a short attack injected every second; Cordon runs
 * as `cordon run` with a playbook that quarantines every incident's root in the label store.
 *
 * Throughput is measured first, on a backlog: BENCH_BACKLOG records of the pool are produced
 * before Cordon starts, and Cordon's rate is how fast it drains them, with no producer sharing the
 * machine (a live producer on the same two cores cannot offer more than Cordon takes, so a live
 * rate would measure the producer). Then the steady load runs for the latencies.
 *
 * Prints: the backlog drain rate, the rate Cordon sustained under the steady load (records
 * consumed per second while the load ran, and the lag left at its end), p50/p99 latency from an
 * attack's decisive record being produced to its incident being published and to its quarantine
 * being applied (ledger record), Cordon's peak RSS, and the same run's ceiling: a kafkajs
 * consumer that does nothing, over the same records.
 * Targets: >= 50,000 events/s sustained; p99 detect-to-quarantine < 1 s under that load.
 *
 * Environment: BENCH_RATE (50000 records/s), BENCH_SECONDS (30), BENCH_POOL (400000 records),
 * BENCH_BACKLOG (400000 records; 0 skips the drain), BENCH_ATTACK_EVERY_MS (1000),
 * BENCH_PROFILE=1 (CPU-profile Cordon; prints where time goes).
 */
const Env = z.object({
  BENCH_RATE: z.coerce.number().int().min(100).default(50_000),
  BENCH_SECONDS: z.coerce.number().int().min(5).default(30),
  BENCH_POOL: z.coerce.number().int().min(1_000).default(400_000),
  BENCH_BACKLOG: z.coerce.number().int().min(0).default(400_000),
  BENCH_ATTACK_EVERY_MS: z.coerce.number().int().min(50).default(1_000),
  BENCH_PROFILE: z.enum(['0', '1']).default('0'),
  CORDON_KAFKA_BROKERS: z.string().default('127.0.0.1:9092'),
});
type Env = z.infer<typeof Env>;

const WARMUP_MS = 5_000;
const TICK_MS = 20;

interface AttackRun {
  attack: Attack;
  producedAt: number;
  incidentAt?: number;
  quarantinedAt?: number;
}

async function main(): Promise<void> {
  const env = Env.parse(process.env);
  const run = `bench-pipeline-${Date.now().toString(36)}`;
  const port = await freePort();
  const playbook = writePlaybook(run);
  const raw = drainConfig(run, { brokers: env.CORDON_KAFKA_BROKERS.split(','), port, playbook });
  const configFile = writeConfig(run, raw);
  const config = loadConfig({ file: configFile, env: {} });
  const kafka = createKafka(config, createLogger('fatal'), `${run}-bench`);
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, cordonTopics(config));

  out(`generating the enterprise background pool (${env.BENCH_POOL.toLocaleString()} records)...`);
  const pool = generatePool(env.BENCH_POOL);
  const probe = buildAttack('probe', pool[0]!.time);
  const decisive = decisiveIndex(probe, config.correlate.engine);
  const backlog = await produceBacklog(kafka, config, pool, env.BENCH_BACKLOG);
  if (backlog.produced > 0) progress(`backlog: ${backlog.produced.toLocaleString()} records produced (${fmt(backlog.perSecond)}/s), before cordon starts`);

  const profileDir = join(OUTPUT_DIR, `${run}.cpuprofile`);
  const cordon = await startCordon({
    name: run,
    configFile,
    env: {
      CORDON_LOG_LEVEL: 'warn',
      ...(env.BENCH_PROFILE === '1' ? { NODE_OPTIONS: `--require ${join(__dirname, 'profile-hook.js')}`, BENCH_PROFILE_DIR: profileDir } : {}),
    },
  });
  try {
    await cordon.waitReady(120_000);
    const drain = await measureDrain(cordon, backlog.produced);
    const attacks = new Map<string, AttackRun>();
    const watcher = await watch(kafka, config, run, attacks);
    out(`cordon pid ${cordon.pid}; producing ${env.BENCH_RATE.toLocaleString()} records/s for ${env.BENCH_SECONDS} s, an attack every ${env.BENCH_ATTACK_EVERY_MS} ms (decisive record: #${decisive + 1} of ${probe.records.length})`);
    const load = await produce(kafka, config, env, pool, attacks, cordon);
    progress(`load done: ${load.produced.toLocaleString()} records sent; waiting for cordon to drain (at most 120 s)`);
    const drained = await waitDrained(cordon, backlog.produced + load.produced, 120_000);
    await waitFor(() => [...attacks.values()].every((a) => a.quarantinedAt !== undefined), 30_000);
    const rss = peakRssOf(cordon.pid);
    await watcher.disconnect();
    progress('stopping cordon; then the no-op consumer over the same records');
    await cordon.stop(60_000);
    const noop = ceiling(config, run, backlog.produced + load.produced);
    report({ env, backlog, drain, load, drained, rss, noop, attacks: [...attacks.values()] });
    if (env.BENCH_PROFILE === '1') printProfile(profileDir);
    await admin.deleteTopics({ topics: cordonTopics(config).map((t) => t.topic) }).catch(() => {});
  } finally {
    await cordon.stop();
    await admin.disconnect();
  }
}

/** Quarantine every incident's root at once in the label store (no root needed, nothing touched). */
function writePlaybook(run: string): string {
  return writeRootQuarantinePlaybook(run, { name: 'bench-quarantine', description: 'the pipeline benchmark quarantines the root of every incident in the label store', enforcer: 'labelstore', ttl: '30m' });
}

/** Everything the service published in the run, injected attacks or not. */
const totals = { incidents: new Set<string>(), quarantines: 0, ledger: 0 };

/** Follows the incidents and ledger topics; stamps each attack's incident and quarantine. */
async function watch(kafka: Kafka, config: Config, run: string, attacks: Map<string, AttackRun>): Promise<Consumer> {
  const consumer = kafka.consumer({ groupId: `${run}-watch`, maxWaitTimeInMs: 20 });
  await consumer.connect();
  await consumer.subscribe({ topics: [config.kafka.topics.incidents, config.kafka.topics.ledger], fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        if (batch.topic === config.kafka.topics.incidents) {
          const { root, id } = JSON.parse(String(m.value)) as { root?: string; id?: string };
          if (id && root) totals.incidents.add(id);
          const a = root ? attacks.get(root) : undefined;
          if (a && a.incidentAt === undefined) a.incidentAt = Number(m.timestamp);
          continue;
        }
        const r = JSON.parse(String(m.value)) as { action: string; target: string; at: number; after?: { state?: string } };
        totals.ledger++;
        if (r.action === 'quarantine_applied' && r.after?.state === 'applied') totals.quarantines++;
        const a = attacks.get(r.target);
        if (a && r.action === 'quarantine_applied' && r.after?.state === 'applied' && a.quarantinedAt === undefined) a.quarantinedAt = r.at;
      }
    },
  });
  return consumer;
}

/** Drain rate of the backlog, and Cordon's own CPU per event over the same span (its /proc accounting). */
async function measureDrain(cordon: CordonProcess, backlog: number): Promise<{ perSecond: number; seconds: number; cpuUsPerEvent: number }> {
  if (backlog === 0) return { perSecond: NaN, seconds: 0, cpuUsPerEvent: NaN };
  const sample = async () => ({ at: Date.now(), consumed: await consumed(cordon), cpu: cpuSecondsOf(cordon.pid) });
  const first = await sample();
  let last = first;
  while (last.consumed < backlog && Date.now() - first.at < 300_000) {
    await sleep(100);
    last = await sample();
  }
  const seconds = (last.at - first.at) / 1000;
  const events = last.consumed - first.consumed;
  progress(`backlog drained: ${events.toLocaleString()} records in ${seconds.toFixed(1)} s (${first.consumed.toLocaleString()} already in when it was ready)`);
  return { perSecond: events / seconds, seconds, cpuUsPerEvent: ((last.cpu - first.cpu) * 1e6) / events };
}

/** Sends the pool round and round at the target rate, with an attack every BENCH_ATTACK_EVERY_MS. */
async function produce(kafka: Kafka, config: Config, env: Env, pool: PoolRecord[], attacks: Map<string, AttackRun>, cordon: CordonProcess) {
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const topics = [config.kafka.inputs[0]!.topic, config.kafka.inputs[1]!.topic];
  const start = Date.now();
  const end = start + env.BENCH_SECONDS * 1000;
  let sent = 0;
  let next = 0;
  let nextAttack = start + WARMUP_MS;
  const inFlight: Promise<unknown>[] = [];
  const samples: Array<{ at: number; consumed: number }> = [];
  let nextSample = start + WARMUP_MS;
  while (Date.now() < end) {
    const due = Math.min(Math.floor(((Date.now() - start) / 1000) * env.BENCH_RATE), sent + env.BENCH_RATE);
    const batches: [Message[], Message[]] = [[], []];
    for (; sent < due; sent++, next = (next + 1) % pool.length) {
      const r = pool[next]!;
      // Sent now: the generator's event times are in 2024, and the broker's retention would delete
      // records stamped that old (Cordon's event-age check is off for this run).
      batches[r.topic].push({ key: r.key, value: r.value });
    }
    if (Date.now() >= nextAttack) {
      const attack = buildAttack(`${attacks.size}`, pool[next]!.time);
      attacks.set(attack.root, { attack, producedAt: Date.now() });
      for (const r of attack.records) batches[0].push({ key: r.key, value: r.value });
      sent += attack.records.length;
      nextAttack += env.BENCH_ATTACK_EVERY_MS;
    }
    for (const [i, messages] of batches.entries()) {
      for (let j = 0; j < messages.length; j += SEND_RECORDS) inFlight.push(producer.send({ topic: topics[i]!, messages: messages.slice(j, j + SEND_RECORDS), acks: 1 }));
    }
    while (inFlight.length > 8) await inFlight.shift();
    if (Date.now() >= nextSample) {
      samples.push({ at: Date.now(), consumed: await consumed(cordon) });
      nextSample += 1000;
    }
    await sleep(TICK_MS);
  }
  await Promise.all(inFlight);
  const endedAt = Date.now();
  samples.push({ at: endedAt, consumed: await consumed(cordon) });
  await producer.disconnect();
  return { produced: sent, startedAt: start, endedAt, samples };
}

async function waitDrained(cordon: CordonProcess, produced: number, timeoutMs: number): Promise<{ at: number; consumed: number }> {
  const deadline = Date.now() + timeoutMs;
  let n = await consumed(cordon);
  while (n < produced && Date.now() < deadline) {
    await sleep(250);
    n = await consumed(cordon);
  }
  return { at: Date.now(), consumed: n };
}

/** The same records, read by a kafkajs consumer that does nothing (bench/ingest-worker.ts noop). */
function ceiling(config: Config, run: string, total: number): { perSecond: number; peakRss: number } {
  const overrides = { kafka: { brokers: config.kafka.brokers, inputs: config.kafka.inputs, groups: { ingest: `${run}-ceiling` } } };
  const stdout = execFileSync(process.execPath, [join(__dirname, 'ingest-worker.js'), 'noop', JSON.stringify(overrides), String(total)], {
    encoding: 'utf8',
    timeout: 300_000,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as { perSecond: number; peakRss: number };
}

interface Report {
  env: Env;
  backlog: { produced: number; perSecond: number };
  drain: Awaited<ReturnType<typeof measureDrain>>;
  load: Awaited<ReturnType<typeof produce>>;
  drained: { at: number; consumed: number };
  rss: number;
  noop: { perSecond: number; peakRss: number };
  attacks: AttackRun[];
}

function report({ env, backlog, drain, load, drained, rss, noop, attacks }: Report): void {
  const first = load.samples[0]!;
  const last = load.samples[load.samples.length - 1]!;
  const sustained = (last.consumed - first.consumed) / ((last.at - first.at) / 1000);
  const offered = load.produced / ((load.endedAt - load.startedAt) / 1000);
  const lagAtEnd = backlog.produced + load.produced - last.consumed;
  const overall = (drained.consumed - first.consumed) / ((drained.at - first.at) / 1000);
  const detect = percentiles(attacks.map((a) => (a.incidentAt ?? NaN) - a.producedAt));
  const contain = percentiles(attacks.map((a) => (a.quarantinedAt ?? NaN) - a.producedAt));
  const missing = attacks.filter((a) => a.quarantinedAt === undefined).length;
  const rows: Array<[string, string]> = [
    ['backlog drain', `${fmt(drain.perSecond)} events/s (${backlog.produced.toLocaleString()} records queued before start, producer idle; ${drain.seconds.toFixed(1)} s)`],
    ['ratio drain/ceiling', (drain.perSecond / noop.perSecond).toFixed(2)],
    ['cordon CPU per event', `${drain.cpuUsPerEvent.toFixed(1)} µs (draining the backlog, from /proc/<pid>/stat; target <= 10 µs: ${drain.cpuUsPerEvent <= 10 ? 'MET' : 'MISSED'})`],
    ['offered load', `${fmt(offered)} records/s for ${env.BENCH_SECONDS} s (${load.produced.toLocaleString()} records, pool of ${env.BENCH_POOL.toLocaleString()})`],
    ['cordon sustained', `${fmt(sustained)} events/s while loaded (lag at end of load ${lagAtEnd.toLocaleString()} records; all drained at ${fmt(overall)} records/s)`],
    ['kafkajs no-op ceiling', `${fmt(noop.perSecond)} records/s (same records, same run), peak RSS ${mib(noop.peakRss)}`],
    ['ratio cordon/ceiling', (sustained / noop.perSecond).toFixed(2)],
    ['produced -> incident', `p50 ${ms(detect.p50)}  p99 ${ms(detect.p99)}  (${detect.n} attacks)`],
    ['produced -> quarantine', `p50 ${ms(contain.p50)}  p99 ${ms(contain.p99)}  (${contain.n} attacks${missing ? `, ${missing} NOT quarantined` : ''})`],
    ['published in the run', `${totals.incidents.size} incidents, ${totals.quarantines} quarantines, ${totals.ledger} ledger records (background and injected attacks)`],
    ['cordon peak RSS', mib(rss)],
    ['machine', `${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} at the end (shared with other work)`],
    ['target >= 50,000 ev/s', Math.max(sustained, drain.perSecond || 0) >= 50_000 ? 'MET' : `MISSED (${fmt(Math.max(sustained, drain.perSecond || 0))})`],
    ['target p99 < 1 s', contain.p99 < 1000 && missing === 0 ? 'MET' : `MISSED (${ms(contain.p99)})`],
  ];
  out('');
  for (const [k, v] of rows) out(`${k.padEnd(24)} ${v}`);
}

function percentiles(values: number[]): { p50: number; p99: number; n: number } {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
  return { p50: at(0.5), p99: at(0.99), n: sorted.length };
}

/** The functions with the most self time in Cordon's CPU profile. */
function printProfile(dir: string): void {
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) return out(`no CPU profile in ${dir}`);
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
    nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
    samples: number[];
  };
  const byNode = new Map<number, number>();
  for (const id of profile.samples) byNode.set(id, (byNode.get(id) ?? 0) + 1);
  const byFunction = new Map<string, number>();
  for (const n of profile.nodes) {
    const where = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${n.callFrame.lineNumber + 1}`;
    byFunction.set(where, (byFunction.get(where) ?? 0) + (byNode.get(n.id) ?? 0));
  }
  const total = profile.samples.length;
  const byArea = new Map<string, number>();
  for (const n of profile.nodes) {
    const area = areaOf(n.callFrame.url, n.callFrame.functionName);
    byArea.set(area, (byArea.get(area) ?? 0) + (byNode.get(n.id) ?? 0));
  }
  const pct = (n: number) => `${((100 * n) / total).toFixed(1).padStart(5)}%`;
  out(`\nwhere Cordon's time went (self time by area, ${join(dir, file)}):`);
  for (const [area, n] of [...byArea].sort((a, b) => b[1] - a[1]).slice(0, 12)) out(`  ${pct(n)}  ${area}`);
  out('top functions:');
  for (const [where, n] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 10)) out(`  ${pct(n)}  ${where}`);
}

/** A package (node_modules/x), a folder of Cordon's (src/correlate), or what V8 calls the rest. */
function areaOf(url: string, fn: string): string {
  const pkg = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const own = /dist\/((src|bench)\/[^/]+)/.exec(url);
  if (own) return own[1]!.replace(/\.js$/, '');
  if (url.startsWith('node:')) return 'node internals';
  return fn.startsWith('(') ? fn : '(native / v8)';
}

async function waitFor(done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done() && Date.now() < deadline) await sleep(100);
}

const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString() : 'n/a');
const ms = (n: number) => (Number.isFinite(n) ? `${Math.round(n)} ms` : 'n/a');
const out = (line: string) => void process.stdout.write(`${line}\n`);
const progress = (line: string) => void process.stderr.write(`  .. ${line}\n`);
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

void main().then(() => process.exit(0), (err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
