import type Redis from 'ioredis';
import { z } from 'zod';
import { LedgerLockedError, type LedgerLockLostError } from '../ledger/lock';
import { ledgerKeys } from '../ledger/registry';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';

/**
 * Leader election among replicas with containment on. The leader is the replica that holds the
 * ledger's writer lock (lock.ts): its token carries the epoch from INCR, the fencing token every
 * ledger append and enforcer call is checked against. The others are hot standbys: they serve the
 * API and the console, forward decisions to the leader (forward.ts), and campaign for the lock in
 * the background; when the leader is gone (SIGTERM releases the lock at once, a SIGKILL lets it
 * lapse after its TTL), one of them takes over on its own. A leader that finds its lock lost (it
 * was paused or cut off longer than the TTL) steps down and campaigns again.
 */

/** One term of leadership: containment started under the lock, or stopped (releasing it). */
export interface Term {
  /** Starts containment, waiting up to `lockWaitMs` for the lock; LedgerLockedError when another replica holds it. */
  start(lockWaitMs: number): Promise<{ token: string; epoch: number }>;
  /**
   * Stops containment, releasing the lock. `lost`: the lock is gone already, so in-flight jobs are
   * abandoned rather than waited for (they can write nothing now; the new leader runs them again).
   */
  stop(opts?: { lost?: boolean }): Promise<void>;
}

export interface LeadershipDeps {
  redis: Redis;
  prefix: string;
  /** How the other replicas reach this one's API (asked when this replica becomes the leader). */
  url: () => string;
  term: Term;
  /** How long start() waits for the lock before serving as a standby (contain.lockWaitMs). */
  firstWaitMs: number;
  /** How long each background attempt waits for the lock (stop() waits at most this long for a campaign to end). */
  sliceMs?: number;
  /** Pause after a term that failed to start for another reason than a held lock (Kafka down). */
  retryMs?: number;
  metrics?: Metrics;
  log: Logger;
  clock?: () => number;
}

/** The leader as it advertises itself in Redis (`<prefix>:ledger:leader`). */
const LeaderInfo = z.object({ token: z.string().min(1), epoch: z.number().int().positive(), url: z.url(), since: z.number() });
export type LeaderInfo = z.infer<typeof LeaderInfo>;

export type Role = 'leader' | 'standby' | 'stopped';

export interface LeadershipStatus {
  role: Role;
  /** Since when this replica has had its role (epoch ms). */
  since: number;
  /** The epoch of this replica's term, while it leads. */
  epoch?: number;
  token?: string;
  /** Terms this replica took over after waiting as a standby. */
  takeovers: number;
}

export function leaderKey(prefix: string): string {
  return `${prefix}:ledger:leader`;
}

export class Leadership {
  private role: Role = 'stopped';
  private since: number;
  private term: { token: string; epoch: number } | undefined;
  private takeovers = 0;
  private stopping = false;
  private loop: Promise<void> = Promise.resolve();
  private readonly clock: () => number;
  private readonly log: Logger;

  constructor(private readonly deps: LeadershipDeps) {
    this.clock = deps.clock ?? Date.now;
    this.since = this.clock();
    this.log = deps.log.child({ component: 'leadership' });
  }

  /**
   * Tries for the lock (waiting up to firstWaitMs); when another replica holds it, this one is a
   * standby and campaigns in the background. Any other start failure (a playbook refused) throws.
   */
  async start(): Promise<void> {
    this.stopping = false;
    try {
      await this.lead(this.deps.firstWaitMs, false);
    } catch (err) {
      if (!(err instanceof LedgerLockedError)) {
        // A term that failed halfway may hold the lock: stopping it releases it.
        await this.deps.term.stop().catch(() => undefined);
        throw err;
      }
      this.become('standby');
      this.log.info({ holder: err.holder }, 'another replica leads containment: this one is a hot standby');
      this.loop = this.campaign();
    }
  }

  /** The lock was found lost (paused, cut off from Redis): containment stops, and this replica campaigns again. */
  lost(err: LedgerLockLostError): void {
    if (this.role !== 'leader' || this.stopping) return;
    this.log.error({ err: err.message, token: this.term?.token }, 'leadership lost: containment stops; this replica campaigns again');
    this.become('standby');
    this.loop = this.loop.then(async () => {
      await this.deps.term.stop({ lost: true }).catch((e) => this.log.error({ err: e }, 'containment stop after a lost lock failed'));
      await this.campaign();
    });
  }

  /** Stops campaigning and stops containment, releasing the lock at once (SIGTERM: a standby takes over). */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.loop;
    const led = this.role === 'leader';
    this.become('stopped');
    if (led) await this.deps.term.stop();
    await this.deps.redis.eval(FORGET, 1, leaderKey(this.deps.prefix), this.term?.token ?? '').catch(() => undefined);
  }

  status(): LeadershipStatus {
    return { role: this.role, since: this.since, takeovers: this.takeovers, ...(this.role === 'leader' && this.term ? { epoch: this.term.epoch, token: this.term.token } : {}) };
  }

  get leading(): boolean {
    return this.role === 'leader';
  }

  /** The leader now: its advertisement, when the lock still holds the advertised token; undefined when none leads. */
  async leader(): Promise<LeaderInfo | undefined> {
    const [raw, holder] = await this.deps.redis.mget(leaderKey(this.deps.prefix), ledgerKeys(this.deps.prefix).lock);
    if (!raw || !holder) return undefined;
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      return undefined;
    }
    const info = LeaderInfo.safeParse(json);
    return info.success && info.data.token === holder ? info.data : undefined;
  }

  private async campaign(): Promise<void> {
    const slice = this.deps.sliceMs ?? 1_000;
    while (!this.stopping) {
      try {
        await this.lead(slice, true);
        return;
      } catch (err) {
        if (err instanceof LedgerLockedError) continue;
        this.log.error({ err }, 'containment could not start as the leader; tried again');
        await this.deps.term.stop().catch(() => undefined);
        await sleep(this.deps.retryMs ?? 2_000);
      }
    }
  }

  private async lead(waitMs: number, takeover: boolean): Promise<void> {
    const term = await this.deps.term.start(waitMs);
    if (this.stopping) {
      await this.deps.term.stop();
      return;
    }
    this.term = term;
    if (takeover) {
      this.takeovers += 1;
      this.deps.metrics?.leaderTakeovers.inc();
    }
    this.become('leader');
    const info: LeaderInfo = { token: term.token, epoch: term.epoch, url: this.deps.url(), since: this.since };
    await this.deps.redis.set(leaderKey(this.deps.prefix), JSON.stringify(info));
    this.log.info({ token: term.token, epoch: term.epoch, takeover }, 'this replica leads containment');
  }

  private become(role: Role): void {
    this.role = role;
    this.since = this.clock();
    this.deps.metrics?.leader.set(role === 'leader' ? 1 : 0);
    this.deps.metrics?.leaderSince.set(this.since / 1000);
  }
}

/** Deletes the advertisement when it is still this replica's. */
const FORGET = `
local raw = redis.call('GET', KEYS[1])
if raw and ARGV[1] ~= '' and string.find(raw, ARGV[1], 1, true) then return redis.call('DEL', KEYS[1]) end
return 0
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
