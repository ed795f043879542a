import { z } from 'zod';
import { Name, type Endpoint, type Flow } from '../events';
import { events, reject, skip, type Normalizer, type Outcome, type RawRecord, type StreamContext } from './normalizer';
import { CanonIp, CountText, EpochSecondsText, PortText, ProtocolNumberText, protocolName, rejectReason, show, textHash } from './common';
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
 * A format can also be declared for an input in the config (`kafka.inputs[].vpcFields`), for
 * logs delivered without a header (CloudWatch Logs); it is the stream's format until a header
 * line says otherwise, and comes back with every new stream context (rebalance, restart).
 *
 * Transit Gateway flow logs (their 36-field default format, recognized without a header by its
 * `tgw-` id in the fourth field, or any format with tgw-id / tgw-attachment-id) have no `action`:
 * a transit gateway routes, it does not filter. Their records are AllowedFlows, observer the
 * attachment; a record whose packets were all lost (no route, blackhole, MTU, TTL) is skipped:
 * a routing drop, not a policy denial.
 *
 * Endpoints are pkt-srcaddr / pkt-dstaddr when the format has them (the original addresses behind
 * a NAT or transit gateway interface), else srcaddr / dstaddr. Identity: `instance-id` is a vm
 * workload, but a record does not say which side is the instance unless the format has
 * `flow-direction` (ingress: the destination, egress: the source); without it the record stays IP
 * only rather than guess. Time: `start` (the first packet of the flow in the interval). Observer:
 * the `interface-id`. Id: hash of the record text.
 */

/** The fields only Transit Gateway flow logs have. */
const TGW_FIELDS = [
  'resource-type', 'tgw-id', 'tgw-attachment-id', 'tgw-src-vpc-account-id', 'tgw-dst-vpc-account-id',
  'tgw-src-vpc-id', 'tgw-dst-vpc-id', 'tgw-src-subnet-id', 'tgw-dst-subnet-id', 'tgw-src-eni', 'tgw-dst-eni',
  'tgw-src-az-id', 'tgw-dst-az-id', 'tgw-pair-attachment-id', 'packets-lost-no-route', 'packets-lost-blackhole',
  'packets-lost-mtu-exceeded', 'packets-lost-ttl-expired',
];

const KNOWN_FIELDS = new Set([
  'version', 'account-id', 'interface-id', 'srcaddr', 'dstaddr', 'srcport', 'dstport', 'protocol', 'packets',
  'bytes', 'start', 'end', 'action', 'log-status', 'vpc-id', 'subnet-id', 'instance-id', 'tcp-flags', 'type',
  'pkt-srcaddr', 'pkt-dstaddr', 'region', 'az-id', 'sublocation-type', 'sublocation-id', 'pkt-src-aws-service',
  'pkt-dst-aws-service', 'flow-direction', 'traffic-path', 'ecs-cluster-arn', 'ecs-cluster-name',
  'ecs-container-instance-arn', 'ecs-container-instance-id', 'ecs-container-id', 'ecs-second-container-id',
  'ecs-service-name', 'ecs-task-definition-arn', 'ecs-task-arn', 'ecs-task-id', 'reject-reason', 'resource-id',
  'encryption-status',
  ...TGW_FIELDS,
]);

/** Fields every record must have for a flow, and the ones used when present. */
const REQUIRED = ['srcaddr', 'dstaddr', 'dstport', 'protocol', 'action', 'start'] as const;
const OPTIONAL = [
  'srcport', 'instance-id', 'interface-id', 'flow-direction', 'pkt-srcaddr', 'pkt-dstaddr', 'tgw-id', 'tgw-attachment-id',
  'packets', 'packets-lost-no-route', 'packets-lost-blackhole', 'packets-lost-mtu-exceeded', 'packets-lost-ttl-expired',
] as const;
type Field = (typeof REQUIRED)[number] | (typeof OPTIONAL)[number];
const LOST = ['packets-lost-no-route', 'packets-lost-blackhole', 'packets-lost-mtu-exceeded', 'packets-lost-ttl-expired'] as const;

const STATE_KEY = 'vpcflow.format';

class VpcFormat {
  readonly index = new Map<string, number>();
  readonly missing: string[];
  /** A Transit Gateway flow log format: no action field, every record a routed flow. */
  readonly gateway: boolean;
  /** The required fields the records hold (action aside for a transit gateway). */
  readonly required: readonly Field[];
  /** Token index of each field a flow uses, -1 when the format lacks it. */
  readonly at: Readonly<Record<Field, number>>;
  constructor(
    readonly fields: readonly string[],
    readonly name: string,
  ) {
    fields.forEach((f, i) => this.index.set(f, i));
    this.gateway = this.index.has('tgw-id') || this.index.has('tgw-attachment-id');
    this.required = REQUIRED.filter((f) => !(this.gateway && f === 'action'));
    this.missing = this.required.filter((f) => !this.index.has(f));
    const at = {} as Record<Field, number>;
    for (const f of [...REQUIRED, ...OPTIONAL]) at[f] = this.index.get(f) ?? -1;
    this.at = at;
  }
}

const DEFAULT_FORMAT = new VpcFormat(
  'version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status'.split(' '),
  'the default version 2 format',
);

/** The Transit Gateway flow log default format (all fields, in AWS's order). */
const TGW_DEFAULT_FORMAT = new VpcFormat(
  ('version resource-type account-id tgw-id tgw-attachment-id tgw-src-vpc-account-id tgw-dst-vpc-account-id ' +
    'tgw-src-vpc-id tgw-dst-vpc-id tgw-src-subnet-id tgw-dst-subnet-id tgw-src-eni tgw-dst-eni tgw-src-az-id ' +
    'tgw-dst-az-id tgw-pair-attachment-id srcaddr dstaddr srcport dstport protocol packets bytes start end ' +
    'log-status type packets-lost-no-route packets-lost-blackhole packets-lost-mtu-exceeded packets-lost-ttl-expired ' +
    'tcp-flags region flow-direction pkt-src-aws-service pkt-dst-aws-service').split(' '),
  'the Transit Gateway default format',
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
  'tgw-id': Name.optional(),
  'tgw-attachment-id': Name.optional(),
  packets: CountText.optional(),
  'packets-lost-no-route': CountText.optional(),
  'packets-lost-blackhole': CountText.optional(),
  'packets-lost-mtu-exceeded': CountText.optional(),
  'packets-lost-ttl-expired': CountText.optional(),
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

/** The record's action token: a transit gateway routes every flow it logs. */
const actionOf = (tokens: readonly string[], format: VpcFormat): string | undefined =>
  format.gateway ? 'ACCEPT' : tokens[format.at.action];

function fastRecord(tokens: readonly string[], format: VpcFormat): VpcRecord | undefined {
  const at = format.at;
  const c = check.reset();
  const r: VpcRecord = {
    srcaddr: c.ip(tokens[at.srcaddr]),
    dstaddr: c.ip(tokens[at.dstaddr]),
    srcport: c.optPortText(optional(tokens, at.srcport)),
    dstport: c.portText(tokens[at.dstport]),
    protocol: c.protocolNumberText(tokens[at.protocol]),
    start: c.epochSecondsText(tokens[at.start]),
    action: c.oneOf(actionOf(tokens, format), ACTION_SET),
    'instance-id': c.optName(optional(tokens, at['instance-id'])),
    'interface-id': c.optName(optional(tokens, at['interface-id'])),
    'flow-direction': c.optOneOf(optional(tokens, at['flow-direction']), DIRECTION_SET),
    'pkt-srcaddr': c.optIp(optional(tokens, at['pkt-srcaddr'])),
    'pkt-dstaddr': c.optIp(optional(tokens, at['pkt-dstaddr'])),
    'tgw-id': c.optName(optional(tokens, at['tgw-id'])),
    'tgw-attachment-id': c.optName(optional(tokens, at['tgw-attachment-id'])),
    packets: c.optCountText(optional(tokens, at.packets)),
    'packets-lost-no-route': c.optCountText(optional(tokens, at['packets-lost-no-route'])),
    'packets-lost-blackhole': c.optCountText(optional(tokens, at['packets-lost-blackhole'])),
    'packets-lost-mtu-exceeded': c.optCountText(optional(tokens, at['packets-lost-mtu-exceeded'])),
    'packets-lost-ttl-expired': c.optCountText(optional(tokens, at['packets-lost-ttl-expired'])),
  };
  return c.doubt ? undefined : r;
}

function schemaRecord(tokens: readonly string[], format: VpcFormat): z.ZodSafeParseResult<VpcRecord> {
  const fields: Partial<Record<Field, string>> = {};
  for (const f of format.required) fields[f] = tokens[format.at[f]];
  fields.action = actionOf(tokens, format);
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

const MAX_DECLARED_FIELDS = 128;

/**
 * The field list of a declared format: an array of names, or AWS's LogFormat string
 * ("${version} ${srcaddr} ..."), or the names separated by spaces.
 */
export function vpcFieldList(declared: string | readonly string[]): string[] {
  if (typeof declared !== 'string') return [...declared];
  return declared
    .split(/\s+/)
    .filter(Boolean)
    .map((t) => (t.startsWith('${') && t.endsWith('}') ? t.slice(2, -1) : t));
}

/** Why a declared field list cannot be a flow log format, or undefined when it can. */
export function vpcFormatProblem(fields: readonly string[]): string | undefined {
  if (fields.length === 0 || fields.length > MAX_DECLARED_FIELDS) return `expected 1..${MAX_DECLARED_FIELDS} fields, got ${fields.length}`;
  const unknown = fields.find((f) => !KNOWN_FIELDS.has(f));
  if (unknown !== undefined) return `${show(unknown)} is not a VPC or Transit Gateway flow log field`;
  if (new Set(fields).size !== fields.length) return 'names a field twice';
  const missing = new VpcFormat(fields, 'declared').missing;
  return missing.length > 0 ? `lacks ${missing.join(', ')}, so its records cannot give flows` : undefined;
}

/** A format declared in the config: the field names (array or LogFormat string), checked. */
export const DeclaredVpcFields = z
  .union([z.string().max(8192), z.array(z.string().max(64)).max(MAX_DECLARED_FIELDS)], {
    error: 'expected the flow log fields, as a list of names or a LogFormat string ("${version} ${srcaddr} ...")',
  })
  .transform(vpcFieldList)
  .superRefine((fields, ctx) => {
    const problem = vpcFormatProblem(fields);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** Seeds a stream with the format its input declares (checked by vpcFormatProblem in the config). */
export function declareVpcFormat(ctx: StreamContext, fields: readonly string[]): void {
  ctx.state.set(STATE_KEY, new VpcFormat(fields, `the format declared for this input ("${fields.join(' ')}")`));
}

/** A transit gateway record with every packet lost was dropped by routing: no flow to report. */
function allLost(r: VpcRecord): boolean {
  if (r.packets === undefined || r.packets === 0) return false;
  let lost = 0;
  for (const f of LOST) lost += r[f] ?? 0;
  return lost >= r.packets;
}

/** The stream's format: declared or from a header, else the TGW default (recognized by its tgw- id), else the VPC default. */
function formatOf(tokens: readonly string[], ctx: StreamContext): VpcFormat {
  const stored = ctx.state.get(STATE_KEY);
  if (stored instanceof VpcFormat) return stored;
  return tokens.length === TGW_DEFAULT_FORMAT.fields.length && tokens[3]!.startsWith('tgw-') ? TGW_DEFAULT_FORMAT : DEFAULT_FORMAT;
}

function normalizeWith(record: RawRecord, ctx: StreamContext, fast: boolean): Outcome {
  const tokens = splitFields(record.text);
  if (tokens.length === 0) return reject('vpcflow: empty record');
  if (KNOWN_FIELDS.has(tokens[0]!)) return header(tokens, ctx);
  const format = formatOf(tokens, ctx);
  if (tokens.length !== format.fields.length) {
    return reject(`vpcflow: expected ${format.fields.length} fields (${format.name}), got ${tokens.length}`);
  }
  if (format.missing.length > 0) return reject(`vpcflow: ${format.missing.join(', ')}: not in ${format.name}`);
  const status = format.index.get('log-status');
  if (status !== undefined && (tokens[status] === 'NODATA' || tokens[status] === 'SKIPDATA')) {
    return skip(`vpcflow: log-status ${tokens[status]}`);
  }
  for (const f of format.required) if (tokens[format.at[f]] === '-') return skip(`vpcflow: ${f} is "-" (no data)`);
  let r = fast ? fastRecord(tokens, format) : undefined;
  if (r === undefined) {
    const parsed = schemaRecord(tokens, format);
    if (!parsed.success) return reject(rejectReason('vpcflow', parsed.error));
    r = parsed.data;
  }
  if (format.gateway && allLost(r)) return skip('vpcflow: every packet of the transit gateway flow was lost (dropped by routing, not by policy)');
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
    observer: { type: 'vpcflow', name: r['interface-id'] ?? r['tgw-attachment-id'] ?? r['tgw-id'] ?? 'vpcflow' },
  };
  if (r.action === 'REJECT') flow.policy = { id: 'vpcflow:REJECT', name: 'rejected by a security group or network ACL' };
  return events(flow);
}

const detect = (record: RawRecord, ctx?: StreamContext): boolean => {
  if (record.json !== undefined) return false;
  const t = record.text;
  if (t.includes('ACCEPT') || t.includes('REJECT') || t.includes('NODATA') || t.includes('SKIPDATA')) return true;
  return t.includes(' tgw-') || isVpcHeaderLine(t) || ctx?.state.get(STATE_KEY) instanceof VpcFormat;
};

export const vpcflow: Normalizer = { format: 'vpcflow', detect, normalize: (record, ctx) => normalizeWith(record, ctx, true) };

/** The same normalizer with zod alone deciding: the reference the fast path is tested and measured against. */
export const vpcflowSchemaOnly: Normalizer = {
  format: 'vpcflow',
  detect,
  normalize: (record, ctx) => normalizeWith(record, ctx, false),
};
