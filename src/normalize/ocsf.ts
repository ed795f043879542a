import { z } from 'zod';
import { EventTime, Name, Port, type Endpoint, type Flow } from '../events';
import { events, reject, skip, type Normalizer, type Outcome, type RawRecord } from './normalizer';
import { CanonIp, eventId, fitName, isJsonObject, protocolFromText, protocolName, rejectReason, show, textHash } from './common';

/**
 * OCSF 1.x Network Activity (class_uid 4001), as AWS Security Lake writes VPC flow logs and many
 * EDRs and firewalls emit it. `metadata.version` must be 1.x (pre-releases such as 1.0.0-rc.2,
 * which Security Lake's first source version writes, included); another major is refused with the
 * version named, since field meanings may differ. Records of other OCSF classes are skipped.
 *
 * - action_id 2 (Denied), or disposition_id 2 (Blocked) or 6 (Dropped), or activity_id 5
 *   (Refuse) -> DeniedFlow;
 * - action_id 1 (Allowed), or disposition_id 1 (Allowed), or no verdict on an Open (1),
 *   Close (2) or Traffic (6) activity (the traffic was seen) -> AllowedFlow;
 * - anything else (Reset, Fail, Unknown, Other without a verdict) -> skip.
 *
 * Time: `start_time` (the flow's first packet) else `time`, both epoch ms (OCSF timestamp_t).
 * Protocol: connection_info.protocol_num, else protocol_name. Identity: an endpoint's
 * `instance_uid` (a cloud instance, e.g. "i-0abc...") is a vm workload (name: its hostname or the
 * id); other endpoints are IP only. Policy: firewall_rule.uid / name when given. Observer:
 * metadata.product.name. Id: metadata.uid, else the hash of the text.
 */

const NETWORK_ACTIVITY = 4001;
const SEMVER = /^(\d{1,3})\.(\d{1,3})(?:\.(\d{1,3}))?(?:-[0-9A-Za-z.-]{1,32})?$/;

const OcsfEndpoint = z.object({
  ip: CanonIp,
  port: Port.nullish(),
  instance_uid: Name.nullish(),
  hostname: Name.nullish(),
});
type OcsfEndpoint = z.infer<typeof OcsfEndpoint>;

const Enum = z.number().int().min(0).max(99);

const OcsfNetworkActivity = z.object({
  metadata: z.object({
    uid: Name.optional(),
    product: z.object({ name: Name.optional() }).optional(),
  }),
  time: EventTime,
  start_time: EventTime.optional(),
  activity_id: Enum.optional(),
  action_id: Enum.optional(),
  disposition_id: Enum.optional(),
  disposition: Name.optional(),
  src_endpoint: OcsfEndpoint,
  dst_endpoint: OcsfEndpoint,
  connection_info: z
    .object({ protocol_num: z.number().int().min(0).max(255).optional(), protocol_name: Name.optional() })
    .optional(),
  firewall_rule: z.object({ uid: Name.optional(), name: Name.optional() }).optional(),
});
type OcsfNetworkActivity = z.infer<typeof OcsfNetworkActivity>;

type Verdict = { action: 'allowed' } | { action: 'denied'; why: string } | { skip: string };

function verdict(r: OcsfNetworkActivity): Verdict {
  if (r.action_id === 2) return { action: 'denied', why: 'denied' };
  if (r.disposition_id === 2 || r.disposition_id === 6) return { action: 'denied', why: r.disposition_id === 2 ? 'blocked' : 'dropped' };
  if (r.activity_id === 5) return { action: 'denied', why: 'refused' };
  if (r.action_id === 1 || r.disposition_id === 1) return { action: 'allowed' };
  const seen = r.activity_id === 1 || r.activity_id === 2 || r.activity_id === 6;
  if (seen && r.action_id === undefined && r.disposition_id === undefined) return { action: 'allowed' };
  return {
    skip: `ocsf: activity_id ${show(r.activity_id)}, action_id ${show(r.action_id)}, disposition_id ${show(r.disposition_id)}: neither an allowed nor a denied flow`,
  };
}

function endpoint(e: OcsfEndpoint): Endpoint {
  const out: Endpoint = { ip: e.ip };
  if (e.port != null) out.port = e.port;
  if (e.instance_uid != null) out.workload = { kind: 'vm', id: e.instance_uid, name: e.hostname ?? e.instance_uid, labels: {} };
  return out;
}

function policy(r: OcsfNetworkActivity, why: string): { id: string; name: string } {
  const rule = r.firewall_rule;
  if (rule?.uid !== undefined || rule?.name !== undefined) {
    const id = rule.uid ?? rule.name!;
    return { id, name: rule.name ?? id };
  }
  return { id: `ocsf:${why}`, name: fitName(`${r.disposition ?? why} (OCSF Network Activity)`, `${why} (OCSF Network Activity)`) };
}

/** The reason a record's OCSF version is not read, or undefined when it is 1.x. */
function versionProblem(metadata: unknown): string | undefined {
  const version = isJsonObject(metadata) ? metadata.version : undefined;
  if (typeof version !== 'string') return `ocsf: metadata.version: required (the OCSF schema version, 1.x), got ${show(version)}`;
  const m = SEMVER.exec(version);
  if (!m) return `ocsf: metadata.version: expected a schema version such as "1.1.0", got ${show(version)}`;
  if (m[1] !== '1') return `ocsf: metadata.version: OCSF ${show(version)} is not 1.x; only OCSF 1.x Network Activity is read`;
  return undefined;
}

function normalize(record: RawRecord): Outcome {
  const json = record.json;
  if (!isJsonObject(json)) return reject('ocsf: expected a JSON object');
  const problem = versionProblem(json.metadata);
  if (problem) return reject(problem);
  if (json.class_uid !== NETWORK_ACTIVITY) {
    if (typeof json.class_uid === 'number' && Number.isInteger(json.class_uid)) {
      return skip(`ocsf: class_uid ${json.class_uid} is not Network Activity (4001)`);
    }
    return reject(`ocsf: class_uid: expected an OCSF class id (4001 for Network Activity), got ${show(json.class_uid)}`);
  }
  const parsed = OcsfNetworkActivity.safeParse(json);
  if (!parsed.success) return reject(rejectReason('ocsf', parsed.error));
  const r = parsed.data;
  const v = verdict(r);
  if ('skip' in v) return skip(v.skip);
  const dst = endpoint(r.dst_endpoint);
  const info = r.connection_info;
  const flow: Flow = {
    id: r.metadata.uid !== undefined ? eventId('ocsf', r.metadata.uid, record.text) : `ocsf:${textHash(record.text)}`,
    time: r.start_time ?? r.time,
    src: endpoint(r.src_endpoint),
    dst,
    protocol:
      info?.protocol_num !== undefined
        ? protocolName(info.protocol_num)
        : info?.protocol_name !== undefined
          ? protocolFromText(info.protocol_name)
          : 'other',
    dstPort: dst.port ?? 0,
    action: v.action,
    observer: { type: 'ocsf', name: r.metadata.product?.name ?? 'ocsf' },
  };
  if (v.action === 'denied') flow.policy = policy(r, v.why);
  return events(flow);
}

export const ocsf: Normalizer = {
  format: 'ocsf',
  detect: (record) => {
    const j = record.json;
    return isJsonObject(j) && 'class_uid' in j && 'category_uid' in j && isJsonObject(j.metadata);
  },
  normalize,
};
