import { z } from 'zod';
import { Labels, Name, Port, type Endpoint, type Flow, type Protocol, type WorkloadRef } from '../events';
import { events, reject, skip, type Normalizer, type Outcome, type RawRecord } from './normalizer';
import { CanonIp, IsoTime, eventId, fitName, isJsonObject, labelsFromPairs, rejectReason, show, textHash } from './common';
import { FieldCheck } from './fast';

/**
 * Cilium Hubble flows as printed by `hubble observe -o json` / the Hubble exporter: the
 * `{"flow": {...}, "node_name", "time"}` wrapper or a bare flow (flow.proto field names).
 *
 * - DROPPED with a policy drop reason (drop_reason_desc POLICY_DENIED (133) or POLICY_DENY (181),
 *   or the numeric drop_reason) -> DeniedFlow; an L7 flow DROPPED by the proxy is an L7 policy
 *   denial (Cilium sets no drop reason on those) -> DeniedFlow too;
 * - AUDIT (policy audit mode: would have been dropped) -> DeniedFlow marked
 *   `policy.id = "hubble:audit"`, the same convention as Illumio's potentially_blocked;
 * - FORWARDED / REDIRECTED (to the proxy) -> AllowedFlow, except reply packets (is_reply, or
 *   the deprecated `reply` of older Hubble when is_reply is absent; Cilium's flow API: "use
 *   is_reply instead"), which would read as a flow from the server to the client's ephemeral port;
 * - any other drop (CT_MAP_INSERTION_FAILED, INVALID_SOURCE_IP, ...), TRACED, TRANSLATED,
 *   ERROR, lost_events / node_status messages, flows without an IP layer -> skip.
 *
 * Identity: a pod endpoint (namespace + pod_name) becomes a pod workload with its `k8s:` labels
 * (Cilium's own io.cilium.k8s.* and io.kubernetes.pod.namespace pseudo-labels dropped); the
 * `reserved:host` identity is the node the flow was observed on. Everything else is IP only.
 * Hubble flows carry `uuid` in recent versions; without it the id is the hash of the text.
 */

const CILIUM_PSEUDO_LABELS = ['io.cilium.k8s.', 'io.kubernetes.pod.namespace'];

/** `["k8s:app=web", "reserved:host"]` -> `{ k8s: { app: "web" }, host: true }`. */
const HubbleLabels = z
  .array(z.string())
  .transform((pairs) => ({
    k8s: labelsFromPairs(pairs, 'k8s:', CILIUM_PSEUDO_LABELS),
    host: pairs.includes('reserved:host'),
  }))
  .pipe(z.object({ k8s: Labels, host: z.boolean() }));

const HubbleEndpoint = z.object({
  namespace: Name.optional(),
  pod_name: Name.optional(),
  labels: HubbleLabels.optional(),
});

const Ports = z.object({ destination_port: Port.optional(), source_port: Port.optional() });

const HubbleFlow = z.object({
  time: IsoTime,
  uuid: Name.optional(),
  verdict: z.string(),
  drop_reason: z.number().optional(),
  drop_reason_desc: z.string().optional(),
  IP: z.object({ source: CanonIp, destination: CanonIp }).optional(),
  l4: z
    .object({
      TCP: Ports.optional(),
      UDP: Ports.optional(),
      SCTP: Ports.optional(),
      ICMPv4: z.object({}).optional(),
      ICMPv6: z.object({}).optional(),
    })
    .optional(),
  source: HubbleEndpoint.optional(),
  destination: HubbleEndpoint.optional(),
  Type: z.string().optional(),
  node_name: Name.optional(),
  is_reply: z.boolean().optional(),
  reply: z.boolean().optional(),
  egress_denied_by: z.array(z.object({ name: Name, namespace: Name.optional() })).optional(),
  ingress_denied_by: z.array(z.object({ name: Name, namespace: Name.optional() })).optional(),
});
type HubbleFlow = z.infer<typeof HubbleFlow>;
type HubbleEndpoint = z.infer<typeof HubbleEndpoint>;
type Ports = z.infer<typeof Ports>;
type HubbleLabels = z.infer<typeof HubbleLabels>;
type DeniedBy = NonNullable<HubbleFlow['egress_denied_by']>;

const Envelope = z.object({ flow: HubbleFlow, node_name: Name.optional() });

const POLICY_DROP_REASONS = new Set<unknown>(['POLICY_DENIED', 'POLICY_DENY', 133, 181]);

function workload(ep: HubbleEndpoint | undefined, nodeName: string | undefined): WorkloadRef | undefined {
  if (!ep) return undefined;
  if (ep.pod_name !== undefined && ep.namespace !== undefined) {
    return { kind: 'pod', id: ep.pod_name, name: ep.pod_name, namespace: ep.namespace, labels: ep.labels?.k8s ?? {} };
  }
  if (nodeName !== undefined && ep.labels?.host) {
    // node_name is "<cluster>/<node>"
    const slash = nodeName.lastIndexOf('/');
    const name = slash >= 0 && slash < nodeName.length - 1 ? nodeName.slice(slash + 1) : nodeName;
    return { kind: 'node', id: nodeName, name, labels: {} };
  }
  return undefined;
}

function endpoint(ip: string, port: number | undefined, w: WorkloadRef | undefined): Endpoint {
  const e: Endpoint = { ip };
  if (port !== undefined) e.port = port;
  if (w) e.workload = w;
  return e;
}

function protocolOf(l: HubbleFlow['l4']): Protocol {
  if (l?.TCP) return 'tcp';
  if (l?.UDP) return 'udp';
  if (l?.SCTP) return 'sctp';
  if (l?.ICMPv4) return 'icmp';
  if (l?.ICMPv6) return 'icmpv6';
  return 'other';
}

function portsOf(l: HubbleFlow['l4']): Ports | undefined {
  return l?.TCP ?? l?.UDP ?? l?.SCTP;
}

type Verdict = { action: 'allowed' } | { action: 'denied'; why: 'policy' | 'audit' | 'L7' } | { skip: string };
const ALLOWED: Verdict = { action: 'allowed' };
const DENIED_POLICY: Verdict = { action: 'denied', why: 'policy' };
const DENIED_AUDIT: Verdict = { action: 'denied', why: 'audit' };
const DENIED_L7: Verdict = { action: 'denied', why: 'L7' };
const REPLY: Verdict = { skip: 'hubble: reply direction of a flow' };
interface VerdictFields {
  verdict?: unknown;
  drop_reason_desc?: unknown;
  drop_reason?: unknown;
  Type?: unknown;
  is_reply?: unknown;
  reply?: unknown;
}

/** is_reply when present; else the deprecated `reply` (which cannot tell false from absent). */
const isReply = (f: VerdictFields): boolean => (f.is_reply === undefined ? f.reply === true : f.is_reply === true);

/**
 * What a flow means, from the fields that decide it. Run on the raw JSON before validation:
 * most flows of a busy cluster are skipped, and need not be validated field by field.
 */
function verdict(f: VerdictFields): Verdict {
  switch (f.verdict) {
    case 'DROPPED': {
      const reason = f.drop_reason_desc ?? f.drop_reason;
      if (POLICY_DROP_REASONS.has(reason)) return DENIED_POLICY;
      if (f.Type === 'L7') return DENIED_L7;
      return { skip: `hubble: DROPPED for ${show(reason ?? 'an unknown reason')}, not a policy denial` };
    }
    case 'AUDIT':
      return DENIED_AUDIT;
    case 'FORWARDED':
    case 'REDIRECTED':
      return isReply(f) ? REPLY : ALLOWED;
    default:
      return { skip: `hubble: verdict ${show(f.verdict)} is neither a denial nor a forwarded flow` };
  }
}

function policy(f: HubbleFlow, why: 'policy' | 'audit' | 'L7'): { id: string; name: string } {
  if (why === 'audit') return { id: 'hubble:audit', name: 'would be denied (policy audit mode, not enforced)' };
  if (why === 'L7') return { id: 'hubble:L7', name: 'L7 policy denied' };
  const by = f.ingress_denied_by?.[0] ?? f.egress_denied_by?.[0];
  if (by) return { id: by.namespace ? fitName(`${by.namespace}/${by.name}`, by.name) : by.name, name: by.name };
  const reason = String(f.drop_reason_desc ?? f.drop_reason);
  return { id: `hubble:${reason}`, name: `policy denied (${reason})` };
}

/** `v`: the verdict already read from the raw fields, which the schema passes through unchanged. */
function toFlow(record: RawRecord, f: HubbleFlow, outerNode: string | undefined, v: Verdict = verdict(f)): Outcome {
  if ('skip' in v) return skip(v.skip);
  if (!f.IP) return skip('hubble: flow has no IP layer');
  const node = f.node_name ?? outerNode;
  const ports = portsOf(f.l4);
  const dstPort = ports?.destination_port;
  const flow: Flow = {
    id: f.uuid !== undefined ? eventId('hubble', f.uuid, record.text) : `hubble:${textHash(record.text)}`,
    time: f.time,
    src: endpoint(f.IP.source, ports?.source_port, workload(f.source, node)),
    dst: endpoint(f.IP.destination, dstPort, workload(f.destination, node)),
    protocol: protocolOf(f.l4),
    dstPort: dstPort ?? 0,
    action: v.action,
    observer: { type: 'hubble', name: node ?? 'hubble' },
  };
  if (v.action === 'denied') flow.policy = policy(f, v.why);
  return events(flow);
}

// The fast path: HubbleFlow's fields checked by hand (see fast.ts). Objects whose fields pass
// unchanged are returned as they came (with any extra keys, which nothing reads).
const check = new FieldCheck();

function fastFlow(c: FieldCheck, v: unknown): HubbleFlow {
  const f = c.object(v);
  return {
    time: c.isoTime(f.time),
    uuid: c.optName(f.uuid),
    verdict: c.string(f.verdict),
    drop_reason: c.optNumber(f.drop_reason),
    drop_reason_desc: c.optString(f.drop_reason_desc),
    IP: f.IP === undefined ? undefined : fastIp(c, f.IP),
    l4: fastL4(c, f.l4),
    source: fastEndpoint(c, f.source),
    destination: fastEndpoint(c, f.destination),
    Type: c.optString(f.Type),
    node_name: c.optName(f.node_name),
    is_reply: c.optBoolean(f.is_reply),
    reply: c.optBoolean(f.reply),
    egress_denied_by: fastDeniedBy(c, f.egress_denied_by),
    ingress_denied_by: fastDeniedBy(c, f.ingress_denied_by),
  };
}

function fastIp(c: FieldCheck, v: unknown): { source: string; destination: string } {
  const o = c.object(v);
  return { source: c.ip(o.source), destination: c.ip(o.destination) };
}

function fastL4(c: FieldCheck, v: unknown): HubbleFlow['l4'] {
  if (v === undefined) return undefined;
  const o = c.object(v);
  fastPorts(c, o.TCP);
  fastPorts(c, o.UDP);
  fastPorts(c, o.SCTP);
  if (o.ICMPv4 !== undefined) c.object(o.ICMPv4);
  if (o.ICMPv6 !== undefined) c.object(o.ICMPv6);
  return o as HubbleFlow['l4'];
}

function fastPorts(c: FieldCheck, v: unknown): void {
  if (v === undefined) return;
  const o = c.object(v);
  c.optPort(o.destination_port);
  c.optPort(o.source_port);
}

function fastEndpoint(c: FieldCheck, v: unknown): HubbleEndpoint | undefined {
  if (v === undefined) return undefined;
  const o = c.object(v);
  return {
    namespace: c.optName(o.namespace),
    pod_name: c.optName(o.pod_name),
    labels: o.labels === undefined ? undefined : fastLabels(c, o.labels),
  };
}

const NO_LABELS: HubbleLabels = { k8s: {}, host: false };

function fastLabels(c: FieldCheck, v: unknown): HubbleLabels {
  if (!Array.isArray(v)) return c.fail(NO_LABELS);
  for (let i = 0; i < v.length; i++) c.string(v[i]);
  if (c.doubt) return NO_LABELS;
  const pairs = v as string[];
  return { k8s: c.labels(labelsFromPairs(pairs, 'k8s:', CILIUM_PSEUDO_LABELS)), host: pairs.includes('reserved:host') };
}

function fastDeniedBy(c: FieldCheck, v: unknown): DeniedBy | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) return c.fail(undefined);
  for (let i = 0; i < v.length; i++) {
    const o = c.object(v[i]);
    c.name(o.name);
    c.optName(o.namespace);
  }
  return v as DeniedBy;
}

function normalizeWith(record: RawRecord, fast: boolean): Outcome {
  const json = record.json;
  if (!isJsonObject(json)) return reject('hubble: expected a JSON object');
  const wrapped = 'flow' in json;
  if (!wrapped && ('lost_events' in json || 'node_status' in json || 'agent_event' in json || 'debug_event' in json)) {
    return skip('hubble: not a flow (lost_events / node_status / agent or debug event)');
  }
  const raw = wrapped ? json.flow : json;
  let early: Verdict | undefined;
  if (isJsonObject(raw) && typeof raw.verdict === 'string') {
    early = verdict(raw);
    if ('skip' in early) return skip(early.skip);
  }
  if (fast) {
    const c = check.reset();
    const f = fastFlow(c, raw);
    const outer = wrapped ? c.optName(json.node_name) : undefined;
    if (!c.doubt) return toFlow(record, f, outer, early);
  }
  if (wrapped) {
    const parsed = Envelope.safeParse(json);
    if (!parsed.success) return reject(rejectReason('hubble', parsed.error));
    return toFlow(record, parsed.data.flow, parsed.data.node_name, early);
  }
  const parsed = HubbleFlow.safeParse(json);
  if (!parsed.success) return reject(rejectReason('hubble', parsed.error));
  return toFlow(record, parsed.data, undefined, early);
}

const detect = (record: RawRecord): boolean => {
  const j = record.json;
  if (!isJsonObject(j)) return false;
  if ('flow' in j) return isJsonObject(j.flow);
  return ('verdict' in j && ('IP' in j || 'l4' in j || 'source' in j)) || 'lost_events' in j || 'node_status' in j;
};

export const hubble: Normalizer = { format: 'hubble', detect, normalize: (record) => normalizeWith(record, true) };

/** The same normalizer with zod alone deciding: the reference the fast path is tested and measured against. */
export const hubbleSchemaOnly: Normalizer = { format: 'hubble', detect, normalize: (record) => normalizeWith(record, false) };
