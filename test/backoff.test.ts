import { Backoff, backoffDelay } from '../src/backoff';

describe('backoff', () => {
  it('doubles from the first wait per failure in a row, capped', () => {
    expect([1, 2, 3, 4, 5, 6, 40].map((n) => backoffDelay(n, 1_000, 10_000))).toEqual([1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000]);
  });

  it('a key waits after each failure, a success forgets it, and keys not kept are forgotten', () => {
    const b = new Backoff(100, 1_000);
    expect(b.ready('a', 0)).toBe(true);
    expect(b.failed('a', 0, 'refused')).toEqual({ failures: 1, waitMs: 100 });
    expect(b.ready('a', 99)).toBe(false);
    expect(b.ready('a', 100)).toBe(true);
    expect(b.failed('a', 100, 'refused again')).toEqual({ failures: 2, waitMs: 200 });
    expect(b.ready('a', 299)).toBe(false);
    expect(b.ready('b', 0)).toBe(true);
    b.failed('b', 0, 'x');
    expect(b.entries().map((e) => [e.key, e.failures, e.error])).toEqual([['a', 2, 'refused again'], ['b', 1, 'x']]);
    b.succeeded('a');
    expect(b.ready('a', 0)).toBe(true);
    b.retain(new Set());
    expect(b.entries()).toEqual([]);
  });
});
