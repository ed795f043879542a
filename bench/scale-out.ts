import { cpus, loadavg } from 'node:os';
import { z } from 'zod';
import { loadConfig, type Config } from '../src/config';
import { cordonTopics, createKafka, ensureTopics } from '../src/kafka';
import { createLogger } from '../src/logger';
import { cpuSecondsOf, mib, peakRssOf } from './rss';
import { consumed, drainConfig, generatePool, produceBacklog } from './support/backlog';
import { freePort, startCordon, writeConfig, type CordonProcess } from './support/cordon-process';
import { writeRootQuarantinePlaybook } from './support/playbook';

/**
 * `npm run bench:scale`: one backlog of the generator's enterprise background, drained by one
 * replica of `cordon run`, then by two in one consumer group (each phase with its own groups,
 * output topics and Redis keys, reading the same input topics from the start). The replicas of a
 * phase start together and the drain is timed from when all of them answer /readyz, so a
 * rebalance that the second one causes is part of it. Prints each phase's events/s and CPU per
 * event (all its processes, /proc accounting), and the speed-up of two over one.
 *
 * Environment: BENCH_BACKLOG (400000 records), BENCH_POOL (400000), BENCH_REPLICAS (2: the
 * second phase's replicas).
 */
const Env = z.object({
  BENCH_BACKLOG: z.coerce.number().int().min(10_000).default(400_000),
  BENCH_POOL: z.coerce.number().int().min(1_000).default(400_000),
  BENCH_REPLICAS: z.coerce.number().int().min(2).max(8).default(2),
  CORDON_KAFKA_BROKERS: z.string().default('127.0.0.1:9092'),
});

interface Drain {
  replicas: number;
  perSecond: number;
  seconds: number;
  cpuUsPerEvent: number;
  peakRss: number;
}

async function main(): Promise<void> {
  const env = Env.parse(process.env);
  const run = `bench-scale-${Date.now().toString(36)}`;
  const brokers = env.CORDON_KAFKA_BROKERS.split(',');
  const playbook = writeRootQuarantinePlaybook(run, { name: 'bench-quarantine', description: 'the scale-out benchmark quarantines the root of every incident in the label store', enforcer: 'labelstore', ttl: '30m' });
  const inputs = configOf(drainConfig(run, { brokers, port: 0, playbook }));
  const kafka = createKafka(inputs, createLogger('fatal'), `${run}-bench`);
  const admin = kafka.admin();
  await admin.connect();
  const created: string[] = [];
  const ensure = async (config: Config) => {
    const topics = cordonTopics(config);
    await ensureTopics(admin, topics);
    created.push(...topics.map((t) => t.topic));
  };
  try {
    await ensure(inputs);
    progress(`generating the enterprise background pool (${env.BENCH_POOL.toLocaleString()} records)...`);
    const backlog = await produceBacklog(kafka, inputs, generatePool(env.BENCH_POOL), env.BENCH_BACKLOG);
    progress(`backlog: ${backlog.produced.toLocaleString()} records (${Math.round(backlog.perSecond).toLocaleString()}/s); the producer is idle from now on`);
    const phases: Drain[] = [];
    for (const replicas of [1, env.BENCH_REPLICAS]) {
      phases.push(await drainWith(`${run}-r${replicas}`, replicas, { brokers, playbook, inputsOf: run, backlog: backlog.produced, ensure }));
    }
    report(phases);
  } finally {
    await admin.deleteTopics({ topics: [...new Set(created)] }).catch(() => {});
    await admin.disconnect();
  }
}

function configOf(raw: object): Config {
  return loadConfig({ env: {}, overrides: raw });
}

/** Starts `replicas` processes of one phase together and times how fast they drain the backlog. */
async function drainWith(
  phase: string,
  replicas: number,
  o: { brokers: string[]; playbook: string; inputsOf: string; backlog: number; ensure: (config: Config) => Promise<void> },
): Promise<Drain> {
  const files: string[] = [];
  for (let i = 0; i < replicas; i++) {
    const raw = drainConfig(phase, { brokers: o.brokers, port: await freePort(), playbook: o.playbook, inputsOf: o.inputsOf });
    if (i === 0) await o.ensure(configOf(raw));
    files.push(writeConfig(`${phase}-${i}`, raw));
  }
  const processes = await Promise.all(files.map((configFile, i) => startCordon({ name: `${phase}-${i}`, configFile, env: { CORDON_LOG_LEVEL: 'warn' } })));
  try {
    await Promise.all(processes.map((p) => p.waitReady(120_000)));
    const drain = await timeDrain(processes, o.backlog);
    const peakRss = Math.max(...processes.map((p) => peakRssOf(p.pid)));
    progress(`${replicas} replica(s): ${drain.events.toLocaleString()} records in ${drain.seconds.toFixed(1)} s after all were ready`);
    return { replicas, perSecond: drain.events / drain.seconds, seconds: drain.seconds, cpuUsPerEvent: (drain.cpu * 1e6) / drain.events, peakRss };
  } finally {
    await Promise.all(processes.map((p) => p.stop(60_000)));
  }
}

async function timeDrain(processes: CordonProcess[], backlog: number): Promise<{ events: number; seconds: number; cpu: number }> {
  const sample = async () => ({
    at: Date.now(),
    consumed: (await Promise.all(processes.map(consumed))).reduce((a, b) => a + b, 0),
    cpu: processes.reduce((sum, p) => sum + cpuSecondsOf(p.pid), 0),
  });
  const first = await sample();
  let last = first;
  while (last.consumed < backlog && Date.now() - first.at < 300_000) {
    await sleep(100);
    last = await sample();
  }
  if (last.consumed < backlog) throw new Error(`the backlog was not drained within 300 s: ${last.consumed} of ${backlog}`);
  return { events: last.consumed - first.consumed, seconds: (last.at - first.at) / 1000, cpu: last.cpu - first.cpu };
}

function report(phases: Drain[]): void {
  const [one, many] = [phases[0]!, phases[phases.length - 1]!];
  const fmt = (n: number) => Math.round(n).toLocaleString();
  out('');
  for (const d of phases) {
    out(`${`${d.replicas} replica(s)`.padEnd(16)} ${fmt(d.perSecond)} events/s, ${d.cpuUsPerEvent.toFixed(1)} µs CPU per event (all processes), peak RSS ${mib(d.peakRss)} (largest process)`);
  }
  out(`${'speed-up'.padEnd(16)} ${(many.perSecond / one.perSecond).toFixed(2)}x with ${many.replicas} replicas (same backlog, same run)`);
  out(`${'machine'.padEnd(16)} ${cpus().length} cores shared with the broker, Redis and the replicas; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} at the end`);
}

const out = (line: string) => void process.stdout.write(`${line}\n`);
const progress = (line: string) => void process.stderr.write(`  .. ${line}\n`);
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

void main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
