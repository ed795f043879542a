import type Redis from 'ioredis';

/**
 * A durable outbox in Redis: writers append, one flusher per process takes a batch at a time, and
 * nothing leaves Redis until the far side has it.
 *
 *   <base>:outbox              list, oldest first: items waiting to be written
 *   <base>:inflight:<consumer> list: the batch a flusher took and has not yet confirmed
 *   <base>:heartbeat:<consumer> string with a TTL: the flusher is alive
 *   <base>:failed              list: items the far side refused for good, with the reason
 *
 * A flusher retries its own in-flight batch before taking a new one, so a failed write is retried
 * until it goes through. A flusher that dies leaves its in-flight list behind; once its heartbeat
 * expires, any other flusher (or the same process restarted under a new name) moves that batch back
 * to the head of the outbox. Items are therefore delivered at least once; the writer makes each
 * write idempotent (document ids, external versions, `create`), which makes the effect exactly once.
 *
 * Each multi-key step is one Lua script, so a crash between two commands never loses or duplicates
 * an item in Redis. (Redis itself needs AOF, `appendfsync everysec` or stricter, to survive a restart.)
 */

/** Take: up to ARGV[1] of the own in-flight items if there are any (a retry), else up to ARGV[1] new ones. */
const TAKE = `
local n = tonumber(ARGV[1])
local inflight = redis.call('LRANGE', KEYS[2], 0, n - 1)
if #inflight > 0 then return inflight end
local items = redis.call('LRANGE', KEYS[1], 0, n - 1)
if #items == 0 then return items end
redis.call('LTRIM', KEYS[1], #items, -1)
for i = 1, #items do redis.call('RPUSH', KEYS[2], items[i]) end
return items
`;

/**
 * Settle the first ARGV[1] in-flight items (the batch taken): those to retry (ARGV[2] of them) go
 * back to the head of the in-flight list, the failed entries to the failed list (trimmed to
 * ARGV[3]), and the rest, written, are dropped.
 */
const SETTLE = `
local taken = tonumber(ARGV[1])
local keep = tonumber(ARGV[2])
local maxFailed = tonumber(ARGV[3])
redis.call('LTRIM', KEYS[1], taken, -1)
for i = 3 + keep, 4, -1 do redis.call('LPUSH', KEYS[1], ARGV[i]) end
local failed = 0
for i = 4 + keep, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]); failed = failed + 1 end
if failed > 0 then redis.call('LTRIM', KEYS[2], -maxFailed, -1) end
return failed
`;

/** Return a gone consumer's in-flight batch to the head of the outbox, in order, unless it is alive. */
const RECLAIM = `
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local items = redis.call('LRANGE', KEYS[2], 0, -1)
for i = #items, 1, -1 do redis.call('LPUSH', KEYS[1], items[i]) end
redis.call('DEL', KEYS[2])
return #items
`;

/** Move failed entries' items back to the outbox (after the cause was fixed). */
const REQUEUE = `
local n = 0
while true do
  local entry = redis.call('LPOP', KEYS[2])
  if not entry then break end
  local ok, decoded = pcall(cjson.decode, entry)
  if ok and decoded['item'] then
    redis.call('RPUSH', KEYS[1], decoded['item'])
    n = n + 1
  end
end
return n
`;

export interface FailedEntry {
  /** The item as it was queued (JSON text). */
  item: string;
  reason: string;
  status?: number;
  at: string;
}

export class Outbox {
  readonly keys: { outbox: string; inflight: string; heartbeat: string; failed: string };

  constructor(
    private readonly redis: Redis,
    private readonly base: string,
    readonly consumer: string,
    private readonly opts: { maxFailed: number; heartbeatTtlMs: number },
  ) {
    if (!/^[A-Za-z0-9._-]+$/.test(consumer)) throw new Error(`outbox consumer name must be [A-Za-z0-9._-]: ${consumer}`);
    this.keys = {
      outbox: `${base}:outbox`,
      inflight: `${base}:inflight:${consumer}`,
      heartbeat: `${base}:heartbeat:${consumer}`,
      failed: `${base}:failed`,
    };
  }

  /** Appends items; resolves once Redis has them. */
  async append(items: readonly string[]): Promise<void> {
    if (items.length === 0) return;
    await this.redis.rpush(this.keys.outbox, ...items);
  }

  async take(max: number): Promise<string[]> {
    return (await this.redis.eval(TAKE, 2, this.keys.outbox, this.keys.inflight, max)) as string[];
  }

  /** Confirms the `taken` items of the in-flight batch: keep `retry` in flight, record `failed`, drop the rest. */
  async settle(taken: number, retry: readonly string[], failed: readonly FailedEntry[]): Promise<void> {
    await this.redis.eval(
      SETTLE,
      2,
      this.keys.inflight,
      this.keys.failed,
      taken,
      retry.length,
      this.opts.maxFailed,
      ...retry,
      ...failed.map((f) => JSON.stringify(f)),
    );
  }

  async beat(): Promise<void> {
    await this.redis.set(this.keys.heartbeat, String(Date.now()), 'PX', this.opts.heartbeatTtlMs);
  }

  async retire(): Promise<void> {
    await this.redis.del(this.keys.heartbeat);
  }

  /** Moves the in-flight batches of consumers whose heartbeat expired back to the outbox. */
  async reclaimOrphans(): Promise<number> {
    let moved = 0;
    const prefix = `${this.base}:inflight:`;
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 200);
      cursor = next;
      for (const key of keys) {
        if (key === this.keys.inflight) continue;
        const consumer = key.slice(prefix.length);
        moved += (await this.redis.eval(RECLAIM, 3, this.keys.outbox, key, `${this.base}:heartbeat:${consumer}`)) as number;
      }
    } while (cursor !== '0');
    return moved;
  }

  /** Items not yet written: waiting in the outbox plus this consumer's in-flight batch. */
  async pending(): Promise<number> {
    const [[, waiting], [, inflight]] = (await this.redis
      .multi()
      .llen(this.keys.outbox)
      .llen(this.keys.inflight)
      .exec()) as [[null, number], [null, number]];
    return waiting + inflight;
  }

  async failed(limit = 100): Promise<FailedEntry[]> {
    const rows = await this.redis.lrange(this.keys.failed, -limit, -1);
    return rows.map((r) => JSON.parse(r) as FailedEntry);
  }

  async requeueFailed(): Promise<number> {
    return (await this.redis.eval(REQUEUE, 2, this.keys.outbox, this.keys.failed)) as number;
  }
}
