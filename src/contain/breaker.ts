import type Redis from 'ioredis';
import type { Ledger } from '../ledger/ledger';
import type { Logger } from '../logger';

export interface BreakerLimits {
  /** Live quarantines at most; automatic quarantine stops at the cap. */
  maxConcurrent: number;
  /** More new quarantines than this within `windowMs` is abnormal: the breaker opens. */
  maxNew: number;
  windowMs: number;
  /** Once open, the breaker stays open this long after the rate falls back. */
  coolDownMs: number;
}

export type Admission = { ok: true } | { ok: false; reason: string };

/**
 * Safety rails on automatic quarantine: a cap on concurrent quarantines and a circuit breaker on
 * the rate of new ones. When the breaker opens it says so, once, in the ledger and the log; while
 * open, automatic quarantine stops (people can still approve). It closes by itself after the
 * cool-down, and says that too.
 */
export class CircuitBreaker {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ledger: Ledger,
    private readonly limits: BreakerLimits,
    private readonly log: Logger,
    private readonly liveCount: () => Promise<number>,
  ) {}

  private get keys() {
    return { window: `${this.prefix}:contain:new-quarantines`, open: `${this.prefix}:contain:breaker-open` };
  }

  async admit(now: number): Promise<Admission> {
    const openUntil = Number((await this.redis.get(this.keys.open)) ?? 0);
    if (openUntil > now) return { ok: false, reason: `circuit breaker open until ${new Date(openUntil).toISOString()}: automatic quarantine is stopped` };
    if (openUntil > 0) await this.close(now);
    const live = await this.liveCount();
    if (live >= this.limits.maxConcurrent) return { ok: false, reason: `${live} quarantines are live, the cap is ${this.limits.maxConcurrent}` };
    await this.redis.zremrangebyscore(this.keys.window, '-inf', now - this.limits.windowMs);
    const recent = await this.redis.zcard(this.keys.window);
    if (recent >= this.limits.maxNew) return this.open(now, recent);
    await this.redis.zadd(this.keys.window, now, `${now}-${recent}-${Math.random().toString(36).slice(2, 8)}`);
    return { ok: true };
  }

  private async open(now: number, recent: number): Promise<Admission> {
    const until = now + this.limits.coolDownMs;
    const reason = `${recent} new quarantines within ${this.limits.windowMs / 1000} s (limit ${this.limits.maxNew}): abnormal rate, automatic quarantine stopped until ${new Date(until).toISOString()}`;
    await this.redis.set(this.keys.open, String(until));
    this.log.error({ recent, limit: this.limits.maxNew }, reason);
    await this.ledger.append({ actor: 'service:cordon', action: 'circuit_breaker_opened', target: 'contain', after: { recent, limit: this.limits.maxNew, until }, reason });
    return { ok: false, reason: `circuit breaker opened: ${reason}` };
  }

  private async close(now: number): Promise<void> {
    if ((await this.redis.del(this.keys.open)) === 0) return;
    this.log.warn('circuit breaker closed: automatic quarantine resumes');
    await this.ledger.append({ actor: 'service:cordon', action: 'circuit_breaker_closed', target: 'contain', after: { at: now }, reason: 'cool-down over; automatic quarantine resumes' });
  }
}
