import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { mib } from './rss';
import { publishHubble } from './support/publish';

/**
 * `npm run bench:clients`: the Kafka clients Cordon could use, measured on the same broker in the
 * same run. N Hubble records go to one 6-partition topic; then each client, in its own process,
 * reads them all in a new consumer group doing nothing per record, BENCH_REPEAT rounds (default 3)
 * in alternating order, medians (records/s, CPU µs per record
 * from the process's own accounting, peak RSS), and probes the features Cordon relies on: topic
 * admin, the idempotent producer, a consumer group that commits, committed offsets read back.
 * Clients: kafkajs and @platformatic/kafka (both installed), and @confluentinc/kafka-javascript
 * when BENCH_CONFLUENT_DIR names a directory where it is installed (it builds librdkafka from
 * source where its prebuilt binary cannot be downloaded, so it is not a dependency).
 */
const N = Number(process.env.BENCH_RECORDS ?? 300_000);
const BROKERS = process.env.CORDON_KAFKA_BROKERS ?? '127.0.0.1:9092';
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const CLIENTS = ['kafkajs', 'platformatic', ...(process.env.BENCH_CONFLUENT_DIR ? ['confluent'] : [])];

interface ConsumeResult {
  perSecond: number;
  cpuUsPerRecord: number;
  peakRss: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Runs one worker; a worker that fails prints `{ error }` and exits 1, which is a result too. */
function worker(args: string[]): Record<string, unknown> {
  let out: string;
  try {
    out = execFileSync(process.execPath, [join(__dirname, 'client-worker.js'), ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1024 * 1024,
      timeout: 300_000,
    });
  } catch (err) {
    out = String((err as { stdout?: unknown }).stdout ?? '') || JSON.stringify({ error: (err as Error).message });
  }
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
}

async function main(): Promise<void> {
  const run = `bench-clients-${Date.now().toString(36)}`;
  const kafka = new Kafka({ clientId: run, brokers: BROKERS.split(','), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: run, numPartitions: 6 }], waitForLeaders: true });
  const published = await publishHubble(kafka, run, N);
  process.stdout.write(`broker ${BROKERS}, ${N.toLocaleString()} Hubble records in 6 partitions (published at ${published.toFixed(0)}/s)\n\n`);
  process.stdout.write(`${REPEAT} rounds per client, medians\n${'client'.padEnd(14)}${'no-op records/s'.padStart(17)}${'range'.padStart(17)}${'CPU µs/record'.padStart(15)}${'peak RSS'.padStart(10)}   features\n`);
  const runs = new Map<string, ConsumeResult[]>(CLIENTS.map((c) => [c, []]));
  const errors = new Map<string, string>();
  // Alternating order across rounds, medians reported: a load that comes and goes on shared cores hits every client alike.
  for (let round = 0; round < REPEAT; round++) {
    for (const client of round % 2 === 0 ? CLIENTS : [...CLIENTS].reverse()) {
      const consumed = worker([client, 'consume', BROKERS, run, String(N)]);
      if (consumed.error) errors.set(client, String(consumed.error));
      else runs.get(client)!.push(consumed as unknown as ConsumeResult);
    }
  }
  const results: Record<string, ConsumeResult> = {};
  for (const client of CLIENTS) {
    const probe = worker([client, 'probe', BROKERS, `${run}-probe-${client}`]);
    const failed = Object.entries(probe).filter(([k, v]) => k !== 'client' && v !== 'ok');
    const mine = runs.get(client)!;
    if (mine.length === 0) {
      process.stdout.write(`${client.padEnd(14)} failed: ${errors.get(client) ?? 'no run'}\n`);
      continue;
    }
    const r = { perSecond: median(mine.map((x) => x.perSecond)), cpuUsPerRecord: median(mine.map((x) => x.cpuUsPerRecord)), peakRss: Math.max(...mine.map((x) => x.peakRss)) };
    results[client] = r;
    const features = failed.length === 0 ? 'all ok' : failed.map(([k, v]) => `${k}: ${String(v)}`).join('; ');
    const spread = `${Math.min(...mine.map((x) => x.perSecond)).toFixed(0)}-${Math.max(...mine.map((x) => x.perSecond)).toFixed(0)}`;
    process.stdout.write(
      `${client.padEnd(14)}${r.perSecond.toFixed(0).padStart(17)}${spread.padStart(17)}${r.cpuUsPerRecord.toFixed(2).padStart(15)}${mib(r.peakRss).padStart(10)}   ${features}\n`,
    );
  }
  const base = results.kafkajs;
  if (base) {
    process.stdout.write('\nagainst kafkajs (same run):\n');
    for (const [client, r] of Object.entries(results)) {
      process.stdout.write(`  ${client.padEnd(14)} ${(r.perSecond / base.perSecond).toFixed(2)}x records/s, ${(r.cpuUsPerRecord / base.cpuUsPerRecord).toFixed(2)}x CPU per record\n`);
    }
  }
  await admin.deleteTopics({ topics: [run] });
  await admin.disconnect();
}

void main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
