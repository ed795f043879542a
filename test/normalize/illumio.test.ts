import { readFileSync } from 'node:fs';
import path from 'node:path';
import { AllowedFlow, DeniedFlow, type Flow } from '../../src/events';
import type { Outcome, StreamContext } from '../../src/normalize/normalizer';
import { normalizeRecord } from '../../src/normalize/registry';

// Source: Illumio's Python SDK, a traffic query response as the PCE returns it (all six
// flows potentially_blocked): https://github.com/illumio/illumio-py/blob/main/tests/data/traffic_query_response.json
// Field reference: Illumio REST API guide, Explorer, GET traffic_flows/async_queries/:uuid/download
// (https://product-docs-repo.illumio.com/Tech-Docs/Core/24.5/REST-APIs/out/en/visualization/explorer/explorer-reference.html).
// The blocked / allowed / unknown cases below are the same records with policy_decision changed.
type Json = Record<string, any>;
const RESPONSE = JSON.parse(
  readFileSync(path.resolve(__dirname, '../fixtures/illumio/traffic_query_response.json'), 'utf8'),
) as Json[];
const RECORDS = RESPONSE.map((r) => JSON.stringify(r));

const ctx = (): StreamContext => ({ state: new Map() });
const norm = (text: string): Outcome => normalizeRecord(text, 'illumio', ctx());

function only(o: Outcome): Flow {
  if (o.kind !== 'events') throw new Error(`expected events, got ${o.kind}: ${o.reason}`);
  expect(o.events).toHaveLength(1);
  return o.events[0] as Flow;
}

function rejectReason(o: Outcome): string {
  if (o.kind !== 'reject') throw new Error(`expected a reject, got ${JSON.stringify(o)}`);
  return o.reason;
}

const variant = (i: number, change: (r: Json) => void): string => {
  const r = JSON.parse(RECORDS[i]!) as Json;
  change(r);
  return JSON.stringify(r);
};

describe('illumio: the documented traffic query response', () => {
  it('potentially_blocked is a denial marked as such, between two labelled workloads', () => {
    const flow = only(norm(RECORDS[0]!));
    expect(DeniedFlow.safeParse(flow).success).toBe(true);
    expect(flow).toEqual({
      id: expect.stringMatching(/^illumio:[0-9a-f]{20}$/),
      time: Date.parse('2021-09-29T09:50:17Z'),
      src: {
        ip: '10.0.6.63',
        workload: {
          kind: 'host',
          id: '/orgs/1/workloads/b27eb7b5-b51c-4d4e-9a68-592150060a45',
          name: 'centos7',
          labels: { app: 'A-APP', env: 'E-TEST', loc: 'L-ILLUMIO', role: 'R-DB' },
        },
      },
      dst: {
        ip: '10.0.9.226',
        workload: {
          kind: 'host',
          id: '/orgs/1/workloads/d56a451c-08c2-4b34-a6ae-d7af441a1335',
          name: 'centos7',
          labels: { app: 'A-TEST', env: 'E-DEV', loc: 'L-TEST', role: 'R-TEST' },
        },
      },
      protocol: 'tcp',
      dstPort: 1234,
      action: 'denied',
      policy: {
        id: 'illumio:potentially_blocked',
        name: 'potentially blocked (not allowed by policy, not enforced: the flow went through)',
      },
      observer: { type: 'illumio', name: 'centos7' },
    });
  });

  it('every record of the response normalizes; unmanaged sources are addresses only', () => {
    const flows = RECORDS.map((r) => only(norm(r)));
    expect(flows.every((f) => f.action === 'denied' && f.policy?.id === 'illumio:potentially_blocked')).toBe(true);
    expect(flows[2]!.src).toEqual({ ip: '10.2.8.183' });
    expect(flows[2]!.dst.workload?.name).toBe('test-workload-2');
    expect(flows[3]!.time).toBe(Date.parse('2021-09-29T09:48:59Z'));
    expect(new Set(flows.map((f) => f.id)).size).toBe(flows.length);
  });
});

describe('illumio: policy decisions', () => {
  it('blocked is a denial; allowed an allowed flow; unknown is skipped', () => {
    const blocked = only(norm(variant(0, (r) => (r.policy_decision = 'blocked'))));
    expect(blocked.action).toBe('denied');
    expect(blocked.policy).toEqual({ id: 'illumio:blocked', name: 'blocked by policy' });
    const allowed = only(norm(variant(0, (r) => (r.policy_decision = 'allowed'))));
    expect(AllowedFlow.safeParse(allowed).success).toBe(true);
    expect(allowed.policy).toBeUndefined();
    expect(norm(variant(0, (r) => (r.policy_decision = 'unknown'))).kind).toBe('skip');
  });

  it('the observer is the reporting VEN: the source workload for outbound flows', () => {
    const outbound = only(norm(variant(2, (r) => (r.flow_direction = 'outbound'))));
    expect(outbound.observer).toEqual({ type: 'illumio', name: 'pce' });
    expect(only(norm(RECORDS[2]!)).observer).toEqual({ type: 'illumio', name: 'test-workload-2' });
  });
});

describe('illumio: rejects', () => {
  it('a missing required field', () => {
    expect(rejectReason(norm(variant(0, (r) => delete r.policy_decision)))).toContain('policy_decision');
    expect(rejectReason(norm(variant(0, (r) => delete r.timestamp_range)))).toContain('timestamp_range');
    expect(rejectReason(norm(variant(0, (r) => delete r.src.ip)))).toContain('src.ip');
  });

  it('a wrong type', () => {
    expect(rejectReason(norm(variant(0, (r) => (r.service.port = '1234'))))).toContain('service.port');
    expect(rejectReason(norm(variant(0, (r) => (r.src.workload.labels = { app: 'A-APP' }))))).toContain('src.workload.labels');
  });

  it('an invalid IP', () => {
    expect(rejectReason(norm(variant(0, (r) => (r.dst.ip = '10.0.9.2266'))))).toContain('dst.ip');
  });

  it('a port out of range', () => {
    expect(rejectReason(norm(variant(0, (r) => (r.service.port = 65536))))).toContain('service.port');
  });

  it('a workload name with a zero-width character', () => {
    expect(rejectReason(norm(variant(0, (r) => (r.src.workload.hostname = 'cent\u200bos7'))))).toContain('src.workload.hostname');
  });
});
