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
 */

export const HOUR_MS = 3_600_000;
const RETENTION_SEC = 26 * 3600;

/**
 * Adds counts to many hashes in one command, so a batch of thousands of flows is a few commands to
 * encode, not thousands. ARGV: the retention, then for each key its field count and field, count pairs.
 */
const ADD_COUNTS = `
local i = 2
for k = 1, #KEYS do
  local n = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, n do
    redis.call('HINCRBY', KEYS[k], ARGV[i], ARGV[i + 1])
    i = i + 2
  end
  redis.call('EXPIRE', KEYS[k], ARGV[1])
end
return #KEYS
`;

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
  /** Every distinct flow, most frequent first (at most `limit`). */
  flows: FlowSummary[];
  /** Distinct flows left out past the limit (their counts are still in the totals). */
  truncated: number;
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

/** The two sides of each flow, counted: entity -> field -> count, into `out` (fresh unless given one to add to). */
export function tally(events: readonly CordonEvent[], out = new Map<string, Map<string, number>>()): Map<string, Map<string, number>> {
  const add = (entity: string, field: string) => {
    let fields = out.get(entity);
    if (!fields) out.set(entity, (fields = new Map()));
    fields.set(field, (fields.get(field) ?? 0) + 1);
  };
  for (const e of events) {
    if (!isFlow(e)) continue;
    const src = entityKey(e.src);
    const dst = entityKey(e.dst);
    add(src, encodeField('out', dst, e.dstPort, e.protocol, verdictOf(e)));
    add(dst, encodeField('in', src, e.dstPort, e.protocol, verdictOf(e)));
  }
  return out;
}

function verdictOf(flow: Flow): Verdict {
  return flow.action === 'denied' ? 'denied' : 'allowed';
}

/** Sums hourly hashes (hour start ms, field -> count) into one impact. Pure. */
export function summarize(entity: string, since: number, until: number, hours: Array<[number, Record<string, string>]>, limit = 500): FlowImpact {
  const byField = new Map<string, FlowSummary>();
  for (const [hourStart, fields] of hours) {
    for (const [field, raw] of Object.entries(fields)) {
      const decoded = decodeField(field);
      const count = Number(raw);
      if (!decoded || !Number.isFinite(count) || count <= 0) continue;
      const seen = byField.get(field);
      if (seen) {
        seen.count += count;
        seen.lastSeen = Math.max(seen.lastSeen, hourStart);
      } else byField.set(field, { ...decoded, count, lastSeen: hourStart });
    }
  }
  const all = [...byField.values()].sort((a, b) => b.count - a.count || a.peer.localeCompare(b.peer) || a.port - b.port);
  const totals = { allowed: 0, denied: 0, in: 0, out: 0, peers: new Set(all.map((f) => f.peer)).size };
  for (const f of all) {
    totals[f.verdict] += f.count;
    totals[f.direction] += f.count;
  }
  return { entity, since, until, flows: all.slice(0, limit), truncated: Math.max(0, all.length - limit), totals };
}

export interface FlowHistoryOptions {
  log?: Logger;
  clock?: () => number;
  retentionSec?: number;
}

/** The keys and arguments of each ADD_COUNTS call (retention left out); an entity's fields may span calls. */
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

export class FlowHistory {
  private readonly clock: () => number;
  private readonly retentionSec: number;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly options: FlowHistoryOptions = {},
  ) {
    this.clock = options.clock ?? Date.now;
    this.retentionSec = options.retentionSec ?? RETENTION_SEC;
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

  /** Adds counts (entity -> field -> count) to an hour's hashes in one pipeline; never throws, like record. */
  async write(counts: ReadonlyMap<string, ReadonlyMap<string, number>>, hour: number): Promise<void> {
    if (counts.size === 0) return;
    const pipeline = this.redis.pipeline();
    for (const [keys, args] of addCountsCalls(counts, (entity) => flowKey(this.prefix, entity, hour))) {
      pipeline.eval(ADD_COUNTS, keys.length, ...keys, this.retentionSec, ...args);
    }
    try {
      const results = await pipeline.exec();
      const failed = results?.find(([err]) => err);
      if (failed) throw failed[0];
    } catch (err) {
      this.options.log?.warn({ err, entities: counts.size }, 'flow history not recorded for this batch');
    }
  }

  /**
   * Every flow to and from the entity seen from `sinceMs` (rounded down to its hour) until now.
   * `aliases` are other keys the same entity was seen under (its `ip:` key when a sensor saw only
   * the address); their flows are summed in.
   */
  async impact(entity: string, sinceMs: number, opts: { aliases?: readonly string[]; limit?: number } = {}): Promise<FlowImpact> {
    const until = this.clock();
    const first = Math.floor(sinceMs / HOUR_MS);
    const last = Math.floor(until / HOUR_MS);
    const keys = [...new Set([entity, ...(opts.aliases ?? [])])];
    const pipeline = this.redis.pipeline();
    const starts: number[] = [];
    for (const key of keys) {
      for (let h = first; h <= last; h++) {
        pipeline.hgetall(flowKey(this.prefix, key, h));
        starts.push(h * HOUR_MS);
      }
    }
    const results = (await pipeline.exec()) ?? [];
    const hours: Array<[number, Record<string, string>]> = results.map(([err, value], i) => {
      if (err) throw err;
      return [starts[i]!, value as Record<string, string>];
    });
    return summarize(entity, first * HOUR_MS, until, hours, opts.limit);
  }
}
