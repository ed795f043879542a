import type { StatusRequest } from '../incidents/lifecycle';

/** A status request waiting for its incident, and when it started waiting. */
export interface Waiting {
  request: StatusRequest;
  since: number;
}

export interface BacklogLimits {
  /** How long a request waits for its incident before it is given up (logged). */
  maxAgeMs: number;
  /** How many requests one partition keeps waiting at most; the oldest go first. */
  maxSize: number;
}

export const BACKLOG_LIMITS: BacklogLimits = { maxAgeMs: 15 * 60_000, maxSize: 10_000 };

/**
 * Status requests for incidents this partition's engine does not hold yet. The lifecycle topic and
 * the evidence topics are read independently: after a restart or a takeover, a request can arrive
 * before the replayed evidence has rebuilt its incident. It waits here (and in the partition's
 * snapshot) and is applied once the incident is back, in the order the requests came.
 */
export class StatusBacklog {
  private waiting: Waiting[];

  constructor(
    saved: readonly Waiting[] = [],
    private readonly limits: BacklogLimits = BACKLOG_LIMITS,
  ) {
    this.waiting = [...saved];
  }

  get size(): number {
    return this.waiting.length;
  }

  /** Keeps a request whose incident is unknown; returns what had to go to make room. */
  add(request: StatusRequest, now: number): Waiting[] {
    this.waiting.push({ request, since: now });
    const over = this.waiting.length - this.limits.maxSize;
    return over > 0 ? this.waiting.splice(0, over) : [];
  }

  /**
   * Offers each waiting request to `apply` in order; keeps those whose incident is still unknown.
   * Returns the requests given up for age.
   */
  retry(apply: (request: StatusRequest) => 'applied' | 'unknown', now: number): Waiting[] {
    if (this.waiting.length === 0) return [];
    const kept: Waiting[] = [];
    const expired: Waiting[] = [];
    for (const w of this.waiting) {
      if (apply(w.request) === 'applied') continue;
      (now - w.since > this.limits.maxAgeMs ? expired : kept).push(w);
    }
    this.waiting = kept;
    return expired;
  }

  /** What the partition's snapshot keeps. */
  toJSON(): Waiting[] {
    return this.waiting;
  }
}
