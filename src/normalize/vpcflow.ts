import { z } from 'zod';
import { Name, type Endpoint, type Flow } from '../events';
import { events, reject, skip, type Normalizer, type Outcome, type RawRecord, type StreamContext } from './normalizer';
import { CanonIp, EpochSecondsText, PortText, ProtocolNumberText, protocolName, rejectReason, textHash } from './common';
import { FieldCheck, valueSet } from './fast';

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
  /** Token index of each field a flow uses, -1 when the format lacks it. */
  readonly at: Readonly<Record<Field, number>>;
  constructor(
    readonly fields: readonly string[],
    readonly name: string,
  ) {
    fields.forEach((f, i) => this.index.set(f, i));
    this.missing = REQUIRED.filter((f) => !this.index.has(f));
    const at = {} as Record<Field, number>;
    for (const f of [...REQUIRED, ...OPTIONAL]) at[f] = this.index.get(f) ?? -1;
    this.at = at;
  }
}

const DEFAULT_FORMAT = new VpcFormat(
  'version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status'.split(' '),
  'the default version 2 format',
);

const ACTIONS = ['ACCEPT', 'REJECT'] as const;
const DIRECTIONS = ['ingress', 'egress'] as const;

const VpcRecord = z.object({
  srcaddr: CanonIp,
  dstaddr: CanonIp,
  srcport: PortText.optional(),
  dstport: PortText,
  protocol: ProtocolNumberText,
  start: EpochSecondsText,
  action: z.enum(ACTIONS),
  'instance-id': Name.optional(),
  'interface-id': Name.optional(),
  'flow-direction': z.enum(DIRECTIONS).optional(),
  'pkt-srcaddr': CanonIp.optional(),
  'pkt-dstaddr': CanonIp.optional(),
});
type VpcRecord = z.infer<typeof VpcRecord>;

// The fast path: VpcRecord's fields checked by hand straight from the tokens (see fast.ts).
const check = new FieldCheck();
const ACTION_SET = valueSet(ACTIONS);
const DIRECTION_SET = valueSet(DIRECTIONS);

/** The token of an optional field, undefined when the format lacks it or it is "-". */
function optional(tokens: readonly string[], i: number): string | undefined {
  const v = i < 0 ? undefined : tokens[i];
  return v === '-' ? undefined : v;
}

function fastRecord(tokens: readonly string[], at: VpcFormat['at']): VpcRecord | undefined {
  const c = check.reset();
  const r: VpcRecord = {
    srcaddr: c.ip(tokens[at.srcaddr]),
    dstaddr: c.ip(tokens[at.dstaddr]),
    srcport: c.optPortText(optional(tokens, at.srcport)),
    dstport: c.portText(tokens[at.dstport]),
    protocol: c.protocolNumberText(tokens[at.protocol]),
    start: c.epochSecondsText(tokens[at.start]),
    action: c.oneOf(tokens[at.action], ACTION_SET),
    'instance-id': c.optName(optional(tokens, at['instance-id'])),
    'interface-id': c.optName(optional(tokens, at['interface-id'])),
    'flow-direction': c.optOneOf(optional(tokens, at['flow-direction']), DIRECTION_SET),
    'pkt-srcaddr': c.optIp(optional(tokens, at['pkt-srcaddr'])),
    'pkt-dstaddr': c.optIp(optional(tokens, at['pkt-dstaddr'])),
  };
  return c.doubt ? undefined : r;
}

function schemaRecord(tokens: readonly string[], format: VpcFormat): z.ZodSafeParseResult<VpcRecord> {
  const fields: Partial<Record<Field, string>> = {};
  for (const f of REQUIRED) fields[f] = tokens[format.at[f]];
  for (const f of OPTIONAL) {
    const v = optional(tokens, format.at[f]);
    if (v !== undefined) fields[f] = v;
  }
  return VpcRecord.safeParse(fields);
}

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

function normalizeWith(record: RawRecord, ctx: StreamContext, fast: boolean): Outcome {
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
  for (const f of REQUIRED) if (tokens[format.at[f]] === '-') return skip(`vpcflow: ${f} is "-" (no data)`);
  let r = fast ? fastRecord(tokens, format.at) : undefined;
  if (r === undefined) {
    const parsed = schemaRecord(tokens, format);
    if (!parsed.success) return reject(rejectReason('vpcflow', parsed.error));
    r = parsed.data;
  }
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

const detect = (record: RawRecord): boolean => {
  if (record.json !== undefined) return false;
  const t = record.text;
  return t.includes('ACCEPT') || t.includes('REJECT') || t.includes('NODATA') || t.includes('SKIPDATA') || isVpcHeaderLine(t);
};

export const vpcflow: Normalizer = { format: 'vpcflow', detect, normalize: (record, ctx) => normalizeWith(record, ctx, true) };

/** The same normalizer with zod alone deciding: the reference the fast path is tested and measured against. */
export const vpcflowSchemaOnly: Normalizer = {
  format: 'vpcflow',
  detect,
  normalize: (record, ctx) => normalizeWith(record, ctx, false),
};
