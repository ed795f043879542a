import { z } from 'zod';
import { Labels, Name, Port, type Endpoint, type Flow, type WorkloadRef } from '../events';
import { events, reject, skip, type Normalizer, type Outcome, type RawRecord } from './normalizer';
import { CanonIp, IsoTime, isJsonObject, protocolName, rejectReason, setLabel, textHash } from './common';

/**
 * Illumio PCE traffic flow records, one element of the async traffic query download
 * (GET .../traffic_flows/async_queries/:uuid/download) or an export of it.
 *
 * - `policy_decision: "blocked"` -> DeniedFlow, policy.id "illumio:blocked";
 * - `"potentially_blocked"` -> DeniedFlow too, marked policy.id "illumio:potentially_blocked":
 *   the destination's policy does not allow the flow but the workload is not enforcing
 *   (visibility/test mode), so the connection went through. For containment that is the
 *   stronger signal, not the weaker one, but consumers can tell it apart by the policy id;
 * - `"allowed"` -> AllowedFlow; `"unknown"` or anything else -> skip.
 *
 * A record aggregates `num_connections` connections between `first_detected` and
 * `last_detected`; like Calico, one record gives one event, at `first_detected`.
 * Identity: a side with `workload.href` is a host workload (id = href, name = name, else
 * hostname), labels from `[{key, value}]`. The observer is the VEN that reported the flow:
 * the destination's workload for inbound flows, the source's for outbound, else "pce".
 */

const IllumioLabels = z
  .array(z.object({ key: z.string(), value: z.string() }))
  .transform((list) => {
    const out: Record<string, string> = {};
    for (const l of list) setLabel(out, l.key, l.value);
    return out;
  })
  .pipe(Labels);

const IllumioWorkload = z.object({
  href: Name,
  name: Name.nullish(),
  hostname: Name.nullish(),
  labels: IllumioLabels.optional(),
});

const IllumioSide = z.object({ ip: CanonIp, workload: IllumioWorkload.nullish() });
type IllumioSide = z.infer<typeof IllumioSide>;

const IllumioFlow = z.object({
  src: IllumioSide,
  dst: IllumioSide,
  service: z.object({ port: Port.optional(), proto: z.number().int().min(0).max(255) }),
  policy_decision: z.string(),
  timestamp_range: z.object({ first_detected: IsoTime }),
  num_connections: z.number().int().nonnegative(),
  flow_direction: z.enum(['inbound', 'outbound']).optional(),
});

function endpoint(side: IllumioSide): Endpoint {
  const w = side.workload;
  if (!w) return { ip: side.ip };
  const ref: WorkloadRef = { kind: 'host', id: w.href, name: w.name ?? w.hostname ?? w.href, labels: w.labels ?? {} };
  return { ip: side.ip, workload: ref };
}

function normalize(record: RawRecord): Outcome {
  const parsed = IllumioFlow.safeParse(record.json);
  if (!parsed.success) return reject(rejectReason('illumio', parsed.error));
  const r = parsed.data;
  const decision = r.policy_decision;
  if (decision !== 'blocked' && decision !== 'potentially_blocked' && decision !== 'allowed') {
    return skip(`illumio: policy_decision ${decision} is neither blocked nor allowed`);
  }
  const reporter = r.flow_direction === 'inbound' ? r.dst.workload : r.flow_direction === 'outbound' ? r.src.workload : undefined;
  const flow: Flow = {
    id: `illumio:${textHash(record.text)}`,
    time: r.timestamp_range.first_detected,
    src: endpoint(r.src),
    dst: endpoint(r.dst),
    protocol: protocolName(r.service.proto),
    dstPort: r.service.port ?? 0,
    action: decision === 'allowed' ? 'allowed' : 'denied',
    observer: { type: 'illumio', name: reporter?.hostname ?? reporter?.name ?? 'pce' },
  };
  if (decision === 'blocked') flow.policy = { id: 'illumio:blocked', name: 'blocked by policy' };
  else if (decision === 'potentially_blocked') {
    flow.policy = {
      id: 'illumio:potentially_blocked',
      name: 'potentially blocked (not allowed by policy, not enforced: the flow went through)',
    };
  }
  return events(flow);
}

export const illumio: Normalizer = {
  format: 'illumio',
  detect: (record) => isJsonObject(record.json) && 'policy_decision' in record.json && 'timestamp_range' in record.json,
  normalize,
};
