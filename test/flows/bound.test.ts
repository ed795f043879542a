import { monitorEventLoopDelay } from 'node:perf_hooks';
import Redis from 'ioredis';
import { loadConfig } from '../../src/config';
import type { CordonEvent } from '../../src/events';
import { encodeField, FlowHistory, flowKey, flowOrder, HOUR_MS, ImpactTally, OVERFLOW, summarize, type FlowSummary } from '../../src/flows/history';
import { FlowRecorder } from '../../src/flows/recorder';
import { Metrics } from '../../src/metrics';
import { REDIS_URL, uniq } from '../support/stack';

const T0 = Date.UTC(2026, 10, 23, 10, 15);
const HOUR = Math.floor(T0 / HOUR_MS);
const TARGET = '10.50.0.1';

function flow(src: string, dst: string, port: number, action: 'allowed' | 'denied' = 'allowed'): CordonEvent {
  return { id: 'f', time: T0, src: { ip: src }, dst: { ip: dst }, protocol: 'tcp', dstPort: port, action, observer: { type: 'test', name: 'test' } } as CordonEvent;
}

/** The i-th of many distinct spoofed source addresses. */
function spoofed(i: number): string {
  return `172.${16 + ((i >> 16) & 15)}.${(i >> 8) & 255}.${i & 255}`;
}

async function unlinkAll(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 5_000);
    if (keys.length) await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
}

describe('flow history bound per entity and hour (real Redis)', () => {
  const redis = new Redis(REDIS_URL);
  const prefix = uniq('flow-bound');
  afterAll(async () => {
    await unlinkAll(redis, `${prefix}:*`);
    redis.disconnect();
  });

  it('flows.maxPerHour defaults to 2000 and must be a positive integer of at most 100000', () => {
    expect(loadConfig({ env: {} }).flows.maxPerHour).toBe(2_000);
    expect(loadConfig({ env: {}, overrides: { flows: { maxPerHour: 50 } } }).flows.maxPerHour).toBe(50);
    expect(() => loadConfig({ env: {}, overrides: { flows: { maxPerHour: 0 } } })).toThrow(/flows\.maxPerHour/);
    expect(() => loadConfig({ env: {}, overrides: { flows: { maxPerHour: 1e6 } } })).toThrow(/flows\.maxPerHour/);
    expect(() => new FlowHistory(redis, prefix, { maxPerHour: Infinity })).toThrow(RangeError);
  });

  it('100k spoofed flows to one entity leave at most the bound of fields; the rest are counted as overflow, in the preview and the metric', async () => {
    const bound = 1_000;
    const metrics = new Metrics({ defaultMetrics: false });
    const history = new FlowHistory(redis, prefix, { clock: () => T0, maxPerHour: bound, onOverflow: (n) => metrics.flowOverflow.inc(n) });
    const recorder = new FlowRecorder(history, 60_000);
    // a real peer talks first and keeps talking once the key is full
    recorder.add([flow('10.50.0.2', TARGET, 445), flow('10.50.0.2', TARGET, 445)]);
    for (let i = 0; i < 100_000; i += 500) {
      recorder.add(Array.from({ length: 500 }, (_, j) => flow(spoofed(i + j), TARGET, 3389, 'denied')));
      if (i % 20_000 === 0) recorder.add([flow('10.50.0.2', TARGET, 445)]);
    }
    await recorder.flush();

    const key = flowKey(prefix, `ip:${TARGET}`, HOUR);
    const stored = await redis.hgetall(key);
    const kept = Object.keys(stored).filter((f) => f !== OVERFLOW);
    expect(kept).toHaveLength(bound);
    expect(stored[encodeField('in', 'ip:10.50.0.2', 445, 'tcp', 'allowed')]).toBe('7');
    expect(Number(stored[OVERFLOW])).toBe(100_000 - (bound - 1));
    expect(await redis.ttl(key)).toBeGreaterThan(0);

    const impact = await history.impact(`ip:${TARGET}`, T0 - HOUR_MS, { limit: 10 });
    expect(impact.overflow).toBe(100_000 - (bound - 1));
    expect(impact.flows[0]).toMatchObject({ direction: 'in', peer: 'ip:10.50.0.2', port: 445, verdict: 'allowed', count: 7 });
    expect(impact.flows).toHaveLength(10);
    expect(impact.truncated).toBe(bound - 10);
    expect(impact.totals).toEqual({ allowed: 7, denied: bound - 1, in: 7 + bound - 1, out: 0, peers: bound });
    expect(await metrics.registry.getSingleMetricAsString('cordon_flow_overflow_total')).toMatch(new RegExp(`^cordon_flow_overflow_total ${100_000 - (bound - 1)}$`, 'm'));
  }, 60_000);

  it('writers racing on one key keep the bound exactly (the check and the add are one script)', async () => {
    const bound = 300;
    const writers = Array.from({ length: 4 }, () => new Redis(REDIS_URL));
    try {
      const histories = writers.map((r) => new FlowHistory(r, prefix, { clock: () => T0, maxPerHour: bound }));
      const entity = 'host:raced';
      await Promise.all(
        histories.map((h, w) =>
          Promise.all(Array.from({ length: 10 }, (_, b) => h.write(new Map([[entity, new Map(Array.from({ length: 50 }, (_, i) => [`in|ip:w${w}-${b}-${i}|22/tcp|denied`, 2] as const))]]), HOUR))),
        ),
      );
      const stored = await redis.hgetall(flowKey(prefix, entity, HOUR));
      const kept = Object.entries(stored).filter(([f]) => f !== OVERFLOW);
      expect(kept).toHaveLength(bound);
      expect(kept.reduce((sum, [, n]) => sum + Number(n), 0) + Number(stored[OVERFLOW])).toBe(4 * 10 * 50 * 2);
    } finally {
      for (const w of writers) w.disconnect();
    }
  });

  it('the recorder writes at once when its pending fields pass 200k, however few entities hold them', async () => {
    const history = new FlowHistory(redis, prefix, { clock: () => T0 + 2 * HOUR_MS });
    const recorder = new FlowRecorder(history, 600_000);
    const key = flowKey(prefix, 'ip:10.51.0.1', HOUR + 2);
    // two entities, 100k ports each: 200k fields, then one more
    for (let port = 1; port <= 100_000; port += 1_000) recorder.add(Array.from({ length: 1_000 }, (_, j) => flow('10.51.0.2', '10.51.0.1', port + j)));
    await new Promise((r) => setTimeout(r, 200));
    expect(await redis.exists(key)).toBe(0);
    recorder.add([flow('10.51.0.2', '10.51.0.1', 100_001)]);
    const deadline = Date.now() + 20_000;
    while ((await redis.exists(key)) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await redis.hlen(key)).toBe(history.maxPerHour + 1);
    await recorder.flush();
  }, 60_000);

  it('a preview of a key holding 100k fields (written before the bound) reads it page by page without holding the event loop', async () => {
    const entity = 'host:legacy';
    const key = flowKey(prefix, entity, HOUR);
    for (let i = 0; i < 100_000; i += 10_000) {
      const args: string[] = [];
      for (let j = i; j < i + 10_000; j++) args.push(encodeField('in', `ip:${spoofed(j)}`, 3389, 'tcp', 'denied'), String((j % 97) + 1));
      await redis.hset(key, ...args);
    }
    const history = new FlowHistory(redis, prefix, { clock: () => T0 });
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const impact = await history.impact(entity, T0 - HOUR_MS);
    delay.disable();
    expect(impact.flows).toHaveLength(500);
    expect(impact.flows.every((f) => f.count === 97)).toBe(true);
    expect(impact.truncated).toBe(100_000 - 500);
    expect(impact.totals.peers).toBe(100_000);
    // the unbounded read and sort this replaced held it for over a second; each page here is ~1000 fields
    expect(delay.max / 1e6).toBeLessThan(500);
  }, 60_000);

  it('the top flows chosen with a heap are the first ones of a full sort, totals the sum of all', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const hours: Array<[number, Record<string, string>]> = [0, 1, 2].map((h) => {
      const fields: Record<string, string> = {};
      for (let i = 0; i < 3_000; i++) fields[encodeField(rnd() < 0.5 ? 'in' : 'out', `ip:10.0.${Math.floor(rnd() * 40)}.1`, Math.floor(rnd() * 20), 'tcp', rnd() < 0.3 ? 'denied' : 'allowed')] = String(1 + Math.floor(rnd() * 9));
      fields[OVERFLOW] = '5';
      fields['junk'] = '3';
      fields[encodeField('in', 'ip:x', 1, 'tcp', 'allowed')] = 'NaN';
      return [h * HOUR_MS, fields];
    });
    const reference = new Map<string, FlowSummary>();
    const sums = new ImpactTally();
    let total = 0;
    for (const [start, fields] of hours) {
      for (const [field, raw] of Object.entries(fields)) {
        sums.add(start, field, raw);
        const [direction, peer, portProto, verdict] = field.split('|');
        if (!verdict || !Number.isFinite(Number(raw))) continue;
        total += Number(raw);
        const seen = reference.get(field);
        if (seen) seen.count += Number(raw);
        else reference.set(field, { direction, peer, port: Number(portProto!.split('/')[0]), protocol: 'tcp', verdict, count: Number(raw), lastSeen: start } as FlowSummary);
      }
    }
    const impact = summarize('e', 0, 1, hours, 25);
    expect(impact.flows.map((f) => [f.direction, f.peer, f.port, f.verdict, f.count])).toEqual(
      [...reference.values()].sort(flowOrder).slice(0, 25).map((f) => [f.direction, f.peer, f.port, f.verdict, f.count]),
    );
    expect(impact.truncated).toBe(reference.size - 25);
    expect(impact.overflow).toBe(15);
    expect(impact.totals.allowed + impact.totals.denied).toBe(total);
    expect(impact.totals.in + impact.totals.out).toBe(total);
    expect(sums).toBeInstanceOf(ImpactTally);
  });
});
