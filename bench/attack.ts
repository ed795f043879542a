import type { CordonEvent } from '../src/events';
import { subjectKey } from '../src/events';
import type { CorrelationConfigInput } from '../src/correlate/config';
import { replay } from '../src/correlate/replay';
import { normalizeRecord } from '../src/normalize/registry';

/**
 * A short lateral-movement attack for the pipeline and fault benchmarks, in Cilium Hubble's JSON:
 * a pod that the policy stops reaching for the kubelet (10250) of several nodes, one attempt a
 * second of event time. Which record is decisive (the one after which the incident opens) is not
 * assumed: `decisiveIndex` finds it by running the pure engine over ever longer prefixes.
 */
export interface Attack {
  /** The attacker's entity key, which the incident's root must be. */
  root: string;
  /** Records in order, with their Kafka key. */
  records: Array<{ key: string; value: string; time: number }>;
}

const TARGETS = 4;

/** `firstTarget` numbers the nodes probed, so a later stage of the same attack can reach new ones. */
export function buildAttack(id: string, startMs: number, firstTarget = 0, targets = TARGETS): Attack {
  const records = Array.from({ length: targets }, (_, n) => {
    const time = startMs + n * 1000;
    return { time, value: kubeletProbe(id, firstTarget + n, time), key: '' };
  });
  const events = records.map((r) => normalize(r.value));
  for (const [i, r] of records.entries()) r.key = subjectKey(events[i]!);
  return { root: subjectKey(events[0]!), records };
}

/** The index of the record after which the engine opens the incident (throws if it never does). */
export function decisiveIndex(attack: Attack, engine: CorrelationConfigInput = {}): number {
  const events = attack.records.map((r) => normalize(r.value));
  for (let n = 1; n <= events.length; n++) {
    if (replay(events.slice(0, n), engine).incidents.some((i) => i.root === attack.root)) return n - 1;
  }
  throw new Error(`attack ${attack.root} raises no incident with this engine config`);
}

function normalize(text: string): CordonEvent {
  const outcome = normalizeRecord(text, 'hubble', { state: new Map() });
  if (outcome.kind !== 'events' || !outcome.events[0]) throw new Error(`attack record does not normalize: ${JSON.stringify(outcome)}`);
  return outcome.events[0];
}

function kubeletProbe(id: string, i: number, timeMs: number): string {
  const time = new Date(timeMs).toISOString();
  const pod = `intruder-${id}`;
  return JSON.stringify({
    flow: {
      time,
      uuid: `${id}-${i}`,
      verdict: 'DROPPED',
      drop_reason: 133,
      IP: { source: `10.250.${(hash(id) >> 8) & 255}.${hash(id) & 255}`, destination: `10.0.200.${10 + i}`, ipVersion: 'IPv4' },
      l4: { TCP: { source_port: 40000 + i, destination_port: 10250, flags: { SYN: true } } },
      source: {
        ID: 3000 + (hash(id) % 1000),
        identity: 30000 + (hash(id) % 1000),
        namespace: 'bench-attack',
        labels: ['k8s:app=intruder', 'k8s:io.kubernetes.pod.namespace=bench-attack'],
        pod_name: pod,
        workloads: [{ name: 'intruder', kind: 'Deployment' }],
      },
      destination: { identity: 1, labels: ['reserved:host'] },
      Type: 'L3_L4',
      node_name: `cluster-a/node-${i}`,
      event_type: { type: 1, sub_type: 133 },
      traffic_direction: 'EGRESS',
      drop_reason_desc: 'POLICY_DENIED',
      Summary: 'TCP Flags: SYN',
    },
    node_name: `cluster-a/node-${i}`,
    time,
  });
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}
