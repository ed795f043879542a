import { retry } from '../src/retry';

describe('retry', () => {
  const noSleep = { sleep: async () => {}, random: () => 1 };

  it('retries until the call succeeds, with growing delays', async () => {
    const delays: number[] = [];
    let calls = 0;
    const result = await retry(
      async () => {
        calls++;
        if (calls < 4) throw new Error('flaky');
        return 'ok';
      },
      { ...noSleep, initialMs: 10, maxMs: 1000, onRetry: (_e, _a, d) => delays.push(d) },
    );
    expect(result).toBe('ok');
    expect(delays).toEqual([10, 20, 40]);
  });

  it('gives up after the retries and rethrows the last error', async () => {
    let calls = 0;
    await expect(retry(async () => { calls++; throw new Error(`fail ${calls}`); }, { ...noSleep, retries: 2 })).rejects.toThrow('fail 3');
  });

  it('does not retry what is not retriable', async () => {
    let calls = 0;
    const err = Object.assign(new Error('403'), { retriable: false });
    await expect(
      retry(async () => { calls++; throw err; }, { ...noSleep, retriable: (e) => (e as { retriable?: boolean }).retriable !== false }),
    ).rejects.toBe(err);
    expect(calls).toBe(1);
  });
});
