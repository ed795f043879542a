import type Redis from 'ioredis';
import type { Ledger } from '../ledger/ledger';
import { ledgerKeys } from '../ledger/registry';
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

/** A playbook's own rails (`safety.max_concurrent_quarantines`, `safety.circuit_breaker`). */
export interface PlaybookLimits {
  /** The playbook's name: its limits hold across its versions. */
  playbook: string;
  maxConcurrent: number;
  maxNew: number;
  windowMs: number;
  /** The window as the playbook wrote it (`10m`), for reasons. */
  per: string;
}

/** One quarantine asking to be applied: for which incident, on which target, approved by a person or not. */
export interface AdmitRequest {
  incidentId: string;
  target: string;
  approved: boolean;
  limits: PlaybookLimits;
}

export type Admission = { ok: true } | { ok: false; reason: string };

/**
 * How long a quarantine admitted but not yet in the registry (its pending record not written yet)
 * still counts for its playbook.
 */
const IN_FLIGHT_MS = 60_000;

/**
 * Checks and counts one quarantine atomically, so concurrent jobs never pass a cap together.
 * KEYS: service open-until, service window, playbook holds, playbook window, leases, leases by
 * expiry, held (the registry's "<incident> <target>" fields of every hold that was ever applied).
 * ARGV: now, approved (1/0), hold ("<incident> <target>"), service max concurrent, service max new,
 * service window ms, cool-down ms, playbook max concurrent, playbook max new, playbook window ms,
 * in-flight ms, nonce.
 * A playbook hold counts while its lease is live with that incident among the holders, or while it
 * is in flight (admitted, never applied, for IN_FLIGHT_MS at most). The holds kept are at least
 * those, so they are checked one by one (and the others dropped) only once there are as many as
 * the cap: below it, admitting costs O(1) whatever the number of live quarantines.
 * Returns {verdict, count, closed (1: an expired open state was cleared), until}.
 */
const ADMIT = `
local now = tonumber(ARGV[1])
local held = redis.call('ZCARD', KEYS[3])
if held >= tonumber(ARGV[8]) then
  held = 0
  local holds = redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES')
  for i = 1, #holds, 2 do
    local hold = holds[i]
    local sep = string.find(hold, ' ', 1, true)
    local incident = string.sub(hold, 1, sep - 1)
    local target = string.sub(hold, sep + 1)
    local live = false
    if redis.call('ZSCORE', KEYS[6], target) then
      local json = redis.call('HGET', KEYS[5], target)
      if json then
        for _, h in ipairs(cjson.decode(json)['holders']) do if h == incident then live = true end end
      end
    end
    local inFlight = not live and redis.call('HEXISTS', KEYS[7], hold) == 0 and tonumber(holds[i + 1]) > now - tonumber(ARGV[11])
    if live or inFlight then held = held + 1 else redis.call('ZREM', KEYS[3], hold) end
  end
end
if ARGV[2] == '1' then
  redis.call('ZADD', KEYS[3], 'NX', now, ARGV[3])
  return {'ok', held, 0, 0}
end
if redis.call('ZSCORE', KEYS[3], ARGV[3]) then return {'ok', held, 0, 0} end
local closed = 0
local openUntil = tonumber(redis.call('GET', KEYS[1]) or '0')
if openUntil > now then return {'open', 0, 0, openUntil} end
if openUntil > 0 then closed = redis.call('DEL', KEYS[1]) end
local live = redis.call('ZCARD', KEYS[6])
if live >= tonumber(ARGV[4]) then return {'full', live, closed, 0} end
if held >= tonumber(ARGV[8]) then return {'playbook-full', held, closed, 0} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[6]))
local recent = redis.call('ZCARD', KEYS[2])
if recent >= tonumber(ARGV[5]) then
  local untilMs = now + tonumber(ARGV[7])
  redis.call('SET', KEYS[1], tostring(untilMs))
  return {'opened', recent, closed, untilMs}
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[10]))
local own = redis.call('ZCARD', KEYS[4])
if own >= tonumber(ARGV[9]) then return {'playbook-tripped', own, closed, 0} end
redis.call('ZADD', KEYS[2], now, ARGV[12])
redis.call('ZADD', KEYS[4], now, ARGV[12])
redis.call('ZADD', KEYS[3], now, ARGV[3])
return {'ok', held + 1, closed, 0}
`;

type Verdict = 'ok' | 'open' | 'full' | 'playbook-full' | 'opened' | 'playbook-tripped';

/**
 * Safety rails on automatic quarantine, checked when each quarantine is about to be applied:
 * the service's cap on live quarantines and circuit breaker on the rate of new ones
 * (contain.breaker), and each playbook's `max_concurrent_quarantines` (live quarantines its runs
 * hold) and `circuit_breaker` (new quarantines it made within the window). A quarantine a person
 * approved passes them all and only counts toward its playbook's live quarantines. When the
 * service breaker opens it says so, once, in the ledger and the log; it closes by itself after the
 * cool-down, and says that too.
 */
export class CircuitBreaker {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ledger: Ledger,
    private readonly limits: BreakerLimits,
    private readonly log: Logger,
  ) {}

  private keys(playbook: string) {
    const own = `${this.prefix}:contain:playbook:${playbook}`;
    const registry = ledgerKeys(this.prefix);
    return [`${this.prefix}:contain:breaker-open`, `${this.prefix}:contain:new-quarantines`, `${own}:holds`, `${own}:new-quarantines`, registry.leases, registry.byExpiry, registry.held];
  }

  async admit(now: number, req: AdmitRequest): Promise<Admission> {
    const l = req.limits;
    const [verdict, count, closed, until] = (await this.redis.eval(
      ADMIT,
      7,
      ...this.keys(l.playbook),
      now,
      req.approved ? '1' : '0',
      `${req.incidentId} ${req.target}`,
      this.limits.maxConcurrent,
      this.limits.maxNew,
      this.limits.windowMs,
      this.limits.coolDownMs,
      l.maxConcurrent,
      l.maxNew,
      l.windowMs,
      IN_FLIGHT_MS,
      `${now}-${Math.random().toString(36).slice(2, 10)}`,
    )) as [Verdict, number, number, number];
    if (closed === 1) await this.closed(now);
    switch (verdict) {
      case 'ok':
        return { ok: true };
      case 'open':
        return { ok: false, reason: `service circuit breaker tripped: open until ${new Date(until).toISOString()}` };
      case 'full':
        return { ok: false, reason: `service cap reached: ${count} quarantines live (contain.breaker.maxConcurrent ${this.limits.maxConcurrent})` };
      case 'playbook-full':
        return { ok: false, reason: `max_concurrent_quarantines ${l.maxConcurrent} reached: ${count} live quarantines of playbook ${l.playbook}` };
      case 'opened':
        return this.opened(count, until);
      case 'playbook-tripped':
        return { ok: false, reason: `circuit breaker tripped: ${count} quarantines in ${l.per} (playbook ${l.playbook}, circuit_breaker ${l.maxNew} per ${l.per})` };
    }
  }

  /** A quarantine admitted that will not be applied (refused by its layer): it no longer counts for its playbook. */
  async forget(req: AdmitRequest): Promise<void> {
    await this.redis.zrem(this.keys(req.limits.playbook)[2]!, `${req.incidentId} ${req.target}`);
  }

  private async opened(recent: number, until: number): Promise<Admission> {
    const reason = `${recent} new quarantines within ${this.limits.windowMs / 1000} s (limit ${this.limits.maxNew}): abnormal rate, automatic quarantine stopped until ${new Date(until).toISOString()}`;
    this.log.error({ recent, limit: this.limits.maxNew }, reason);
    await this.ledger.append({ actor: 'service:cordon', action: 'circuit_breaker_opened', target: 'contain', after: { recent, limit: this.limits.maxNew, until }, reason });
    return { ok: false, reason: `service circuit breaker tripped: ${reason}` };
  }

  private async closed(now: number): Promise<void> {
    this.log.warn('circuit breaker closed: automatic quarantine resumes');
    await this.ledger.append({ actor: 'service:cordon', action: 'circuit_breaker_closed', target: 'contain', after: { at: now }, reason: 'cool-down over; automatic quarantine resumes' });
  }
}
