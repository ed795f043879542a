import Redis from 'ioredis';
import type { CordonEvent } from '../../src/events';
import { FlowHistory, HOUR_MS, flowKey } from '../../src/flows/history';
import { FlowRecorder } from '../../src/flows/recorder';
import { REDIS_URL, uniq } from '../support/stack';

const T0 = Date.UTC(2026, 10, 23, 10, 15);

function flow(src: string, dst: string, port: number): CordonEvent {
  return { id: uniq('f'), time: T0, src: { ip: src }, dst: { ip: dst }, protocol: 'tcp', dstPort: port, action: 'denied', observer: { type: 'test', name: 'test' } } as CordonEvent;
}

describe('flow recorder (real Redis)', () => {
  const redis = new Redis(REDIS_URL);
  const prefix = uniq('flow-recorder');
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  it('sums many batches into one write, and writes what it holds when the hour turns', async () => {
    let now = T0;
    const recorder = new FlowRecorder(new FlowHistory(redis, prefix, { clock: () => now }), 60_000);
    const hour = Math.floor(T0 / HOUR_MS);
    recorder.add([flow('10.0.0.1', '10.0.0.2', 445)]);
    recorder.add([flow('10.0.0.1', '10.0.0.2', 445), flow('10.0.0.1', '10.0.0.3', 22)]);
    expect(await redis.exists(flowKey(prefix, 'ip:10.0.0.1', hour))).toBe(0);
    now = T0 + HOUR_MS;
    recorder.add([flow('10.0.0.1', '10.0.0.2', 445)]);
    await recorder.flush();
    expect(await redis.hgetall(flowKey(prefix, 'ip:10.0.0.1', hour))).toEqual({ 'out|ip:10.0.0.2|445/tcp|denied': '2', 'out|ip:10.0.0.3|22/tcp|denied': '1' });
    expect(await redis.hgetall(flowKey(prefix, 'ip:10.0.0.2', hour + 1))).toEqual({ 'in|ip:10.0.0.1|445/tcp|denied': '1' });
  });

  it('writes on its own once the interval has passed', async () => {
    const recorder = new FlowRecorder(new FlowHistory(redis, prefix, { clock: () => T0 + 5 * HOUR_MS }), 50);
    recorder.add([flow('10.9.0.1', '10.9.0.2', 3389)]);
    const key = flowKey(prefix, 'ip:10.9.0.1', Math.floor(T0 / HOUR_MS) + 5);
    for (let i = 0; i < 50 && (await redis.exists(key)) === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await redis.hget(key, 'out|ip:10.9.0.2|3389/tcp|denied')).toBe('1');
  });

  it('spreads an entity with more fields than one command takes over several, losing none', async () => {
    const history = new FlowHistory(redis, prefix, { clock: () => T0, maxPerHour: 10_000 });
    const fields = new Map(Array.from({ length: 9_000 }, (_, i) => [`f${i}`, i + 1] as const));
    await history.write(new Map([['ip:10.8.0.1', fields]]), 7);
    const stored = await redis.hgetall(flowKey(prefix, 'ip:10.8.0.1', 7));
    expect(Object.keys(stored)).toHaveLength(9_000);
    expect(stored.f8999).toBe('9000');
    expect(await redis.ttl(flowKey(prefix, 'ip:10.8.0.1', 7))).toBeGreaterThan(0);
  });
});
