/** Retries an async call with exponential backoff and full jitter, while `retriable(err)` says so. */
export interface RetryOptions {
  retries: number;
  initialMs: number;
  maxMs: number;
  retriable?: (err: unknown) => boolean;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** Injected for deterministic tests. */
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

const DEFAULTS: RetryOptions = { retries: 5, initialMs: 100, maxMs: 5_000 };

export async function retry<T>(call: (attempt: number) => Promise<T>, options: Partial<RetryOptions> = {}): Promise<T> {
  const o = { ...DEFAULTS, ...options };
  const random = o.random ?? Math.random;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  for (let attempt = 0; ; attempt++) {
    try {
      return await call(attempt);
    } catch (err) {
      const again = attempt < o.retries && (o.retriable?.(err) ?? true);
      if (!again) throw err;
      const delay = Math.round(random() * Math.min(o.maxMs, o.initialMs * 2 ** attempt));
      o.onRetry?.(err, attempt + 1, delay);
      await sleep(delay);
    }
  }
}
