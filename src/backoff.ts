/**
 * When a failing operation may be tried again, per key: after the n-th failure in a row it waits
 * `initialMs * 2^(n-1)`, capped at `maxMs`; a success forgets the key. Pure: the caller passes the time.
 */
export class Backoff {
  private readonly failing = new Map<string, { failures: number; nextAt: number; error: string }>();

  constructor(
    readonly initialMs: number,
    readonly maxMs: number,
  ) {}

  /** Whether the key may be tried at `now` (it never failed, or its wait is over). */
  ready(key: string, now: number): boolean {
    return (this.failing.get(key)?.nextAt ?? -Infinity) <= now;
  }

  /** Records a failure at `now`; returns how many in a row and how long until the next try. */
  failed(key: string, now: number, error: string): { failures: number; waitMs: number } {
    const failures = (this.failing.get(key)?.failures ?? 0) + 1;
    const waitMs = backoffDelay(failures, this.initialMs, this.maxMs);
    this.failing.set(key, { failures, nextAt: now + waitMs, error });
    return { failures, waitMs };
  }

  succeeded(key: string): void {
    this.failing.delete(key);
  }

  /** The keys failing now, with their failures in a row and the last error. */
  entries(): Array<{ key: string; failures: number; nextAt: number; error: string }> {
    return [...this.failing].map(([key, f]) => ({ key, ...f }));
  }

  /** Forgets every key not in `keep` (e.g. leases that ended some other way). */
  retain(keep: ReadonlySet<string>): void {
    for (const key of this.failing.keys()) if (!keep.has(key)) this.failing.delete(key);
  }
}

/** The wait after the n-th failure in a row (n >= 1): exponential from `initialMs`, capped at `maxMs`. */
export function backoffDelay(failures: number, initialMs: number, maxMs: number): number {
  return Math.min(maxMs, initialMs * 2 ** Math.min(30, Math.max(0, failures - 1)));
}
