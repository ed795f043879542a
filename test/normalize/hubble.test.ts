import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DeniedFlow, type Flow } from '../../src/events';
import type { Outcome, StreamContext } from '../../src/normalize/normalizer';
import { normalizeRecord } from '../../src/normalize/registry';

// Source: Cilium documentation, "Configuring Hubble exporter", the Output of the complete example
// (https://docs.cilium.io/en/stable/observability/hubble/configuration/export/, from
// Documentation/observability/hubble/configuration/export.rst in github.com/cilium/cilium):
// line 1 an ICMPv6 drop for INVALID_SOURCE_IP, line 2 xwing -> deathstar:80 DROPPED POLICY_DENIED.
const EXPORTER = readFileSync(path.resolve(__dirname, '../fixtures/hubble/exporter-output.jsonl'), 'utf8').trim().split('\n');
const INVALID_SOURCE_IP = EXPORTER[0]!;
const POLICY_DENIED = EXPORTER[1]!;

const ctx = (): StreamContext => ({ state: new Map() });
const norm = (text: string): Outcome => normalizeRecord(text, 'hubble', ctx());

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
/** A variant of the documented policy-denied flow (wrapper form), changed by `change(flow)`. */
const variant = (change: (flow: Json, outer: Json) => void): string => {
  const outer = JSON.parse(POLICY_DENIED) as Json;
  change(outer.flow as Json, outer);
  return JSON.stringify(outer);
};

describe('hubble: the documented exporter output', () => {
  it('makes the POLICY_DENIED drop a denied flow between the two pods', () => {
    const flow = only(norm(POLICY_DENIED));
    expect(DeniedFlow.safeParse(flow).success).toBe(true);
    expect(flow).toEqual({
      id: expect.stringMatching(/^hubble:[0-9a-f]{20}$/),
      time: Date.parse('2023-08-21T12:12:18.510Z'),
      src: {
        ip: '10.244.1.60',
        port: 44916,
        workload: { kind: 'pod', id: 'xwing', name: 'xwing', namespace: 'default', labels: {} },
      },
      dst: {
        ip: '10.244.1.5',
        port: 80,
        workload: {
          kind: 'pod',
          id: 'deathstar-7848d6c4d5-th9v2',
          name: 'deathstar-7848d6c4d5-th9v2',
          namespace: 'default',
          labels: {},
        },
      },
      protocol: 'tcp',
      dstPort: 80,
      action: 'denied',
      policy: { id: 'hubble:POLICY_DENIED', name: 'policy denied (POLICY_DENIED)' },
      observer: { type: 'hubble', name: 'kind-kind/kind-worker' },
    });
  });

  it('skips the INVALID_SOURCE_IP drop: not a policy denial', () => {
    const o = norm(INVALID_SOURCE_IP);
    expect(o).toEqual({ kind: 'skip', reason: expect.stringContaining('INVALID_SOURCE_IP') });
  });

  it('reads the bare flow (no wrapper) the same way', () => {
    const bare = JSON.stringify((JSON.parse(POLICY_DENIED) as Json).flow);
    const { id: _a, ...fromBare } = only(norm(bare));
    const { id: _b, ...fromWrapper } = only(norm(POLICY_DENIED));
    expect(fromBare).toEqual(fromWrapper);
  });

  it('gives the same id to the same text, and uses the flow uuid when there is one', () => {
    expect(only(norm(POLICY_DENIED)).id).toBe(only(norm(POLICY_DENIED)).id);
    const withUuid = variant((f) => (f.uuid = '0f9c3a2e-7b1d-4c55-9a40-1e2d3c4b5a69'));
    expect(only(norm(withUuid)).id).toBe('hubble:0f9c3a2e-7b1d-4c55-9a40-1e2d3c4b5a69');
  });
});

describe('hubble: verdicts and drop reasons (variants of the documented flow)', () => {
  it('POLICY_DENY (deny policies) and the numeric drop_reason 133 are denials too', () => {
    expect(only(norm(variant((f) => (f.drop_reason_desc = 'POLICY_DENY')))).action).toBe('denied');
    const numeric = variant((f) => {
      delete f.drop_reason_desc;
      f.drop_reason = 133;
    });
    expect(only(norm(numeric)).action).toBe('denied');
  });

  it('names the denying policy when the flow says which', () => {
    const named = variant((f) => {
      f.drop_reason_desc = 'POLICY_DENY';
      f.ingress_denied_by = [{ name: 'deny-xwing', namespace: 'default', kind: 'CiliumNetworkPolicy' }];
    });
    expect(only(norm(named)).policy).toEqual({ id: 'default/deny-xwing', name: 'deny-xwing' });
  });

  it('skips other drops', () => {
    for (const reason of ['CT_MAP_INSERTION_FAILED', 'INVALID_SOURCE_IP', 'STALE_OR_UNROUTABLE_IP']) {
      expect(norm(variant((f) => (f.drop_reason_desc = reason))).kind).toBe('skip');
    }
  });

  it('FORWARDED is an allowed flow; its reply packets are skipped', () => {
    const forwarded = only(
      norm(
        variant((f) => {
          f.verdict = 'FORWARDED';
          delete f.drop_reason_desc;
        }),
      ),
    );
    expect(forwarded.action).toBe('allowed');
    expect(forwarded.policy).toBeUndefined();
    expect(norm(variant((f) => ((f.verdict = 'FORWARDED'), (f.is_reply = true)))).kind).toBe('skip');
  });

  it('AUDIT (policy audit mode) is a denial marked as not enforced; an L7 drop is an L7 policy denial', () => {
    const audit = only(norm(variant((f) => ((f.verdict = 'AUDIT'), delete f.drop_reason_desc))));
    expect(audit.action).toBe('denied');
    expect(audit.policy?.id).toBe('hubble:audit');
    const l7 = only(norm(variant((f) => ((f.Type = 'L7'), delete f.drop_reason_desc))));
    expect(l7.policy?.id).toBe('hubble:L7');
  });

  it('skips TRACED flows, flows without an IP layer, and lost_events messages', () => {
    expect(norm(variant((f) => (f.verdict = 'TRACED'))).kind).toBe('skip');
    expect(norm(variant((f) => delete f.IP)).kind).toBe('skip');
    expect(norm('{"lost_events":{"source":"HUBBLE_RING_BUFFER","num_events_lost":3}}').kind).toBe('skip');
  });

  it('turns k8s: labels into workload labels, dropping Cilium pseudo-labels and other sources', () => {
    const labelled = variant((f) => {
      f.source.labels = [
        'k8s:app=web',
        'k8s:app.kubernetes.io/name=xwing',
        'k8s:io.kubernetes.pod.namespace=default',
        'k8s:io.cilium.k8s.policy.cluster=default',
        'reserved:init',
      ];
    });
    expect(only(norm(labelled)).src.workload?.labels).toEqual({ app: 'web', 'app.kubernetes.io/name': 'xwing' });
  });

  it('the reserved:host identity is the node the flow was observed on; reserved:world is an address', () => {
    const toHost = only(norm(variant((f) => (f.destination = { identity: 1, labels: ['reserved:host'] }))));
    expect(toHost.dst.workload).toEqual({ kind: 'node', id: 'kind-kind/kind-worker', name: 'kind-worker', labels: {} });
    const toWorld = only(norm(variant((f) => (f.destination = { identity: 2, labels: ['reserved:world'] }))));
    expect(toWorld.dst).toEqual({ ip: '10.244.1.5', port: 80 });
  });

  it('maps UDP and ICMP', () => {
    const udp = only(norm(variant((f) => (f.l4 = { UDP: { source_port: 5353, destination_port: 53 } }))));
    expect([udp.protocol, udp.dstPort]).toEqual(['udp', 53]);
    const icmp = only(norm(variant((f) => (f.l4 = { ICMPv4: { type: 8 } }))));
    expect([icmp.protocol, icmp.dstPort]).toEqual(['icmp', 0]);
  });
});

describe('hubble: rejects', () => {
  it('a missing required field', () => {
    expect(rejectReason(norm(variant((f) => delete f.verdict)))).toContain('flow.verdict');
    expect(rejectReason(norm(variant((f) => delete f.time)))).toContain('flow.time');
  });

  it('a wrong type', () => {
    expect(rejectReason(norm(variant((f) => (f.l4.TCP.destination_port = '80'))))).toContain('destination_port');
    expect(rejectReason(norm(variant((f) => (f.source.labels = 'k8s:app=web'))))).toContain('flow.source.labels');
  });

  it('an invalid IP', () => {
    expect(rejectReason(norm(variant((f) => (f.IP.source = '10.244.1.600'))))).toContain('flow.IP.source');
  });

  it('a port out of range', () => {
    expect(rejectReason(norm(variant((f) => (f.l4.TCP.destination_port = 70000))))).toContain('flow.l4.TCP.destination_port');
  });

  it('a pod name with a bidi override or zero-width character, and a __proto__ label key', () => {
    expect(rejectReason(norm(variant((f) => (f.source.pod_name = 'xwing\u202egnp.exe'))))).toContain('flow.source.pod_name');
    expect(rejectReason(norm(variant((f) => (f.destination.namespace = 'de\u200bfault'))))).toContain('flow.destination.namespace');
    const ctor = rejectReason(norm(variant((f) => (f.source.labels = ['k8s:constructor=x']))));
    expect(ctor).toContain('flow.source.labels');
    expect(ctor).toContain('forbidden key');
  });

  it('drops a __proto__ label key without touching any prototype', () => {
    const flow = only(norm(variant((f) => (f.source.labels = ['k8s:__proto__=x', 'k8s:app=web']))));
    expect(flow.src.workload?.labels).toEqual({ app: 'web' });
    expect(Object.getPrototypeOf(flow.src.workload?.labels)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});
