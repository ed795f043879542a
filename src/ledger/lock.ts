import type Redis from 'ioredis';
import type { Logger } from '../logger';
import { ledgerKeys } from './registry';

/**
 * The single-writer lock of a ledger chain: `SET <prefix>:ledger:lock <token> NX PX <ttl>`, renewed
 * while the writer lives, checked (and extended) before every append. The token carries a fencing
 * number from `INCR <prefix>:ledger:epoch`, so a newer writer's token is always a different one, and
 * every write to the registry view is refused unless the lock still holds this writer's token.
 * A lock that lapsed while Redis was unreachable is taken back when Redis answers again, if no
 * other writer took it meanwhile (the epoch did not move); otherwise the writer has lost it.
 */

export class LedgerLockedError extends Error {
  override name = 'LedgerLockedError';
  constructor(readonly holder: string) {
    super(`the ledger is held by another writer (${holder}); one writer per chain: stop it, or wait for its lock to expire`);
  }
}

export class LedgerLockLostError extends Error {
  override name = 'LedgerLockLostError';
}

/**
 * Extends the lock when it still holds this token (1). A lock that lapsed (an outage longer than
 * the TTL kept the writer from renewing it) is taken again with the same token only when nobody
 * took it meanwhile: the key is absent and the epoch is still this writer's, since every other
 * acquisition increments it (2). Anything else: lost (0). KEYS: lock, epoch. ARGV: token, ttl ms, epoch.
 */
const RENEW = `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if holder == false and redis.call('GET', KEYS[2]) == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
`;

/** Deletes the lock when it still holds this token. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/** Raises the epoch counter to ARGV[1] when it is lower (never lowers it). KEYS: epoch. */
const RAISE = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) return 1 end
return 0
`;

/**
 * Makes the next acquisition's epoch higher than `epoch` (one the ledger recorded). After Redis lost
 * its data the counter starts again at 1, below the epochs the ledger and the enforcement layer
 * (a pod's cordon.io/writer-epoch) have seen; raised past them, a new leader's fence is the newest.
 */
export async function raiseEpoch(redis: Redis, prefix: string, epoch: number): Promise<boolean> {
  return (await redis.eval(RAISE, 1, ledgerKeys(prefix).epoch, epoch)) === 1;
}

export interface WriterLockOptions {
  /** How long the lock lives without renewal (default 15 s). */
  ttlMs?: number;
  /** How long to wait for a held lock before refusing (default 0: refuse at once). */
  waitMs?: number;
  log?: Logger;
  /** Called once when a renewal finds the lock gone or taken. */
  onLost?: (err: LedgerLockLostError) => void;
}

export class WriterLock {
  private lostError: LedgerLockLostError | undefined;
  private released = false;
  private readonly timer: NodeJS.Timeout;
  /** Since when, and why, the lock could not be confirmed (Redis unreachable); undefined while confirmed. */
  private unconfirmed_: { since: number; error: string } | undefined;

  private constructor(
    private readonly redis: Redis,
    private readonly keys: { lock: string; epoch: string },
    /** `<owner>#<epoch>`: unique per acquisition; the epoch orders writers. */
    readonly token: string,
    readonly epoch: number,
    private readonly ttlMs: number,
    private readonly options: WriterLockOptions,
  ) {
    this.timer = setInterval(() => void this.renew(), Math.max(100, Math.floor(ttlMs / 3)));
    this.timer.unref();
  }

  static async acquire(redis: Redis, prefix: string, owner: string, options: WriterLockOptions = {}): Promise<WriterLock> {
    const keys = ledgerKeys(prefix);
    const ttlMs = options.ttlMs ?? 15_000;
    const deadline = Date.now() + (options.waitMs ?? 0);
    for (;;) {
      const holder = await redis.get(keys.lock);
      if (holder === null) {
        const epoch = await redis.incr(keys.epoch);
        const token = `${owner}#${epoch}`;
        if ((await redis.set(keys.lock, token, 'PX', ttlMs, 'NX')) === 'OK') {
          return new WriterLock(redis, keys, token, epoch, ttlMs, options);
        }
      }
      if (Date.now() >= deadline) throw new LedgerLockedError(holder ?? (await redis.get(keys.lock)) ?? 'unknown');
      await new Promise((r) => setTimeout(r, Math.min(250, ttlMs / 4)));
    }
  }

  get held(): boolean {
    return !this.released && this.lostError === undefined;
  }

  /** Why this writer cannot count on the lock now, or undefined when it can. */
  get trouble(): string | undefined {
    if (this.lostError) return this.lostError.message;
    if (this.released) return 'the ledger writer lock was released';
    const u = this.unconfirmed_;
    if (u) return `the ledger writer lock could not be renewed since ${new Date(u.since).toISOString()} (${u.error}); appends wait until Redis answers`;
    return undefined;
  }

  /** Confirms the lock is still this writer's (taking a lapsed one back) and extends it; throws LedgerLockLostError when it is not. */
  async check(): Promise<void> {
    if (this.lostError) throw this.lostError;
    if (this.released) throw new LedgerLockLostError('the ledger writer lock was released');
    await this.renewOnce();
    if (this.lostError) throw this.lostError;
  }

  async release(): Promise<void> {
    clearInterval(this.timer);
    if (this.released) return;
    this.released = true;
    if (this.lostError) return;
    await this.redis.eval(RELEASE, 1, this.keys.lock, this.token).catch((err) => this.options.log?.warn({ err }, 'ledger lock release failed'));
  }

  private async renew(): Promise<void> {
    if (!this.held) return;
    // Redis unreachable: the next renewal or check tells whether the lock survived.
    await this.renewOnce().catch((err) => this.options.log?.warn({ err }, 'ledger lock renewal failed'));
  }

  /** One renewal; a Redis error marks the lock unconfirmed and is thrown. */
  private async renewOnce(): Promise<void> {
    let outcome: unknown;
    try {
      outcome = await this.redis.eval(RENEW, 2, this.keys.lock, this.keys.epoch, this.token, this.ttlMs, this.epoch);
    } catch (err) {
      this.unconfirmed_ ??= { since: Date.now(), error: (err as Error).message };
      throw err;
    }
    const outage = this.unconfirmed_;
    this.unconfirmed_ = undefined;
    if (outcome === 0) return this.lose();
    if (outcome === 2) this.options.log?.warn({ token: this.token, since: outage && new Date(outage.since).toISOString() }, 'ledger writer lock had lapsed and nobody took it: taken back');
  }

  private lose(): void {
    if (this.lostError) return;
    clearInterval(this.timer);
    this.lostError = new LedgerLockLostError(`the ledger writer lock (${this.token}) expired or was taken by another writer`);
    this.options.log?.error({ token: this.token }, this.lostError.message);
    this.options.onLost?.(this.lostError);
  }
}
