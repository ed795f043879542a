import { z } from 'zod';
import { Name, type Endpoint, type Flow } from '../events';
import { events, reject, skip, type Normalizer, type Outcome, type RawRecord, type StreamContext } from './normalizer';
import { CanonIp, EpochSecondsText, PortText, ProtocolNumberText, protocolName, rejectReason, textHash } from './common';

/**
 * AWS VPC Flow Logs, text records: the default (version 2) format
 * `version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status`,
 * or a custom format declared by a header line naming the fields (as the first line of every log
 * file delivered to S3). A header is remembered in the StreamContext and applies to the records
 * that follow it on that stream.
 *
 * - REJECT -> DeniedFlow (policy.id "vpcflow:REJECT": a security group or network ACL),
 *   ACCEPT -> AllowedFlow;
 * - log-status NODATA / SKIPDATA, or "-" in a field a flow needs (addresses, dstport, protocol,
 *   action, start) -> skip;
 * - a format without those fields (e.g. AWS's NAT gateway example, which has no action, ports
 *   or time) cannot give flows: its header and its records are rejected with the missing fields named.
 *
 * Endpoints are pkt-srcaddr / pkt-dstaddr when the format has them (the original addresses behind
 * a NAT or transit gateway interface), else srcaddr / dstaddr. Identity: `instance-id` is a vm
 * workload, but a record does not say which side is the instance unless the format has
 * `flow-direction` (ingress: the destination, egress: the source); without it the record stays IP
 * only rather than guess. Time: `start` (the first packet of the flow in the interval). Observer:
 * the `interface-id`. Id: hash of the record text.
 */

const KNOWN_FIELDS = new Set([
  'version', 'account-id', 'interface-id', 'srcaddr', 'dstaddr', 'srcport', 'dstport', 'protocol', 'packets',
  'bytes', 'start', 'end', 'action', 'log-status', 'vpc-id', 'subnet-id', 'instance-id', 'tcp-flags', 'type',
  'pkt-srcaddr', 'pkt-dstaddr', 'region', 'az-id', 'sublocation-type', 'sublocation-id', 'pkt-src-aws-service',
  'pkt-dst-aws-service', 'flow-direction', 'traffic-path', 'ecs-cluster-arn', 'ecs-cluster-name',
  'ecs-container-instance-arn', 'ecs-container-instance-id', 'ecs-container-id', 'ecs-second-container-id',
  'ecs-service-name', 'ecs-task-definition-arn', 'ecs-task-arn', 'ecs-task-id', 'reject-reason', 'resource-id',
  'encryption-status',
]);

/** Fields every record must have for a flow, and the ones used when present. */
const REQUIRED = ['srcaddr', 'dstaddr', 'dstport', 'protocol', 'action', 'start'] as const;
const OPTIONAL = ['srcport', 'instance-id', 'interface-id', 'flow-direction', 'pkt-srcaddr', 'pkt-dstaddr'] as const;
type Field = (typeof REQUIRED)[number] | (typeof OPTIONAL)[number];

const STATE_KEY = 'vpcflow.format';

class VpcFormat {
  readonly index = new Map<string, number>();
  readonly missing: string[];
  constructor(
    readonly fields: readonly string[],
    readonly name: string,
  ) {
    fields.forEach((f, i) => this.index.set(f, i));
    this.missing = REQUIRED.filter((f) => !this.index.has(f));
  }
}

const DEFAULT_FORMAT = new VpcFormat(
  'version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status'.split(' '),
  'the default version 2 format',
);

const VpcRecord = z.object({
  srcaddr: CanonIp,
  dstaddr: CanonIp,
  srcport: PortText.optional(),
  dstport: PortText,
  protocol: ProtocolNumberText,
  start: EpochSecondsText,
  action: z.enum(['ACCEPT', 'REJECT']),
  'instance-id': Name.optional(),
  'interface-id': Name.optional(),
  'flow-direction': z.enum(['ingress', 'egress']).optional(),
  'pkt-srcaddr': CanonIp.optional(),
  'pkt-dstaddr': CanonIp.optional(),
});

/** Splits on runs of spaces and tabs (AWS's own examples sometimes hold a double space). */
function splitFields(line: string): string[] {
  const out: string[] = [];
  let start = -1;
  for (let i = 0; i <= line.length; i++) {
    const c = i < line.length ? line.charCodeAt(i) : 32;
    const blank = c === 32 || c === 9 || c === 13 || c === 10;
    if (blank) {
      if (start >= 0) out.push(line.slice(start, i));
      start = -1;
    } else if (start < 0) start = i;
  }
  return out;
}

/** True when the line is a format header (its first token is a flow log field name). */
export function isVpcHeaderLine(line: string): boolean {
  const t = line.trimStart();
  const end = t.search(/[ \t]/);
  return KNOWN_FIELDS.has(end < 0 ? t : t.slice(0, end));
}

function header(tokens: string[], ctx: StreamContext): Outcome {
  if (new Set(tokens).size !== tokens.length) return reject('vpcflow: header names a field twice');
  const format = new VpcFormat(tokens, `the format of the header "${tokens.join(' ')}"`);
  ctx.state.set(STATE_KEY, format);
  if (format.missing.length > 0) {
    return reject(`vpcflow: header: the format lacks ${format.missing.join(', ')}, so its records cannot give flows`);
  }
  return skip('vpcflow: header line (the format of the records that follow)');
}

function normalize(record: RawRecord, ctx: StreamContext): Outcome {
  const tokens = splitFields(record.text);
  if (tokens.length === 0) return reject('vpcflow: empty record');
  if (KNOWN_FIELDS.has(tokens[0]!)) return header(tokens, ctx);
  const stored = ctx.state.get(STATE_KEY);
  const format = stored instanceof VpcFormat ? stored : DEFAULT_FORMAT;
  if (tokens.length !== format.fields.length) {
    return reject(`vpcflow: expected ${format.fields.length} fields (${format.name}), got ${tokens.length}`);
  }
  if (format.missing.length > 0) return reject(`vpcflow: ${format.missing.join(', ')}: not in ${format.name}`);
  const status = format.index.get('log-status');
  if (status !== undefined && (tokens[status] === 'NODATA' || tokens[status] === 'SKIPDATA')) {
    return skip(`vpcflow: log-status ${tokens[status]}`);
  }
  const fields: Partial<Record<Field, string>> = {};
  for (const f of REQUIRED) {
    const v = tokens[format.index.get(f)!]!;
    if (v === '-') return skip(`vpcflow: ${f} is "-" (no data)`);
    fields[f] = v;
  }
  for (const f of OPTIONAL) {
    const i = format.index.get(f);
    if (i !== undefined && tokens[i] !== '-') fields[f] = tokens[i];
  }
  const parsed = VpcRecord.safeParse(fields);
  if (!parsed.success) return reject(rejectReason('vpcflow', parsed.error));
  const r = parsed.data;
  const src: Endpoint = { ip: r['pkt-srcaddr'] ?? r.srcaddr };
  if (r.srcport !== undefined) src.port = r.srcport;
  const dst: Endpoint = { ip: r['pkt-dstaddr'] ?? r.dstaddr, port: r.dstport };
  const instance = r['instance-id'];
  if (instance !== undefined && r['flow-direction'] !== undefined) {
    (r['flow-direction'] === 'ingress' ? dst : src).workload = { kind: 'vm', id: instance, name: instance, labels: {} };
  }
  const flow: Flow = {
    id: `vpcflow:${textHash(record.text)}`,
    time: r.start,
    src,
    dst,
    protocol: protocolName(r.protocol),
    dstPort: r.dstport,
    action: r.action === 'REJECT' ? 'denied' : 'allowed',
    observer: { type: 'vpcflow', name: r['interface-id'] ?? 'vpcflow' },
  };
  if (r.action === 'REJECT') flow.policy = { id: 'vpcflow:REJECT', name: 'rejected by a security group or network ACL' };
  return events(flow);
}

export const vpcflow: Normalizer = {
  format: 'vpcflow',
  detect: (record) => {
    if (record.json !== undefined) return false;
    const t = record.text;
    return (
      t.includes('ACCEPT') || t.includes('REJECT') || t.includes('NODATA') || t.includes('SKIPDATA') || isVpcHeaderLine(t)
    );
  },
  normalize,
};
