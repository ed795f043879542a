import type { Outcome, StreamContext } from '../../src/normalize/normalizer';
import { normalizeRecord } from '../../src/normalize/registry';

const ctx = (): StreamContext => ({ state: new Map() });
const norm = (value: unknown): Outcome => normalizeRecord(JSON.stringify(value), 'cordon', ctx());

function eventsOf(o: Outcome): unknown[] {
  if (o.kind !== 'events') throw new Error(`expected events, got ${o.kind}: ${o.reason}`);
  return o.events;
}

function rejectReason(o: Outcome): string {
  if (o.kind !== 'reject') throw new Error(`expected a reject, got ${JSON.stringify(o)}`);
  return o.reason;
}

const pod = { kind: 'pod', id: 'web-1', name: 'web-1', namespace: 'shop', labels: { app: 'web' } };
const DENIED = {
  id: 'sensor:42',
  time: 1718000000000,
  src: { ip: '10.0.1.5', port: 41234, workload: pod },
  dst: { ip: '10.0.2.7' },
  protocol: 'tcp',
  dstPort: 8080,
  action: 'denied',
  policy: { id: 'default-deny', name: 'default deny' },
  observer: { type: 'sensor', name: 'node-1' },
};
const ANOMALY = {
  id: 'ueba:7',
  time: '2024-06-10T06:13:20Z',
  entity: { ip: '10.0.1.5' },
  kind: 'auth_burst',
  score: 0.8,
  detector: 'ueba',
  detail: { failures: 31 },
};

type Json = Record<string, any>;
const with_ = (base: Json, change: (r: Json) => void): Json => {
  const r = structuredClone(base);
  change(r);
  return r;
};

describe('cordon: the canonical JSON', () => {
  it('reads a denied flow as it is', () => {
    expect(eventsOf(norm(DENIED))).toEqual([DENIED]);
  });

  it('accepts time as an ISO-8601 string with a zone, and an explicit type', () => {
    const iso = with_(DENIED, (r) => ((r.time = '2024-06-10T06:13:20.000Z'), (r.type = 'denied_flow')));
    expect(eventsOf(norm(iso))).toEqual([{ ...DENIED, time: Date.parse('2024-06-10T06:13:20.000Z') }]);
    const offset = with_(DENIED, (r) => (r.time = '2024-06-10T08:13:20+02:00'));
    expect((eventsOf(norm(offset))[0] as { time: number }).time).toBe(Date.parse('2024-06-10T06:13:20Z'));
  });

  it('reads allowed flows and anomalies (anomalies come only in this format)', () => {
    const allowed = with_(DENIED, (r) => ((r.action = 'allowed'), delete r.policy));
    expect(eventsOf(norm(allowed))).toEqual([allowed]);
    expect(eventsOf(norm(ANOMALY))).toEqual([{ ...ANOMALY, time: Date.parse('2024-06-10T06:13:20Z') }]);
    const onWorkload = with_(ANOMALY, (r) => ((r.type = 'anomaly'), (r.entity = pod)));
    expect((eventsOf(norm(onWorkload))[0] as Json).entity).toEqual(pod);
  });

  it('never copies unknown keys (nor type) into the event', () => {
    const extra = with_(DENIED, (r) => ((r.type = 'denied_flow'), (r.secret = 'x'), (r.src.extra = 1), (r.src.workload.owner = 'y')));
    const [event] = eventsOf(norm(extra)) as Json[];
    expect(event).toEqual(DENIED);
    expect(Object.keys(event!)).not.toContain('type');
  });

  it('fills workload labels with {} when absent', () => {
    const bare = with_(DENIED, (r) => delete r.src.workload.labels);
    expect((eventsOf(norm(bare))[0] as Json).src.workload.labels).toEqual({});
  });
});

describe('cordon: rejects', () => {
  it('a missing required field', () => {
    expect(rejectReason(norm(with_(DENIED, (r) => delete r.observer)))).toContain('observer');
    expect(rejectReason(norm(with_(ANOMALY, (r) => delete r.detector)))).toContain('detector');
    expect(rejectReason(norm(with_(DENIED, (r) => ((r.src = {}), (r.dst = {})))))).toContain('src: needs an ip or a workload');
  });

  it('a wrong type', () => {
    expect(rejectReason(norm(with_(DENIED, (r) => (r.dstPort = '8080'))))).toContain('dstPort');
    expect(rejectReason(norm(with_(ANOMALY, (r) => (r.score = 1.5))))).toContain('score');
    expect(rejectReason(norm(with_(DENIED, (r) => (r.time = '2024-06-10 06:13:20'))))).toContain('time');
  });

  it('an invalid IP', () => {
    expect(rejectReason(norm(with_(DENIED, (r) => (r.src.ip = '10.0.1.256'))))).toContain('src.ip');
  });

  it('a port out of range', () => {
    expect(rejectReason(norm(with_(DENIED, (r) => (r.dstPort = 65536))))).toContain('dstPort');
    expect(rejectReason(norm(with_(DENIED, (r) => (r.src.port = -1))))).toContain('src.port');
  });

  it('a type that is not one of ours, including inherited property names', () => {
    expect(rejectReason(norm(with_(DENIED, (r) => (r.type = 'denial'))))).toContain('type');
    expect(rejectReason(norm(with_(DENIED, (r) => (r.type = 'toString'))))).toContain('type');
    expect(rejectReason(norm({ id: 'x', time: 1718000000000 }))).toContain('type');
    // type and action disagreeing
    expect(rejectReason(norm(with_(DENIED, (r) => (r.type = 'allowed_flow'))))).toContain('action');
  });

  it('names with bidi overrides or zero-width characters', () => {
    expect(rejectReason(norm(with_(DENIED, (r) => (r.src.workload.name = 'web\u202e1'))))).toContain('src.workload.name');
    expect(rejectReason(norm(with_(DENIED, (r) => (r.observer.name = 'node\u200d1'))))).toContain('observer.name');
  });
});
