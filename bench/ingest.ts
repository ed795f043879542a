import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config';
import { cordonTopics, createKafka, ensureTopics } from '../src/kafka';
import { createLogger } from '../src/logger';
import { mib } from './rss';
import { publishHubble } from './support/publish';

/**
 * `npm run bench:ingest`: publishes N denied-flow records (Cilium Hubble JSON) to the real Kafka,
 * then consumes them three times, each in its own process: a kafkajs consumer that does nothing
 * per message (the client's ceiling), Cordon's ingest (validate and normalize), and the whole
 * correlator stage. Prints records/s of each, the ratio, peak RSS, and CPU µs a record of each
 * process and of each stage (the difference between consecutive processes: the client's decoding,
 * intake, correlation). The chosen client is kafkajs (docs/performance.md, "Kafka client"), so its
 * no-op ceiling and kafkajs's are the same run.
 * Targets: ingest ≥ 0.5 of the kafkajs no-op ceiling, peak RSS < 300 MB.
 */
const N = Number(process.env.BENCH_RECORDS ?? 1_000_000);

async function main(): Promise<void> {
  const run = `bench-ingest-${Date.now().toString(36)}`;
  const overrides = {
    kafka: {
      brokers: (process.env.CORDON_KAFKA_BROKERS ?? '127.0.0.1:9092').split(','),
      partitions: 6,
      inputs: [{ topic: `${run}.flows`, format: 'hubble' }],
      topics: { events: `${run}.events`, dlq: `${run}.dlq`, incidents: `${run}.incidents`, ledger: `${run}.ledger`, lifecycle: `${run}.lifecycle` },
      groups: { ingest: `${run}-ingest`, correlate: `${run}-correlate` },
    },
    redis: { keyPrefix: run },
    // Recorded-time records: no freshness rejects in the benchmark.
    ingest: { maxEventAgeMs: 0 },
  };
  const config = loadConfig({ env: {}, overrides });
  const kafka = createKafka(config, createLogger('error'));
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, cordonTopics(config));

  const published = await publishHubble(kafka, config.kafka.inputs[0]!.topic, N);
  const noop = worker('noop', overrides);
  const cordon = worker('ingest', overrides);
  const threaded = worker('threads', overrides);
  const correlate = worker('correlate', overrides);

  const ratio = cordon.perSecond / noop.perSecond;
  const threadedRatio = threaded.perSecond / noop.perSecond;
  const cpu = (r: Result) => `${r.cpuUsPerRecord.toFixed(2)} µs CPU/record`;
  const rows = [
    ['records published', `${N.toLocaleString()} (${published.toFixed(0)} records/s)`],
    ['kafkajs no-op consumer', `${noop.perSecond.toFixed(0)} records/s, ${cpu(noop)}, peak RSS ${mib(noop.peakRss)}`],
    ['cordon ingest', `${cordon.perSecond.toFixed(0)} records/s, ${cpu(cordon)}, peak RSS ${mib(cordon.peakRss)}`],
    [`cordon ingest, ${threaded.threads} threads`, `${threaded.perSecond.toFixed(0)} records/s, ${cpu(threaded)} (all threads), peak RSS ${mib(threaded.peakRss)}`],
    ['cordon ingest + correlate', `${correlate.perSecond.toFixed(0)} records/s, ${cpu(correlate)}, peak RSS ${mib(correlate.peakRss)}`],
    ['stage: client decoding', `${noop.cpuUsPerRecord.toFixed(2)} µs CPU/record`],
    ['stage: intake', `${(cordon.cpuUsPerRecord - noop.cpuUsPerRecord).toFixed(2)} µs CPU/record (validate, normalize, dead-letter)`],
    ['stage: correlation', `${(correlate.cpuUsPerRecord - cordon.cpuUsPerRecord).toFixed(2)} µs CPU/record (engine, snapshots, incident writes)`],
    ['ratio to the chosen client', `${ratio.toFixed(2)} (kafkajs; no-op ceiling above)`],
    ['ratio to kafkajs (>= 0.50)', `${ratio.toFixed(2)} ${ratio >= 0.5 ? 'MET' : 'MISSED'} (main thread)`],
    ['  on intake threads', `${threadedRatio.toFixed(2)} ${threadedRatio >= 0.5 ? 'MET' : 'MISSED'} (${threaded.threads} threads on ${availableParallelism()} cores)`],
    ['peak RSS (target < 300 MB)', `${mib(cordon.peakRss)} ${cordon.peakRss < 300 * 1024 * 1024 ? 'MET' : 'MISSED'}; on threads ${mib(threaded.peakRss)} ${threaded.peakRss < 300 * 1024 * 1024 ? 'MET' : 'MISSED'}`],
  ];
  for (const [k, v] of rows) process.stdout.write(`${k!.padEnd(28)} ${v}\n`);

  await admin.deleteTopics({ topics: cordonTopics(config).map((t) => t.topic) });
  await admin.disconnect();
}

interface Result {
  threads?: number;
  perSecond: number;
  peakRss: number;
  records: number;
  cpuUsPerRecord: number;
}

function worker(mode: 'noop' | 'ingest' | 'threads' | 'correlate', overrides: object) {
  const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  const args = [...profile, join(__dirname, 'ingest-worker.js'), mode, JSON.stringify(overrides), String(N)];
  const out = execFileSync(process.execPath, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1024 * 1024,
  });
  return JSON.parse(out.trim().split('\n').pop()!) as Result;
}

void main().catch((err) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
