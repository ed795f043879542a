import type Redis from 'ioredis';
import type { Logger } from '../logger';
import { ledgerKeys } from './registry';

/**
 * The single-writer lock of a ledger chain: `SET <prefix>:ledger:lock <token> NX PX <ttl>`, renewed
 * while the writer lives, checked (and extended) before every append. The token carries a fencing
 * number from `INCR <prefix>:ledger:epoch`, so a newer writer's token is always a different one, and
 * every write to the registry view is refused unless the lock still holds this writer's token.
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

/** Extends the lock when it still holds this token. KEYS: lock. ARGV: token, ttl ms. */
const EXTEND = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

/** Deletes the lock when it still holds this token. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

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

  private constructor(
    private readonly redis: Redis,
    private readonly key: string,
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
          return new WriterLock(redis, keys.lock, token, epoch, ttlMs, options);
        }
      }
      if (Date.now() >= deadline) throw new LedgerLockedError(holder ?? (await redis.get(keys.lock)) ?? 'unknown');
      await new Promise((r) => setTimeout(r, Math.min(250, ttlMs / 4)));
    }
  }

  get held(): boolean {
    return !this.released && this.lostError === undefined;
  }

  /** Confirms the lock is still this writer's and extends it; throws LedgerLockLostError when it is not. */
  async check(): Promise<void> {
    if (this.lostError) throw this.lostError;
    if (this.released) throw new LedgerLockLostError('the ledger writer lock was released');
    const extended = await this.redis.eval(EXTEND, 1, this.key, this.token, this.ttlMs);
    if (extended !== 1) this.lose();
    if (this.lostError) throw this.lostError;
  }

  async release(): Promise<void> {
    clearInterval(this.timer);
    if (this.released) return;
    this.released = true;
    if (this.lostError) return;
    await this.redis.eval(RELEASE, 1, this.key, this.token).catch((err) => this.options.log?.warn({ err }, 'ledger lock release failed'));
  }

  private async renew(): Promise<void> {
    if (!this.held) return;
    try {
      const extended = await this.redis.eval(EXTEND, 1, this.key, this.token, this.ttlMs);
      if (extended !== 1) this.lose();
    } catch (err) {
      // Redis unreachable: the next renewal or check tells whether the lock survived.
      this.options.log?.warn({ err }, 'ledger lock renewal failed');
    }
  }

  private lose(): void {
    if (this.lostError) return;
    clearInterval(this.timer);
    this.lostError = new LedgerLockLostError(`the ledger writer lock (${this.token}) expired or was taken by another writer`);
    this.options.log?.error({ token: this.token }, this.lostError.message);
    this.options.onLost?.(this.lostError);
  }
}
