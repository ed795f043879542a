import { z } from 'zod';
import { Labels, Name, Port, type Endpoint, type Flow, type WorkloadRef } from '../events';
import { events, reject, skip, type Normalizer, type Outcome, type RawRecord } from './normalizer';
import {
  CanonIp,
  EpochSeconds,
  fitName,
  isJsonObject,
  labelsFromPairs,
  protocolFromText,
  protocolName,
  rejectReason,
  show,
  textHash,
} from './common';

/**
 * Calico Enterprise / Calico Cloud flow logs (the JSON records Felix writes to flows.log and
 * ships to Elasticsearch; field reference: docs.tigera.io "Flow log data types").
 *
 * - `action: "deny"` -> DeniedFlow, `action: "allow"` -> AllowedFlow.
 * - A record is an aggregate over an export interval (`num_flows` connections, source ports
 *   usually aggregated away). The contract has no count, so one record gives one event: the
 *   correlator sees "this pair was denied in this interval", not how many times.
 * - Time is `start_time` (the interval start): every normalizer uses the time a flow was first
 *   observed. Ports aggregated away (`dest_port: null`, ICMP) become dstPort 0 (= unknown).
 * - Identity: a `wep` endpoint with a real pod name (not `-`, not an aggregated `prefix-*`) is a
 *   pod workload with its labels; a `hep` (host endpoint) with a name is a host workload; network
 *   sets and plain networks are IP only. An endpoint aggregated to a name prefix whose IP was
 *   aggregated away too names no single entity: such a record is skipped.
 * - Policy: the enforced policy entry (`<index>|<tier>|<name>|<action>|<rule>`) that applied the
 *   record's action, highest index first; staged policies are ignored.
 * - Observer: `host` (the node that reported it), else "calico". Id: hash of the record text.
 */

/**
 * Who reported the flow: `src`, `dst`, `fwd` (a host endpoint that forwarded it, with
 * applyOnForward policies) or, for a flow aggregated over reporters, a list such as `dst, fwd`.
 * The record's action is the verdict either way; the reporter decides nothing else here.
 */
const REPORTERS = new Set(['src', 'dst', 'fwd']);
const Reporter = z.string().refine(
  (s) => {
    const parts = s.split(',').map((p) => p.trim());
    return parts.length <= 3 && parts.every((p) => REPORTERS.has(p)) && new Set(parts).size === parts.length;
  },
  { error: (iss) => `expected src, dst, fwd or a comma-separated list of them, got ${show(iss.input)}` },
);

/** `{"labels": ["app=web"]}`, or "-" / null when aggregated. */
const CalicoLabels = z
  .union([z.object({ labels: z.array(z.string()).nullish() }), z.string(), z.null()])
  .transform((v) => (typeof v === 'object' && v?.labels ? labelsFromPairs(v.labels, '') : {}))
  .pipe(Labels);

const CalicoRecord = z.object({
  start_time: EpochSeconds,
  action: z.enum(['allow', 'deny']),
  proto: z.union([z.string().min(1), z.number().int().min(0).max(255)]),
  source_ip: CanonIp.nullish(),
  source_port: Port.nullish(),
  source_name: Name,
  source_namespace: Name,
  source_type: Name,
  source_labels: CalicoLabels.optional(),
  dest_ip: CanonIp.nullish(),
  dest_port: Port.nullish(),
  dest_name: Name,
  dest_namespace: Name,
  dest_type: Name,
  dest_labels: CalicoLabels.optional(),
  dest_name_aggr: Name.optional(),
  source_name_aggr: Name.optional(),
  reporter: Reporter,
  host: Name.optional(),
  policies: z
    .object({ all_policies: z.array(Name).nullish(), enforced_policies: z.array(Name).nullish() })
    .nullish(),
});
type CalicoRecord = z.infer<typeof CalicoRecord>;

function workload(type: string, name: string, namespace: string, labels: Labels | undefined): WorkloadRef | undefined {
  if (name === '-' || name.endsWith('*')) return undefined;
  if (type === 'wep' && namespace !== '-') return { kind: 'pod', id: name, name, namespace, labels: labels ?? {} };
  if (type === 'hep') return { kind: 'host', id: name, name, labels: labels ?? {} };
  return undefined;
}

function endpoint(
  ip: string | null | undefined,
  port: number | null | undefined,
  w: WorkloadRef | undefined,
): Endpoint | undefined {
  if (ip == null && !w) return undefined;
  const e: Endpoint = {};
  if (ip != null) e.ip = ip;
  if (port != null) e.port = port;
  if (w) e.workload = w;
  return e;
}

/** The enforced policy that applied `action` (allow/deny), e.g. "1|default|ns/default.deny-all|deny|-1". */
function policyFor(r: CalicoRecord): { id: string; name: string } | undefined {
  const list = r.policies?.enforced_policies ?? r.policies?.all_policies;
  if (!list) return undefined;
  let best: string[] | undefined;
  let bestIndex = -1;
  for (const entry of list) {
    const parts = entry.split('|');
    if (parts.length < 5 || parts[3] !== r.action || !parts[2] || parts[2].includes('staged:')) continue;
    const index = Number(parts[0]);
    if (index > bestIndex) {
      bestIndex = index;
      best = parts;
    }
  }
  if (!best) return undefined;
  const [, tier, name, , rule] = best as [string, string, string, string, string];
  return { id: name, name: fitName(rule === '-1' ? `${name} (end of tier ${tier})` : `${name} rule ${rule}`, name) };
}

function normalize(record: RawRecord): Outcome {
  const parsed = CalicoRecord.safeParse(record.json);
  if (!parsed.success) return reject(rejectReason('calico', parsed.error));
  const r = parsed.data;
  const srcWorkload = workload(r.source_type, r.source_name, r.source_namespace, r.source_labels);
  const src = endpoint(r.source_ip, r.source_port, srcWorkload);
  if (!src) return skip(`calico: source aggregated to ${r.source_name_aggr ?? r.source_name}, no address: no single entity`);
  const dst = endpoint(r.dest_ip, r.dest_port, workload(r.dest_type, r.dest_name, r.dest_namespace, r.dest_labels));
  if (!dst) return skip(`calico: destination aggregated to ${r.dest_name_aggr ?? r.dest_name}, no address: no single entity`);
  const flow: Flow = {
    id: `calico:${textHash(record.text)}`,
    time: r.start_time,
    src,
    dst,
    protocol: typeof r.proto === 'number' ? protocolName(r.proto) : protocolFromText(r.proto),
    dstPort: r.dest_port ?? 0,
    action: r.action === 'deny' ? 'denied' : 'allowed',
    observer: { type: 'calico', name: r.host ?? 'calico' },
  };
  const policy = policyFor(r);
  if (policy) flow.policy = policy;
  return events(flow);
}

export const calico: Normalizer = {
  format: 'calico',
  detect: (record) => {
    const j = record.json;
    return isJsonObject(j) && 'action' in j && 'reporter' in j && ('source_name_aggr' in j || 'start_time' in j);
  },
  normalize,
};
