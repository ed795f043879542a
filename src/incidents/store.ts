import type Redis from 'ioredis';
import type { Incident } from '../correlate/incident';
import type { PolicyGapFinding } from '../correlate/policy-gap';

/** Keeps the newest version of an incident only: a replayed older version never overwrites a newer one. */
const PUT_IF_NEWER = `
local current = redis.call('HGET', KEYS[3], ARGV[1])
if current and tonumber(current) >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
return 1
`;

/** The channel on which the store announces new incident versions (http/change-feed.ts pushes them to the console). */
export const changesChannel = (prefix: string): string => `${prefix}:changes`;

export type StoreItem =
  | { kind: 'incident'; id: string; version: number; lastSeen: number; json: string }
  | { kind: 'policy_gap'; id: string; json: string };

/**
 * The materialized view of incidents and policy-gap findings in Redis, for the API and console.
 * Kafka's incidents topic is the stream; this is the latest state of each.
 */
export class IncidentStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(name: string): string {
    return `${this.prefix}:${name}`;
  }

  /**
   * Writes many in one round trip, each already encoded as JSON; an incident still only replaces
   * an older version of itself.
   */
  async putAll(items: readonly StoreItem[]): Promise<void> {
    if (items.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const item of items) {
      if (item.kind === 'policy_gap') pipeline.hset(this.key('policy-gaps'), item.id, item.json);
      else pipeline.eval(PUT_IF_NEWER, 3, this.key('incidents'), this.key('incidents:by-last-seen'), this.key('incidents:versions'), item.id, item.json, item.version, item.lastSeen);
    }
    const ids = items.filter((i) => i.kind === 'incident').map((i) => i.id);
    if (ids.length > 0) pipeline.publish(changesChannel(this.prefix), JSON.stringify({ ids: ids.slice(0, 100), count: ids.length }));
    const results = await pipeline.exec();
    const failed = results?.find(([err]) => err);
    if (failed) throw failed[0];
  }

  async get(id: string): Promise<Incident | undefined> {
    const json = await this.redis.hget(this.key('incidents'), id);
    return json ? (JSON.parse(json) as Incident) : undefined;
  }

  /** Newest first by last activity. */
  async list(limit = 100): Promise<Incident[]> {
    const ids = await this.redis.zrevrange(this.key('incidents:by-last-seen'), 0, limit - 1);
    if (ids.length === 0) return [];
    const values = await this.redis.hmget(this.key('incidents'), ...ids);
    return values.filter((v): v is string => v !== null).map((v) => JSON.parse(v) as Incident);
  }

  async policyGaps(): Promise<PolicyGapFinding[]> {
    const all = await this.redis.hvals(this.key('policy-gaps'));
    return all.map((v) => JSON.parse(v) as PolicyGapFinding);
  }
}
