import { readFileSync } from 'node:fs';
import path from 'node:path';
import { AllowedFlow, DeniedFlow, type Flow } from '../../src/events';
import type { Outcome, StreamContext } from '../../src/normalize/normalizer';
import { normalizeRecord } from '../../src/normalize/registry';

const fixture = (name: string) => readFileSync(path.resolve(__dirname, '../fixtures/calico', name), 'utf8').trim();

// Source: Calico Enterprise docs, "Flow log data types", section "Flow log example, with no
// aggregation" (https://docs.tigera.io/calico-enterprise/latest/observability/elastic/flow/datatypes,
// calico-enterprise/observability/elastic/flow/datatypes.mdx in github.com/tigera/docs). The
// published example has a trailing comma after the last pending_policies entry (invalid JSON);
// the fixture has it removed and is otherwise as published.
const DOCS_ALLOW = fixture('flow-log-no-aggregation.json');

// Source: Tigera's observability clinic, "3. CLI", step g: a real deny record grepped from
// /var/log/calico/flowlogs/flows.log on a calico-node
// (https://github.com/tigera-cs/observability-clinic/blob/main/3.%20CLI/readme.md).
const CLINIC_DENY = fixture('flows-log-deny.jsonl');

const ctx = (): StreamContext => ({ state: new Map() });
const norm = (text: string): Outcome => normalizeRecord(text, 'calico', ctx());

function only(o: Outcome): Flow {
  if (o.kind !== 'events') throw new Error(`expected events, got ${o.kind}: ${o.reason}`);
  expect(o.events).toHaveLength(1);
  return o.events[0] as Flow;
}

function rejectReason(o: Outcome): string {
  if (o.kind !== 'reject') throw new Error(`expected a reject, got ${JSON.stringify(o)}`);
  return o.reason;
}

type Json = Record<string, any>;
const variant = (base: string, change: (r: Json) => void): string => {
  const r = JSON.parse(base) as Json;
  change(r);
  return JSON.stringify(r);
};

describe('calico: the documented flow log records', () => {
  it('the docs example (allow, no aggregation) is an allowed pod-to-pod flow with the allowing policy', () => {
    const flow = only(norm(DOCS_ALLOW));
    expect(AllowedFlow.safeParse(flow).success).toBe(true);
    expect(flow).toEqual({
      id: expect.stringMatching(/^calico:[0-9a-f]{20}$/),
      time: 1597166083000,
      src: {
        ip: '192.168.47.9',
        port: 42106,
        workload: {
          kind: 'pod',
          id: 'access-6b687c8dcb-zn5s2',
          name: 'access-6b687c8dcb-zn5s2',
          namespace: 'policy-demo',
          labels: { 'pod-template-hash': '6b687c8dcb', app: 'access' },
        },
      },
      dst: {
        ip: '192.168.138.79',
        port: 80,
        workload: {
          kind: 'pod',
          id: 'nginx-86c57db685-h6792',
          name: 'nginx-86c57db685-h6792',
          namespace: 'policy-demo',
          labels: { 'pod-template-hash': '86c57db685', app: 'nginx' },
        },
      },
      protocol: 'tcp',
      dstPort: 80,
      action: 'allowed',
      policy: { id: 'policy-demo/default.access-nginx', name: 'policy-demo/default.access-nginx rule 2' },
      observer: { type: 'calico', name: 'bz-n8kf-kadm-node-1' },
    });
  });

  it('the clinic deny record is a denied flow naming the denying policy (end of tier)', () => {
    const flow = only(norm(CLINIC_DENY));
    expect(DeniedFlow.safeParse(flow).success).toBe(true);
    expect(flow).toMatchObject({
      time: 1659621542000,
      src: { ip: '10.48.116.157', workload: { kind: 'pod', id: 'multitool', namespace: 'default', labels: { run: 'multitool' } } },
      dst: { ip: '10.48.127.224', port: 5050, workload: { kind: 'pod', id: 'checkoutservice-598d5b586d-wsvmz', namespace: 'hipstershop' } },
      protocol: 'tcp',
      dstPort: 5050,
      action: 'denied',
      policy: {
        id: 'hipstershop/app-hipstershop.checkoutservice',
        name: 'hipstershop/app-hipstershop.checkoutservice (end of tier app-hipstershop)',
      },
      observer: { type: 'calico', name: 'calico' },
    });
    // source_port null (aggregated): no port, not port 0.
    expect(flow.src.port).toBeUndefined();
  });

  it('one event per record whatever num_flows says, with a deterministic id', () => {
    const many = variant(CLINIC_DENY, (r) => (r.num_flows = 42));
    const o = norm(many);
    expect(o.kind === 'events' && o.events.length).toBe(1);
    expect(only(norm(CLINIC_DENY)).id).toBe(only(norm(CLINIC_DENY)).id);
    expect(only(norm(many)).id).not.toBe(only(norm(CLINIC_DENY)).id);
  });
});

describe('calico: aggregation and endpoint types (variants of the documented records)', () => {
  it('aggregated to a pod prefix: the address still names the endpoint, the prefix is no pod', () => {
    const flow = only(norm(variant(CLINIC_DENY, (r) => ((r.source_name = '-'), (r.source_name_aggr = 'multitool-*')))));
    expect(flow.src).toEqual({ ip: '10.48.116.157' });
  });

  it('aggregated with no address either (level 2): no single entity, skipped', () => {
    const agg = variant(DOCS_ALLOW, (r) => ((r.source_ip = null), (r.source_name = '-'), (r.source_port = null)));
    expect(norm(agg)).toEqual({ kind: 'skip', reason: expect.stringContaining('access-6b687c8dcb-*') });
  });

  it('a host endpoint is a host workload; a network is an address; dest_port null is port 0', () => {
    const flow = only(
      norm(
        variant(CLINIC_DENY, (r) => {
          r.source_type = 'hep';
          r.source_name = 'bastion-eth0';
          r.source_namespace = '-';
          r.source_labels = '-';
          r.dest_type = 'net';
          r.dest_name = 'pvt';
          r.dest_namespace = '-';
          r.dest_port = null;
          r.proto = 'icmp';
        }),
      ),
    );
    expect(flow.src.workload).toEqual({ kind: 'host', id: 'bastion-eth0', name: 'bastion-eth0', labels: {} });
    expect(flow.dst).toEqual({ ip: '10.48.127.224' });
    expect([flow.protocol, flow.dstPort]).toEqual(['icmp', 0]);
  });
});

describe('calico: rejects', () => {
  it('a missing required field', () => {
    expect(rejectReason(norm(variant(CLINIC_DENY, (r) => delete r.action)))).toContain('action');
    expect(rejectReason(norm(variant(CLINIC_DENY, (r) => delete r.start_time)))).toContain('start_time');
  });

  it('a wrong type', () => {
    expect(rejectReason(norm(variant(CLINIC_DENY, (r) => (r.dest_port = '5050'))))).toContain('dest_port');
    expect(rejectReason(norm(variant(CLINIC_DENY, (r) => (r.action = 'drop'))))).toContain('action');
  });

  it('an invalid IP', () => {
    expect(rejectReason(norm(variant(CLINIC_DENY, (r) => (r.source_ip = '10.48.116.300'))))).toContain('source_ip');
  });

  it('a port out of range', () => {
    expect(rejectReason(norm(variant(CLINIC_DENY, (r) => (r.dest_port = 65536))))).toContain('dest_port');
  });

  it('a pod name with a bidi override', () => {
    expect(rejectReason(norm(variant(CLINIC_DENY, (r) => (r.source_name = 'multi\u202etool'))))).toContain('source_name');
  });
});
