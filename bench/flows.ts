import { monitorEventLoopDelay } from 'node:perf_hooks';
import Redis from 'ioredis';
import type { CordonEvent } from '../src/events';
import { decodeField, DEFAULT_MAX_PER_HOUR, FlowHistory, flowKey, HOUR_MS, type FlowImpact, type FlowSummary } from '../src/flows/history';
import { FlowRecorder } from '../src/flows/recorder';

/**
 * `npm run bench:flows`: spoofed flows against the flow history on the real Redis (CORDON_REDIS_URL,
 * default redis://127.0.0.1:6379). BENCH_FLOWS (100,000) flows from as many spoofed sources reach
 * one target, through the FlowRecorder as the correlator sends them (batches of 500), once with the
 * bound lifted (what every key could become before it) and once with BENCH_BOUND (flows.maxPerHour's
 * default, 2,000). Each key is then previewed twice: the old way (HGETALL, then every flow decoded
 * and sorted in one go) and the way the service does now (HSCAN a page at a time, a heap for the top
 * 500, yielding between slices). For each: fields in the key, its memory, the preview's time and the
 * longest the event loop was held during it (monitorEventLoopDelay, 1 ms resolution), each the median
 * of BENCH_REPEAT (3) previews, so the first one's cold code does not decide a row.
 */
const FLOWS = Number(process.env.BENCH_FLOWS ?? 100_000);
const BOUND = Number(process.env.BENCH_BOUND ?? DEFAULT_MAX_PER_HOUR);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const BATCH = 500;
const NOW = Date.now();
const TARGET = 'ip:10.99.0.1';

function spoofedBatch(from: number, n: number): CordonEvent[] {
  return Array.from({ length: n }, (_, j) => {
    const i = from + j;
    return {
      id: `b${i}`,
      time: NOW,
      src: { ip: `172.${16 + ((i >> 16) & 15)}.${(i >> 8) & 255}.${i & 255}` },
      dst: { ip: '10.99.0.1' },
      protocol: 'tcp',
      dstPort: 3389,
      action: 'denied',
      observer: { type: 'bench', name: 'bench' },
    } as CordonEvent;
  });
}

/** The preview as it was: every field of every hour at once, decoded, summed, sorted. */
async function previewBefore(redis: Redis, prefix: string): Promise<number> {
  const fields = await redis.hgetall(flowKey(prefix, TARGET, Math.floor(NOW / HOUR_MS)));
  const byField = new Map<string, FlowSummary>();
  for (const [field, raw] of Object.entries(fields)) {
    const decoded = decodeField(field);
    if (decoded) byField.set(field, { ...decoded, count: Number(raw), lastSeen: NOW });
  }
  const all = [...byField.values()].sort((a, b) => b.count - a.count || a.peer.localeCompare(b.peer) || a.port - b.port);
  return all.slice(0, 500).length;
}

async function previewNow(history: FlowHistory): Promise<FlowImpact> {
  return history.impact(TARGET, NOW - HOUR_MS);
}

async function measure<T>(what: () => Promise<T>): Promise<Measured<T>> {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  // a timer that keeps the loop turning, so a held loop shows as a late turn
  const ticker = setInterval(() => undefined, 1);
  delay.enable();
  const start = performance.now();
  const value = await what();
  const ms = performance.now() - start;
  await new Promise((r) => setTimeout(r, 5));
  delay.disable();
  clearInterval(ticker);
  return { ms, maxBlockMs: delay.max / 1e6, p99BlockMs: delay.percentile(99) / 1e6, value };
}

/** Each figure the median of REPEAT runs (taken one figure at a time). */
type Measured<T> = { ms: number; maxBlockMs: number; p99BlockMs: number; value: T };

async function median<T>(what: () => Promise<T>): Promise<Measured<T>> {
  const runs: Array<Measured<T>> = [];
  for (let i = 0; i < REPEAT; i++) runs.push(await measure(what));
  const mid = (pick: (r: Measured<T>) => number) => runs.map(pick).sort((a, b) => a - b)[Math.floor(runs.length / 2)]!;
  return { ms: mid((r) => r.ms), maxBlockMs: mid((r) => r.maxBlockMs), p99BlockMs: mid((r) => r.p99BlockMs), value: runs[0]!.value };
}

async function fill(redis: Redis, prefix: string, maxPerHour: number): Promise<{ history: FlowHistory; writeMs: number; overflow: number }> {
  let overflow = 0;
  const history = new FlowHistory(redis, prefix, { maxPerHour, onOverflow: (n) => (overflow += n) });
  const recorder = new FlowRecorder(history, 1_000);
  const start = performance.now();
  for (let i = 0; i < FLOWS; i += BATCH) recorder.add(spoofedBatch(i, Math.min(BATCH, FLOWS - i)));
  await recorder.flush();
  return { history, writeMs: performance.now() - start, overflow };
}

async function unlinkAll(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 5_000);
    if (keys.length) await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
}

async function main(): Promise<void> {
  const redis = new Redis(process.env.CORDON_REDIS_URL ?? 'redis://127.0.0.1:6379');
  const run = `bench-flows-${Date.now().toString(36)}`;
  const rows: Array<Record<string, string | number>> = [];
  try {
    for (const [label, maxPerHour] of [
      ['unbounded', 1_000_000_000],
      [`bound ${BOUND}`, BOUND],
    ] as const) {
      const prefix = `${run}-${maxPerHour}`;
      const { history, writeMs, overflow } = await fill(redis, prefix, maxPerHour);
      const key = flowKey(prefix, TARGET, Math.floor(NOW / HOUR_MS));
      const fields = await redis.hlen(key);
      const bytes = Number(await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'));
      const before = await median(() => previewBefore(redis, prefix));
      const now = await median(() => previewNow(history));
      const row = (preview: string, m: { ms: number; maxBlockMs: number; p99BlockMs: number }, notKept: number) => ({
        key: label,
        preview,
        'write ms': Math.round(writeMs),
        'fields in key': fields,
        'key KiB': Math.round(bytes / 1024),
        'not kept': notKept,
        'preview ms': Math.round(m.ms),
        'max loop block ms': Math.round(m.maxBlockMs),
        'p99 loop block ms': Math.round(m.p99BlockMs),
      });
      rows.push(row('before: HGETALL + sort all', before, overflow));
      rows.push(row('now: HSCAN + top-500 heap', now, now.value.overflow));
      await unlinkAll(redis, `${prefix}:*`);
    }
  } finally {
    redis.disconnect();
  }
  console.log(`${FLOWS} spoofed flows to one entity, one hour, preview of the top 500 (median of ${REPEAT})`);
  console.table(rows);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
