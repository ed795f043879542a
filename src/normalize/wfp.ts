import { z } from 'zod';
import { EventTime, Name, type Endpoint, type Flow, type WorkloadRef } from '../events';
import { events, reject, skip, type Normalizer, type Outcome, type RawRecord } from './normalizer';
import {
  CanonIp,
  IsoTime,
  PortText,
  ProtocolNumberText,
  eventId,
  fitName,
  isGroupAddress,
  isJsonObject,
  protocolFromText,
  processNameOf,
  protocolName,
  rejectReason,
  show,
  textHash,
} from './common';
import { FieldCheck, valueSet } from './fast';
import { inRecordPaths, isWinlogbeat, windowsLayout, type WindowsLayout } from './winlog';

/**
 * Windows network telemetry in the NXLog JSON form (the OTRF lateral-movement recordings), and in
 * Winlogbeat's / Elastic Agent's layouts (7+ and 6), brought to NXLog's by winlog.ts:
 *
 * - Security 5157, the Windows Filtering Platform blocked a connection, and 5152, WFP blocked a
 *   packet -> DeniedFlow (policy = the WFP filter run-time id that blocked it);
 * - Security 5156, WFP permitted a connection -> AllowedFlow;
 * - Sysmon 3, network connection -> AllowedFlow;
 * - any other event -> skip.
 *
 * Identity: the event is logged on `Hostname`, so only the side of the flow that is that host
 * gets the host workload (id = FQDN lower-cased, name = short name). Checked against the
 * recordings: for 5156/5157 `Direction` %%14592 (inbound) puts the host's own address in
 * DestAddress (MORDORDC's 5157s: 172.18.39.5 -> 172.18.38.5), %%14593 (outbound) in
 * SourceAddress. For Sysmon, `Initiated: true` means SourceIp is the host; `Initiated: false`
 * means DestinationIp is the host for TCP only: Sysmon's UDP records with Initiated=false are
 * often the host's own reply (a DC's DNS answer from :53), so UDP inbound stays IP-only.
 * A local side whose address is multicast/broadcast is not the host; a flow from the host's
 * address to itself (loopback, ::1) names the host on both sides.
 *
 * Hints (events.ts): `direction` from Direction / Initiated, and `process`, the file name of
 * `Application` (WFP) or `Image` (Sysmon), lower-cased; a value that is not a short printable
 * path is left out, never a reason to refuse the record.
 *
 * Time: `@timestamp` (UTC, the time the ground truth of the recordings uses), else
 * `TimeCreated` (Winlogbeat: `winlog.time_created`), else Sysmon's `UtcTime`, else NXLog's
 * `EventTime` when it carries a zone ("2020-09-17 17:31:45-04:00", or ISO-8601 with a zone, as
 * NXLog writes it with a DateFormat that has one). NXLog's default EventTime is local time
 * without a zone: it cannot be placed in time, and a record with no other time is refused.
 * Id: `wfp:<fqdn>:<RecordNumber>` (Sysmon: `wfp:<fqdn>:sysmon:<RecordNumber>`, the two logs
 * number their records separately); records without RecordNumber use the hash of the text.
 */

/** Sysmon's UtcTime, "2020-08-05 07:48:23.009" (UTC, no zone marker). */
const SysmonUtcTime = z
  .string()
  .transform((s, ctx): number => {
    const t = sysmonUtcMs(s);
    if (Number.isNaN(t)) {
      ctx.issues.push({ code: 'custom', input: s, message: `expected "YYYY-MM-DD hh:mm:ss.fff" (UTC), got ${show(s)}` });
      return z.NEVER;
    }
    return t;
  })
  .pipe(EventTime);

/** Epoch ms of a Sysmon UtcTime, or NaN. */
function sysmonUtcMs(s: string): number {
  return s.length >= 19 && s.charCodeAt(10) === 32 ? Date.parse(`${s.slice(0, 10)}T${s.slice(11)}Z`) : NaN;
}

/** NXLog's EventTime with a zone: "YYYY-MM-DD hh:mm:ss[.f]" or ISO-8601, then Z or ±hh[:]mm. */
const ZONED_TIME = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d{1,9})? ?(Z|[+-]\d{2}:?\d{2})$/;

/** Epoch ms of an EventTime that carries a zone, NaN when it has none or is not a time. */
function zonedTimeMs(s: string): number {
  if (s.length < 20) return NaN; // "YYYY-MM-DD hh:mm:ss" and no room for a zone: NXLog's default
  const m = ZONED_TIME.exec(s);
  if (!m) return NaN;
  const [, date, time, fraction = '', zone] = m as unknown as [string, string, string, string | undefined, string];
  const offset = zone === 'Z' || zone.includes(':') ? zone : `${zone.slice(0, 3)}:${zone.slice(3)}`;
  return Date.parse(`${date}T${time}${fraction.slice(0, 4)}${offset}`);
}

/** NaN (no zone: unusable, but no reason to refuse the record) or epoch ms within EventTime. */
const NxlogEventTime = z
  .string()
  .transform(zonedTimeMs)
  .pipe(z.union([EventTime, z.nan()]));

const DIRECTIONS = ['%%14592', '%%14593', 'Inbound', 'Outbound'] as const;
const INITIATED = ['true', 'false'] as const;

const envelope = {
  Hostname: Name,
  RecordNumber: z.number().int().nonnegative().optional(),
  '@timestamp': IsoTime.optional(),
  TimeCreated: IsoTime.optional(),
  EventTime: NxlogEventTime.optional(),
};

const WfpConnection = z.object({
  ...envelope,
  SourceAddress: CanonIp,
  SourcePort: PortText,
  DestAddress: CanonIp,
  DestPort: PortText,
  Protocol: ProtocolNumberText,
  Direction: z.enum(DIRECTIONS),
  FilterRTID: Name.optional(),
  Application: z.unknown().transform(processNameOf).optional(),
});

const SysmonConnection = z.object({
  ...envelope,
  UtcTime: SysmonUtcTime.optional(),
  SourceIp: CanonIp,
  SourcePort: PortText,
  DestinationIp: CanonIp,
  DestinationPort: PortText,
  Protocol: Name,
  Initiated: z.enum(INITIATED),
  Image: z.unknown().transform(processNameOf).optional(),
});
type WfpConnection = z.infer<typeof WfpConnection>;
type SysmonConnection = z.infer<typeof SysmonConnection>;

// The fast path: the same fields checked by hand (see fast.ts); on any doubt zod decides.
const check = new FieldCheck();
const DIRECTION_SET = valueSet(DIRECTIONS);
const INITIATED_SET = valueSet(INITIATED);

function fastEventTime(c: FieldCheck, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const ms = zonedTimeMs(c.string(v));
  return Number.isNaN(ms) ? ms : c.eventTime(ms);
}

/** An EventTime that gave a time (NaN: it had no zone). */
const zoned = (t: number | undefined): number | undefined => (t === undefined || Number.isNaN(t) ? undefined : t);

function fastWfp(json: Record<string, unknown>): WfpConnection | undefined {
  const c = check.reset();
  const r: WfpConnection = {
    Hostname: c.name(json.Hostname),
    RecordNumber: c.optCount(json.RecordNumber),
    '@timestamp': c.optIsoTime(json['@timestamp']),
    TimeCreated: c.optIsoTime(json.TimeCreated),
    EventTime: fastEventTime(c, json.EventTime),
    SourceAddress: c.ip(json.SourceAddress),
    SourcePort: c.portText(json.SourcePort),
    DestAddress: c.ip(json.DestAddress),
    DestPort: c.portText(json.DestPort),
    Protocol: c.protocolNumberText(json.Protocol),
    Direction: c.oneOf(json.Direction, DIRECTION_SET),
    FilterRTID: c.optName(json.FilterRTID),
    Application: processNameOf(json.Application),
  };
  return c.doubt ? undefined : r;
}

function fastSysmon(json: Record<string, unknown>): SysmonConnection | undefined {
  const c = check.reset();
  const r: SysmonConnection = {
    Hostname: c.name(json.Hostname),
    RecordNumber: c.optCount(json.RecordNumber),
    '@timestamp': c.optIsoTime(json['@timestamp']),
    TimeCreated: c.optIsoTime(json.TimeCreated),
    EventTime: fastEventTime(c, json.EventTime),
    UtcTime: json.UtcTime === undefined ? undefined : c.eventTime(sysmonUtcMs(c.string(json.UtcTime))),
    SourceIp: c.ip(json.SourceIp),
    SourcePort: c.portText(json.SourcePort),
    DestinationIp: c.ip(json.DestinationIp),
    DestinationPort: c.portText(json.DestinationPort),
    Protocol: c.name(json.Protocol),
    Initiated: c.oneOf(json.Initiated, INITIATED_SET),
    Image: processNameOf(json.Image),
  };
  return c.doubt ? undefined : r;
}

const SYSMON_PROVIDER = 'Microsoft-Windows-Sysmon';
const SYSMON_CHANNEL = 'Microsoft-Windows-Sysmon/Operational';

function hostRef(hostname: string): WorkloadRef {
  const dot = hostname.indexOf('.');
  const short = dot > 0 ? hostname.slice(0, dot) : hostname;
  return { kind: 'host', id: hostname.toLowerCase(), name: short, labels: {} };
}

/** Builds the two endpoints, giving the host identity to the local side (see above). */
function endpoints(
  srcIp: string,
  srcPort: number,
  dstIp: string,
  dstPort: number,
  local: 'src' | 'dst' | undefined,
  hostname: string,
): [Endpoint, Endpoint] {
  const src: Endpoint = { ip: srcIp, port: srcPort };
  const dst: Endpoint = { ip: dstIp, port: dstPort };
  const localIp = local === 'src' ? srcIp : local === 'dst' ? dstIp : undefined;
  if (localIp !== undefined && !isGroupAddress(localIp)) {
    const host = hostRef(hostname);
    if (local === 'src' || srcIp === dstIp) src.workload = host;
    if (local === 'dst' || srcIp === dstIp) dst.workload = host;
  }
  return [src, dst];
}

function noTime(layout: WindowsLayout, eventTime: unknown, also: string): Outcome {
  const why = typeof eventTime === 'string' ? `; EventTime ${show(eventTime)} has no time zone` : '';
  return reject(`wfp: @timestamp: required (no @timestamp, ${layout.name('TimeCreated')}${also} or EventTime with a time zone${why})`);
}

function wfpFlow(record: RawRecord, layout: WindowsLayout, blocked: boolean, fast: boolean): Outcome {
  const json = layout.flat;
  let r = fast ? fastWfp(json) : undefined;
  if (r === undefined) {
    const parsed = WfpConnection.safeParse(json);
    if (!parsed.success) return reject(rejectReason('wfp', inRecordPaths(parsed.error, layout)));
    r = parsed.data;
  }
  const time = r['@timestamp'] ?? r.TimeCreated ?? zoned(r.EventTime);
  if (time === undefined) return noTime(layout, json.EventTime, '');
  const host = r.Hostname.toLowerCase();
  const inbound = r.Direction === '%%14592' || r.Direction === 'Inbound';
  const local = inbound ? 'dst' : 'src';
  const [src, dst] = endpoints(r.SourceAddress, r.SourcePort, r.DestAddress, r.DestPort, local, r.Hostname);
  const flow: Flow = {
    id:
      r.RecordNumber === undefined
        ? `wfp:${textHash(record.text)}`
        : eventId('wfp', `${host}:${r.RecordNumber}`, record.text),
    time,
    src,
    dst,
    protocol: protocolName(r.Protocol),
    dstPort: r.DestPort,
    action: blocked ? 'denied' : 'allowed',
    observer: { type: 'wfp', name: host },
    direction: inbound ? 'inbound' : 'outbound',
  };
  if (r.Application !== undefined) flow.process = r.Application;
  if (blocked && r.FilterRTID !== undefined) {
    const id = fitName(`wfp:filter/${r.FilterRTID}`, 'wfp:filter');
    flow.policy = { id, name: fitName(`WFP filter (run-time id ${r.FilterRTID})`, 'WFP filter') };
  }
  return events(flow);
}

function sysmonFlow(record: RawRecord, layout: WindowsLayout, fast: boolean): Outcome {
  const json = layout.flat;
  let r = fast ? fastSysmon(json) : undefined;
  if (r === undefined) {
    const parsed = SysmonConnection.safeParse(json);
    if (!parsed.success) return reject(rejectReason('wfp', inRecordPaths(parsed.error, layout)));
    r = parsed.data;
  }
  const time = r['@timestamp'] ?? r.TimeCreated ?? r.UtcTime ?? zoned(r.EventTime);
  if (time === undefined) return noTime(layout, json.EventTime, ', UtcTime');
  const host = r.Hostname.toLowerCase();
  const protocol = protocolFromText(r.Protocol);
  const local = r.Initiated === 'true' ? 'src' : protocol === 'tcp' ? 'dst' : undefined;
  const [src, dst] = endpoints(r.SourceIp, r.SourcePort, r.DestinationIp, r.DestinationPort, local, r.Hostname);
  const flow: Flow = {
    id:
      r.RecordNumber === undefined
        ? `wfp:${textHash(record.text)}`
        : eventId('wfp', `${host}:sysmon:${r.RecordNumber}`, record.text),
    time,
    src,
    dst,
    protocol,
    dstPort: r.DestinationPort,
    action: 'allowed',
    observer: { type: 'sysmon', name: host },
    direction: r.Initiated === 'true' ? 'outbound' : 'inbound',
  };
  if (r.Image !== undefined) flow.process = r.Image;
  return events(flow);
}

function normalizeWith(record: RawRecord, fast: boolean): Outcome {
  if (!isJsonObject(record.json)) return reject('wfp: expected a JSON object');
  const layout = windowsLayout(record.json);
  const json = layout.flat;
  const raw = json.EventID;
  const eid = typeof raw === 'string' && raw.length > 0 ? Number(raw) : raw;
  if (typeof eid !== 'number' || !Number.isInteger(eid)) {
    return reject(`wfp: ${layout.name('EventID')}: expected an event id number, got ${show(raw)}`);
  }
  const sysmon = json.SourceName === SYSMON_PROVIDER || json.Channel === SYSMON_CHANNEL;
  if (sysmon) return eid === 3 ? sysmonFlow(record, layout, fast) : skip(`wfp: Sysmon event ${eid} is not a network connection`);
  if (eid === 5157 || eid === 5152) return wfpFlow(record, layout, true, fast);
  if (eid === 5156) return wfpFlow(record, layout, false, fast);
  return skip(`wfp: event ${eid} is not network telemetry`);
}

const detect = (record: RawRecord): boolean => {
  const j = record.json;
  return isJsonObject(j) && (('EventID' in j && ('Hostname' in j || 'Channel' in j)) || isWinlogbeat(j));
};

export const wfp: Normalizer = { format: 'wfp', detect, normalize: (record) => normalizeWith(record, true) };

/** The same normalizer with zod alone deciding: the reference the fast path is tested and measured against. */
export const wfpSchemaOnly: Normalizer = { format: 'wfp', detect, normalize: (record) => normalizeWith(record, false) };
