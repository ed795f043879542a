/**
 * What one delivery attempt came to, from the HTTP answer (or its absence): delivered, worth another
 * attempt (429, 5xx, a timeout, a network error), or refused for good (any other answer: a retry
 * would be refused the same way).
 */
export type Outcome =
  | { kind: 'delivered'; status: number }
  | { kind: 'retry'; status?: number; error: string; retryAfterMs?: number }
  | { kind: 'refused'; status: number; error: string };

export interface Answer {
  status: number;
  body: string;
  headers: Headers;
}

/** The outcome by status alone; `error` names what the receiver said. */
export function httpOutcome(answer: Answer, now: number = Date.now()): Outcome {
  const { status } = answer;
  if (status >= 200 && status < 300) return { kind: 'delivered', status };
  const error = `${status} ${brief(answer.body) || 'no body'}`;
  if (status === 429 || status === 408 || status >= 500) {
    const after = retryAfterMs(answer.headers.get('retry-after'), now);
    return { kind: 'retry', status, error, ...(after !== undefined ? { retryAfterMs: after } : {}) };
  }
  return { kind: 'refused', status, error };
}

/** `Retry-After` as delay-seconds or an HTTP date (RFC 9110 10.2.3), in ms from now. */
export function retryAfterMs(header: string | null, now: number): number | undefined {
  if (header === null) return undefined;
  const value = header.trim();
  if (/^\d{1,9}$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The start of a body, on one line, for the ledger. */
export function brief(body: string): string {
  const line = body.replace(/\s+/g, ' ').trim();
  return line.length <= 200 ? line : `${line.slice(0, 199)}…`;
}
