import type Redis from 'ioredis';
import { z } from 'zod';
import { canonicalJson } from './canonical';
import type { ChainHead } from './chain';
import { LIVE_STATES, Lease, LeasePayload, isQuarantineAction, leasePayload, type LedgerRecord } from './records';

/**
 * The quarantine registry: the materialized view of leases the rest of Cordon reads, derived from
 * the ledger's `quarantine_*` records alone (each one's `after` is the whole lease after the action).
 *
 * Redis keys (all under the configured prefix):
 *   <prefix>:leases             hash    target -> lease JSON (canonical)
 *   <prefix>:leases:by-expiry   zset    target scored by expiresAt, for pending and applied leases
 *   <prefix>:leases:held        hash    "<incidentId> <target>" -> seq of the first record that had
 *                                        the target applied with that incident among its holders
 *   <prefix>:ledger:head        string  {seq, hash, offset} of the last record applied to the view
 * Only the ledger writer changes these keys, and only while it holds the writer lock (every
 * write is fenced by the lock token); everything else reads.
 */

export function ledgerKeys(prefix: string) {
  return {
    leases: `${prefix}:leases`,
    byExpiry: `${prefix}:leases:by-expiry`,
    held: `${prefix}:leases:held`,
    head: `${prefix}:ledger:head`,
    lock: `${prefix}:ledger:lock`,
    epoch: `${prefix}:ledger:epoch`,
    releasing: `${prefix}:leases:releasing`,
  };
}

export const ReleaseIntent = z.strictObject({
  ledgerSeq: z.number().int().nonnegative(),
  actor: z.string(),
  reason: z.string(),
  expired: z.boolean(),
  incidentId: z.string().optional(),
});
export type ReleaseIntent = z.infer<typeof ReleaseIntent>;

/** The head of the view: the last record applied, and its offset in the ledger topic. */
export const StoredHead = z.strictObject({
  seq: z.number().int().nonnegative(),
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  offset: z.string().regex(/^\d+$/),
});
export type StoredHead = z.infer<typeof StoredHead>;

export class FencedError extends Error {
  override name = 'FencedError';
}

/** The lease a record leaves behind, or undefined for records that do not touch a lease. */
export function leaseAfter(record: LedgerRecord): Lease | undefined {
  if (!isQuarantineAction(record.action)) return undefined;
  // The record parsed as a LedgerRecord, whose rules already checked this payload.
  return { ...leasePayload(LeasePayload.parse(record.after)), ledgerSeq: record.seq };
}

/** The `held` fields a record's lease sets: one per holder of an applied lease. */
export function heldFields(lease: Lease | undefined): string[] {
  return lease?.state === 'applied' ? lease.holders.map((h) => heldField(h, lease.target)) : [];
}

function heldField(incidentId: string, target: string): string {
  return `${incidentId} ${target}`;
}

export function isLive(lease: Lease): boolean {
  return LIVE_STATES.has(lease.state);
}

const FENCE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED the ledger writer lock is not held by this writer')
end
`;

/**
 * Applies one record: only on top of the record before it (head seq = seq - 1). Returns 1 applied,
 * 0 already applied (head at or past seq), -1 the view lags (head below seq - 1): catch up first.
 * KEYS: lock, head, leases, byExpiry, held. ARGV: token, seq, head JSON, target ('' = no lease change), lease JSON,
 * score ('' = not live), then the held fields to set.
 */
const APPLY = `${FENCE}
local current = redis.call('GET', KEYS[2])
local seq = tonumber(ARGV[2])
local at = 0
if current then at = tonumber(cjson.decode(current)['seq']) end
if at >= seq then return 0 end
if at ~= seq - 1 then return -1 end
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
  if ARGV[6] ~= '' then redis.call('ZADD', KEYS[4], ARGV[6], ARGV[4]) else redis.call('ZREM', KEYS[4], ARGV[4]) end
end
for i = 7, #ARGV do redis.call('HSETNX', KEYS[5], ARGV[i], seq) end
redis.call('SET', KEYS[2], ARGV[3])
return 1
`;

/**
 * Replaces the whole view at once (rebuild). KEYS: lock, head, leases, byExpiry, held.
 * ARGV: token, head JSON ('' = empty ledger), held JSON ({field: seq}), then target, lease JSON,
 * score ('' = not live) per lease.
 */
const REPLACE = `${FENCE}
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
for field, seq in pairs(cjson.decode(ARGV[3])) do redis.call('HSET', KEYS[5], field, seq) end
for i = 4, #ARGV, 3 do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
  if ARGV[i + 2] ~= '' then redis.call('ZADD', KEYS[4], ARGV[i + 2], ARGV[i]) end
end
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2]) end
return (#ARGV - 3) / 3
`;

function rethrowFenced(err: unknown): never {
  if (err instanceof Error && err.message.startsWith('FENCED')) throw new FencedError(err.message);
  throw err;
}

export class QuarantineRegistry {
  readonly keys: ReturnType<typeof ledgerKeys>;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = ledgerKeys(prefix);
  }

  async get(target: string): Promise<Lease | undefined> {
    const json = await this.redis.hget(this.keys.leases, target);
    return json === null ? undefined : (JSON.parse(json) as Lease);
  }

  /** Whether the target was ever contained (applied) with the incident among its holders. */
  async everHeld(incidentId: string, target: string): Promise<boolean> {
    return (await this.redis.hexists(this.keys.held, heldField(incidentId, target))) === 1;
  }

  /** How many leases are live (pending or applied): the by-expiry index holds exactly those. */
  /**
   * A release under way: written before the enforcer reverts, removed once the ledger records the
   * end. A crash in between leaves it, so the reconciler finishes that release instead of taking
   * the restored labels for a drift. Not part of the ledger view: `ledgerSeq` ties it to one lease.
   */
  async markReleasing(target: string, intent: ReleaseIntent): Promise<void> {
    await this.redis.hset(this.keys.releasing, target, JSON.stringify(intent));
  }

  async releasing(target: string): Promise<ReleaseIntent | undefined> {
    const json = await this.redis.hget(this.keys.releasing, target);
    if (json === null) return undefined;
    const parsed = ReleaseIntent.safeParse(JSON.parse(json));
    return parsed.success ? parsed.data : undefined;
  }

  async clearReleasing(target: string): Promise<void> {
    await this.redis.hdel(this.keys.releasing, target);
  }

  async liveCount(): Promise<number> {
    return this.redis.zcard(this.keys.byExpiry);
  }

  /** The live (pending or applied) leases. */
  async live(): Promise<Lease[]> {
    const targets = await this.redis.zrange(this.keys.byExpiry, 0, -1);
    if (targets.length === 0) return [];
    const values = await this.redis.hmget(this.keys.leases, ...targets);
    return values.filter((v): v is string => v !== null).map((v) => JSON.parse(v) as Lease);
  }

  /** Every lease, sorted by target. */
  async all(): Promise<Lease[]> {
    const all = await this.redis.hgetall(this.keys.leases);
    return Object.keys(all)
      .sort()
      .map((t) => JSON.parse(all[t]!) as Lease);
  }

  /** Live (pending or applied) leases whose expiry is at or before `at`, soonest first. */
  async dueBy(at: number, limit = 1000): Promise<Lease[]> {
    const targets = await this.redis.zrangebyscore(this.keys.byExpiry, '-inf', at, 'LIMIT', 0, limit);
    if (targets.length === 0) return [];
    const values = await this.redis.hmget(this.keys.leases, ...targets);
    return values.filter((v): v is string => v !== null).map((v) => JSON.parse(v) as Lease);
  }

  /** The last record the view reflects; undefined when the view has none (never built, or wiped). */
  async head(): Promise<StoredHead | undefined> {
    const json = await this.redis.get(this.keys.head);
    if (json === null) return undefined;
    const parsed = StoredHead.safeParse(JSON.parse(json));
    return parsed.success ? parsed.data : undefined;
  }

  /** Applies one record on top of the view, fenced by the writer's lock token. */
  async apply(token: string, record: LedgerRecord, offset: string): Promise<'applied' | 'already' | 'lagging'> {
    const lease = leaseAfter(record);
    const head: StoredHead = { seq: record.seq, hash: record.hash, offset };
    const result = await this.redis
      .eval(
        APPLY,
        5,
        this.keys.lock,
        this.keys.head,
        this.keys.leases,
        this.keys.byExpiry,
        this.keys.held,
        token,
        record.seq,
        JSON.stringify(head),
        lease?.target ?? '',
        lease ? canonicalJson(lease) : '',
        lease && isLive(lease) ? lease.expiresAt : '',
        ...heldFields(lease),
      )
      .catch(rethrowFenced);
    return result === 1 ? 'applied' : result === 0 ? 'already' : 'lagging';
  }

  /** Replaces the whole view (leases, expiry schedule, head) in one atomic step, fenced by the lock token. */
  async replace(token: string, leases: Iterable<Lease>, head: (ChainHead & { offset: string }) | undefined, held: ReadonlyMap<string, number> = new Map()): Promise<void> {
    const headJson = head && head.seq > 0 ? JSON.stringify({ seq: head.seq, hash: head.hash, offset: head.offset }) : '';
    // cjson decodes an empty object and an empty array alike; either is a table with no pairs.
    const args: (string | number)[] = [token, headJson, JSON.stringify(Object.fromEntries(held))];
    for (const lease of leases) args.push(lease.target, canonicalJson(lease), isLive(lease) ? lease.expiresAt : '');
    await this.redis
      .eval(REPLACE, 5, this.keys.lock, this.keys.head, this.keys.leases, this.keys.byExpiry, this.keys.held, ...args)
      .catch(rethrowFenced);
  }
}
