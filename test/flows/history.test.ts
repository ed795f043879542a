import Redis from 'ioredis';
import type { CordonEvent } from '../../src/events';
import { decodeField, encodeField, FlowHistory, HOUR_MS, tally } from '../../src/flows/history';
import { REDIS_URL, testLog, uniq } from '../support/stack';

const T0 = Date.UTC(2026, 10, 23, 10, 15);

function flow(src: string, dst: string, port: number, action: 'allowed' | 'denied', protocol: 'tcp' | 'udp' = 'tcp'): CordonEvent {
  return {
    id: uniq('f'),
    time: T0,
    src: { ip: src },
    dst: { ip: dst },
    protocol,
    dstPort: port,
    action,
    observer: { type: 'test', name: 'test' },
  } as CordonEvent;
}

describe('flow history (real Redis)', () => {
  const redis = new Redis(REDIS_URL);
  const prefix = uniq('flows');
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  it('encodes and decodes fields, a peer holding "|" included', () => {
    const field = encodeField('out', 'pod:ns/we|ird', 445, 'tcp', 'denied');
    expect(decodeField(field)).toEqual({ direction: 'out', peer: 'pod:ns/we|ird', port: 445, protocol: 'tcp', verdict: 'denied' });
    expect(decodeField('sideways|x|1/tcp|allowed')).toBeUndefined();
    expect(decodeField('garbage')).toBeUndefined();
  });

  it('counts both sides of each flow and ignores anomalies', () => {
    const anomaly = { id: 'a', time: T0, entity: { ip: '10.0.0.1' }, kind: 'rare_port', score: 0.5, detector: 'x' } as CordonEvent;
    const t = tally([flow('10.0.0.1', '10.0.0.2', 445, 'denied'), flow('10.0.0.1', '10.0.0.2', 445, 'denied'), anomaly]);
    expect([...t.keys()].sort()).toEqual(['ip:10.0.0.1', 'ip:10.0.0.2']);
    expect(Object.fromEntries(t.get('ip:10.0.0.1')!)).toEqual({ 'out|ip:10.0.0.2|445/tcp|denied': 2 });
    expect(Object.fromEntries(t.get('ip:10.0.0.2')!)).toEqual({ 'in|ip:10.0.0.1|445/tcp|denied': 2 });
  });

  it('sums the hours asked for, per direction, peer, port and verdict; older hours are left out; keys expire', async () => {
    let now = T0 - 3 * HOUR_MS;
    const history = new FlowHistory(redis, prefix, { clock: () => now, log: testLog });
    await history.record([flow('10.0.0.1', '10.0.0.9', 22, 'allowed')]); // three hours ago
    now = T0 - HOUR_MS;
    await history.record([flow('10.0.0.1', '10.0.0.2', 445, 'allowed'), flow('10.0.0.1', '10.0.0.2', 445, 'allowed'), flow('10.0.0.3', '10.0.0.1', 3389, 'denied')]);
    now = T0;
    await history.record([flow('10.0.0.1', '10.0.0.2', 445, 'allowed'), flow('10.0.0.1', '10.0.0.5', 53, 'allowed', 'udp')]);

    const impact = await history.impact('ip:10.0.0.1', T0 - 2 * HOUR_MS);
    expect(impact.flows.map((f) => [f.direction, f.peer, `${f.port}/${f.protocol}`, f.verdict, f.count])).toEqual([
      ['out', 'ip:10.0.0.2', '445/tcp', 'allowed', 3],
      ['in', 'ip:10.0.0.3', '3389/tcp', 'denied', 1],
      ['out', 'ip:10.0.0.5', '53/udp', 'allowed', 1],
    ]);
    expect(impact.flows[0]!.lastSeen).toBe(Math.floor(T0 / HOUR_MS) * HOUR_MS);
    expect(impact.totals).toEqual({ allowed: 4, denied: 1, in: 1, out: 4, peers: 3 });
    expect(impact.truncated).toBe(0);

    const wider = await history.impact('ip:10.0.0.1', T0 - 4 * HOUR_MS, { limit: 2 });
    expect(wider.flows).toHaveLength(2);
    expect(wider.truncated).toBe(2);
    expect(wider.totals.allowed).toBe(5);

    const ttl = await redis.ttl(`${prefix}:flows:ip:10.0.0.1:${Math.floor(T0 / HOUR_MS)}`);
    expect(ttl).toBeGreaterThan(25 * 3600);
    expect(ttl).toBeLessThanOrEqual(26 * 3600);
  });

  it('sums in the flows seen under an alias (the address of a workload a sensor saw only by IP)', async () => {
    const history = new FlowHistory(redis, prefix, { clock: () => T0 });
    const workload = { kind: 'host', id: 'ws5', name: 'WS5', labels: {} } as const;
    const byName = { ...(flow('10.1.0.5', '10.1.0.6', 445, 'allowed') as object), src: { ip: '10.1.0.5', workload } } as CordonEvent;
    await history.record([byName, flow('10.1.0.5', '10.1.0.6', 50115, 'denied')]);
    const alone = await history.impact('host:ws5', T0 - HOUR_MS);
    expect(alone.totals).toMatchObject({ allowed: 1, denied: 0 });
    const merged = await history.impact('host:ws5', T0 - HOUR_MS, { aliases: ['ip:10.1.0.5', 'host:ws5'] });
    expect(merged.entity).toBe('host:ws5');
    expect(merged.flows.map((f) => [f.peer, f.port, f.verdict, f.count])).toEqual([
      ['ip:10.1.0.6', 445, 'allowed', 1],
      ['ip:10.1.0.6', 50115, 'denied', 1],
    ]);
  });

  it('an entity nothing talked to has an empty impact', async () => {
    const history = new FlowHistory(redis, prefix, { clock: () => T0 });
    const impact = await history.impact('ip:192.0.2.1', T0 - 6 * HOUR_MS);
    expect(impact.flows).toEqual([]);
    expect(impact.totals).toEqual({ allowed: 0, denied: 0, in: 0, out: 0, peers: 0 });
  });

  it('a Redis failure while recording is logged, not thrown (the correlator batch goes on)', async () => {
    const broken = new Redis('redis://127.0.0.1:1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
    const warnings: unknown[] = [];
    const log = { warn: (o: unknown) => warnings.push(o) } as unknown as typeof testLog;
    const history = new FlowHistory(broken, prefix, { log });
    await expect(history.record([flow('10.0.0.1', '10.0.0.2', 445, 'allowed')])).resolves.toBeUndefined();
    expect(warnings).toHaveLength(1);
    broken.disconnect();
  });
});
