import type Redis from 'ioredis';
import { entityKey, isFlow, type CordonEvent, type Flow } from '../events';
import type { Logger } from '../logger';

/**
 * Per-entity hourly flow summaries in Redis: what each workload talked to, on which port, allowed
 * or denied, in the last day. The approval page reads it as the impact preview of a quarantine
 * (the flows that isolating the target will cut).
 *
 *   <prefix>:flows:<entityKey>:<hour>   hash   `in|out` | peer | port/proto | verdict  ->  count
 *
 * `hour` is the hour (epoch ms / 3600000) in which Cordon saw the flow, not the event's own time:
 * the preview is about what runs now, and a replayed recording is seen now. Each key expires
 * RETENTION after its last write. One pipeline per batch, counts tallied in memory first.
 *
 * Telemetry is hostile: spoofed sources would give one key a field each. So each entity-hour keeps
 * at most `maxPerHour` distinct flows, the first seen; the flows past it only add to its OVERFLOW
 * field, which the preview reports as flows not kept.
 */

export const HOUR_MS = 3_600_000;
const RETENTION_SEC = 26 * 3600;

/**
 * Adds counts to many hashes in one command, so a batch of thousands of flows is a few commands to
 * encode, not thousands. ARGV: the retention, the most distinct flows a key keeps, then for each key
 * its field count and field, count pairs. A field new to a key already holding the most is not kept:
 * its count goes to the key's OVERFLOW field instead. Returns the flows not kept.
 */
const ADD_COUNTS = `
local max = tonumber(ARGV[2])
local overflow = ARGV[3]
local dropped = 0
local i = 4
for k = 1, #KEYS do
  local key = KEYS[k]
  local n = tonumber(ARGV[i])
  i = i + 1
  local kept = redis.call('HLEN', key) - redis.call('HEXISTS', key, overflow)
  for _ = 1, n do
    local field, count = ARGV[i], tonumber(ARGV[i + 1])
    i = i + 2
    if kept < max or redis.call('HEXISTS', key, field) == 1 then
      if redis.call('HINCRBY', key, field, count) == count then kept = kept + 1 end
    else
      redis.call('HINCRBY', key, overflow, count)
      dropped = dropped + count
    end
  end
  redis.call('EXPIRE', key, ARGV[1])
end
return dropped
`;

/** The field of an entity-hour counting the flows not kept past the bound; no flow field looks like it (they hold `|`). */
export const OVERFLOW = '#overflow';
/** Distinct flows kept per entity and hour unless told otherwise (config flows.maxPerHour). */
export const DEFAULT_MAX_PER_HOUR = 2_000;

/** Arguments per ADD_COUNTS call, well under what a spread call and Redis take at once. */
const ARGS_PER_CALL = 8_000;

export type Direction = 'in' | 'out';
export type Verdict = 'allowed' | 'denied';

/** One (direction, peer, port, protocol, verdict) of an entity, summed over the hours asked for. */
export interface FlowSummary {
  direction: Direction;
  peer: string;
  port: number;
  protocol: string;
  verdict: Verdict;
  count: number;
  /** Start (epoch ms) of the last hour it was seen in. */
  lastSeen: number;
}

export interface FlowImpact {
  entity: string;
  since: number;
  until: number;
  /** The most frequent distinct flows, most frequent first (at most `limit`). */
  flows: FlowSummary[];
  /** Distinct flows kept but left out past the limit (their counts are still in the totals). */
  truncated: number;
  /** Flows seen in an hour that already held its bound of distinct flows: not kept, so in no total (peer, port and verdict unknown). */
  overflow: number;
  totals: { allowed: number; denied: number; in: number; out: number; peers: number };
}

export function flowKey(prefix: string, entity: string, hour: number): string {
  return `${prefix}:flows:${entity}:${hour}`;
}

export function encodeField(direction: Direction, peer: string, port: number, protocol: string, verdict: Verdict): string {
  return `${direction}|${peer}|${port}/${protocol}|${verdict}`;
}

/** The inverse of encodeField; a peer may itself hold `|`, so the ends are cut first. */
export function decodeField(field: string): Omit<FlowSummary, 'count' | 'lastSeen'> | undefined {
  const first = field.indexOf('|');
  const last = field.lastIndexOf('|');
  const beforeLast = field.lastIndexOf('|', last - 1);
  if (first < 0 || beforeLast <= first) return undefined;
  const direction = field.slice(0, first);
  const verdict = field.slice(last + 1);
  const m = /^(\d+)\/(.+)$/.exec(field.slice(beforeLast + 1, last));
  if ((direction !== 'in' && direction !== 'out') || (verdict !== 'allowed' && verdict !== 'denied') || !m) return undefined;
  return { direction, peer: field.slice(first + 1, beforeLast), port: Number(m[1]), protocol: m[2]!, verdict };
}

/** The two sides of each flow, counted: entity -> field -> count, into a fresh map. */
export function tally(events: readonly CordonEvent[]): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  tallyInto(events, out);
  return out;
}

/** Adds the two sides of each flow to `out` (entity -> field -> count); returns how many fields it added. */
export function tallyInto(events: readonly CordonEvent[], out: Map<string, Map<string, number>>): number {
  let added = 0;
  const add = (entity: string, field: string) => {
    let fields = out.get(entity);
    if (!fields) out.set(entity, (fields = new Map()));
    const count = fields.get(field);
    if (count === undefined) added++;
    fields.set(field, (count ?? 0) + 1);
  };
  for (const e of events) {
    if (!isFlow(e)) continue;
    const src = entityKey(e.src);
    const dst = entityKey(e.dst);
    add(src, encodeField('out', dst, e.dstPort, e.protocol, verdictOf(e)));
    add(dst, encodeField('in', src, e.dstPort, e.protocol, verdictOf(e)));
  }
  return added;
}

function verdictOf(flow: Flow): Verdict {
  return flow.action === 'denied' ? 'denied' : 'allowed';
}

/** Negative when `a` is listed before `b`: most frequent first, then by peer, port, direction, protocol, verdict. */
export function flowOrder(a: FlowSummary, b: FlowSummary): number {
  return b.count - a.count || cmp(a.peer, b.peer) || a.port - b.port || cmp(a.direction, b.direction) || cmp(a.protocol, b.protocol) || cmp(a.verdict, b.verdict);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Entries handled between two yields of ImpactTally.top. */
const TOP_SLICE = 4_096;

/**
 * Sums the fields of hourly hashes, as they are read, into one impact: totals and peers as it goes,
 * then the top `limit` flows chosen with a heap of `limit` (n log limit, no sort of every flow).
 */
export class ImpactTally {
  private readonly byField = new Map<string, FlowSummary>();
  private readonly peers = new Set<string>();
  private readonly totals = { allowed: 0, denied: 0, in: 0, out: 0 };
  private overflow = 0;

  /** One field of the hash of the hour starting at `hourStart`; junk (unknown field, bad count) is skipped. */
  add(hourStart: number, field: string, raw: string): void {
    const count = Number(raw);
    if (!Number.isSafeInteger(count) || count <= 0) return;
    if (field === OVERFLOW) {
      this.overflow += count;
      return;
    }
    let flow = this.byField.get(field);
    if (flow) {
      flow.count += count;
      flow.lastSeen = Math.max(flow.lastSeen, hourStart);
    } else {
      const decoded = decodeField(field);
      if (!decoded) return;
      this.byField.set(field, (flow = { ...decoded, count, lastSeen: hourStart }));
      this.peers.add(flow.peer);
    }
    this.totals[flow.verdict] += count;
    this.totals[flow.direction] += count;
  }

  /** The impact; a generator that yields every TOP_SLICE flows so an async caller can let other work run. */
  *top(entity: string, since: number, until: number, limit: number): Generator<void, FlowImpact> {
    const heap = new TopHeap(limit);
    let n = 0;
    for (const flow of this.byField.values()) {
      heap.offer(flow);
      if (++n % TOP_SLICE === 0) yield;
    }
    const flows = heap.sorted();
    return {
      entity,
      since,
      until,
      flows,
      truncated: this.byField.size - flows.length,
      overflow: this.overflow,
      totals: { ...this.totals, peers: this.peers.size },
    };
  }
}

/** The `limit` first flows in flowOrder seen so far: a binary heap whose root is the last of them. */
class TopHeap {
  private readonly items: FlowSummary[] = [];

  constructor(private readonly limit: number) {}

  offer(flow: FlowSummary): void {
    const items = this.items;
    if (items.length < this.limit) {
      items.push(flow);
      this.up(items.length - 1);
    } else if (this.limit > 0 && flowOrder(flow, items[0]!) < 0) {
      items[0] = flow;
      this.down(0);
    }
  }

  sorted(): FlowSummary[] {
    return [...this.items].sort(flowOrder);
  }

  private up(i: number): void {
    const items = this.items;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (flowOrder(items[i]!, items[parent]!) <= 0) return;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  private down(i: number): void {
    const items = this.items;
    for (;;) {
      let last = i;
      for (const child of [2 * i + 1, 2 * i + 2]) {
        if (child < items.length && flowOrder(items[child]!, items[last]!) > 0) last = child;
      }
      if (last === i) return;
      [items[i], items[last]] = [items[last]!, items[i]!];
      i = last;
    }
  }
}

/** Sums hourly hashes (hour start ms, field -> count) into one impact, all at once. Pure. */
export function summarize(entity: string, since: number, until: number, hours: Array<[number, Record<string, string>]>, limit = 500): FlowImpact {
  const sums = new ImpactTally();
  for (const [hourStart, fields] of hours) {
    for (const [field, raw] of Object.entries(fields)) sums.add(hourStart, field, raw);
  }
  const top = sums.top(entity, since, until, limit);
  for (;;) {
    const step = top.next();
    if (step.done) return step.value;
  }
}

export interface FlowHistoryOptions {
  log?: Logger;
  clock?: () => number;
  retentionSec?: number;
  /** Distinct flows kept per entity and hour (flows.maxPerHour); DEFAULT_MAX_PER_HOUR unless given. */
  maxPerHour?: number;
  /** Told how many flows a write did not keep past the bound (the cordon_flow_overflow_total metric). */
  onOverflow?: (flows: number) => void;
}

/** The keys and arguments of each ADD_COUNTS call (retention and bound left out); an entity's fields may span calls. */
function* addCountsCalls(counts: ReadonlyMap<string, ReadonlyMap<string, number>>, keyOf: (entity: string) => string): Generator<[string[], Array<string | number>]> {
  let keys: string[] = [];
  let args: Array<string | number> = [];
  for (const [entity, fields] of counts) {
    let n = 0;
    let at = -1;
    for (const [field, count] of fields) {
      if (at < 0) {
        keys.push(keyOf(entity));
        at = args.push(0) - 1;
      }
      args.push(field, count);
      args[at] = ++n;
      if (keys.length + args.length < ARGS_PER_CALL) continue;
      yield [keys, args];
      keys = [];
      args = [];
      n = 0;
      at = -1;
    }
  }
  if (keys.length > 0) yield [keys, args];
}

/** Fields asked of Redis per HSCAN page while reading an impact. */
const SCAN_COUNT = 1_000;

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export class FlowHistory {
  readonly maxPerHour: number;
  private readonly clock: () => number;
  private readonly retentionSec: number;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly options: FlowHistoryOptions = {},
  ) {
    this.clock = options.clock ?? Date.now;
    this.retentionSec = options.retentionSec ?? RETENTION_SEC;
    this.maxPerHour = options.maxPerHour ?? DEFAULT_MAX_PER_HOUR;
    if (!Number.isSafeInteger(this.maxPerHour) || this.maxPerHour < 1) throw new RangeError(`maxPerHour must be a positive integer, not ${this.maxPerHour}`);
  }

  /**
   * Counts a batch's flows in one pipeline. Never throws: the summary is a side view, and a Redis
   * hiccup here must not fail (and so re-run) the correlator's batch; it is logged instead.
   */
  async record(events: readonly CordonEvent[]): Promise<void> {
    await this.write(tally(events), this.hour());
  }

  /** The hour (epoch ms / HOUR_MS) a flow seen now is counted in. */
  hour(): number {
    return Math.floor(this.clock() / HOUR_MS);
  }

  /**
   * Adds counts (entity -> field -> count) to an hour's hashes in one pipeline, each keeping at most
   * maxPerHour distinct flows (the rest counted under OVERFLOW, atomically in Redis); never throws, like record.
   */
  async write(counts: ReadonlyMap<string, ReadonlyMap<string, number>>, hour: number): Promise<void> {
    if (counts.size === 0) return;
    const pipeline = this.redis.pipeline();
    for (const [keys, args] of addCountsCalls(counts, (entity) => flowKey(this.prefix, entity, hour))) {
      pipeline.eval(ADD_COUNTS, keys.length, ...keys, this.retentionSec, this.maxPerHour, OVERFLOW, ...args);
    }
    try {
      const results = (await pipeline.exec()) ?? [];
      const failed = results.find(([err]) => err);
      if (failed) throw failed[0];
      const dropped = results.reduce((sum, [, n]) => sum + Number(n), 0);
      if (dropped > 0) this.options.onOverflow?.(dropped);
    } catch (err) {
      this.options.log?.warn({ err, entities: counts.size }, 'flow history not recorded for this batch');
    }
  }

  /**
   * Every flow to and from the entity seen from `sinceMs` (rounded down to its hour) until now.
   * `aliases` are other keys the same entity was seen under (its `ip:` key when a sensor saw only
   * the address); their flows are summed in. Each hash is read with HSCAN a page at a time and
   * summed as it comes, so a large one never holds the event loop for long.
   */
  async impact(entity: string, sinceMs: number, opts: { aliases?: readonly string[]; limit?: number } = {}): Promise<FlowImpact> {
    const until = this.clock();
    const first = Math.floor(sinceMs / HOUR_MS);
    const last = Math.floor(until / HOUR_MS);
    const sums = new ImpactTally();
    for (const key of [...new Set([entity, ...(opts.aliases ?? [])])]) {
      for (let h = first; h <= last; h++) await this.scanInto(flowKey(this.prefix, key, h), h * HOUR_MS, sums);
    }
    const top = sums.top(entity, first * HOUR_MS, until, opts.limit ?? 500);
    for (;;) {
      const step = top.next();
      if (step.done) return step.value;
      await nextTurn();
    }
  }

  /** HSCAN may return a field twice (while the hash is rehashed): each is counted once. */
  private async scanInto(key: string, hourStart: number, sums: ImpactTally): Promise<void> {
    const seen = new Set<string>();
    let cursor = '0';
    do {
      const [next, page] = await this.redis.hscan(key, cursor, 'COUNT', SCAN_COUNT);
      for (let i = 0; i + 1 < page.length; i += 2) {
        const field = page[i]!;
        if (seen.has(field)) continue;
        seen.add(field);
        sums.add(hourStart, field, page[i + 1]!);
      }
      cursor = next;
    } while (cursor !== '0');
  }
}
