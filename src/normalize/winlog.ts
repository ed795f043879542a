import type { ZodError } from 'zod';
import { digitsValue, isJsonObject } from './common';

/**
 * The layouts a Windows event arrives in, brought to NXLog's flat one (event data fields beside
 * Hostname, EventID, SourceName, Channel, RecordNumber, @timestamp, TimeCreated), which wfp.ts
 * reads:
 *
 * - NXLog (im_msvistalog + to_json): already flat;
 * - Winlogbeat 7+ / Elastic Agent: `winlog.computer_name`, `winlog.event_id`, `winlog.record_id`,
 *   `winlog.provider_name`, `winlog.channel`, `winlog.time_created`, `winlog.event_data.*`.
 *   After Elastic's Sysmon ingest pipeline the network fields of Sysmon 3 have left event_data
 *   for ECS `source.*`, `destination.*` and `network.*`; they are read from there;
 * - Winlogbeat 6: `computer_name`, `event_id`, `record_number`, `source_name`, `log_name`,
 *   `event_data.*` at the top (the names Elastic's "Legacy Winlogbeat alias fields" map to 7's).
 *
 * Values are moved, not converted (a record id or port written as digits excepted), so the
 * schemas of wfp.ts judge them; `name` gives a flat field's path in the record as it came, for
 * reject reasons.
 */
export interface WindowsLayout {
  flat: Record<string, unknown>;
  name(flatKey: string): string;
}

const sameName = (k: string): string => k;
const NXLOG = (json: Record<string, unknown>): WindowsLayout => ({ flat: json, name: sameName });

/** The layout of a record, or NXLog's when it is neither Winlogbeat's 7+ nor 6 shape. */
export function windowsLayout(json: Record<string, unknown>): WindowsLayout {
  if (isJsonObject(json.winlog)) return winlogbeat7(json, json.winlog);
  if ('event_id' in json && ('computer_name' in json || 'event_data' in json)) return winlogbeat6(json);
  return NXLOG(json);
}

/** True when a record is in one of Winlogbeat's layouts (for detection). */
export function isWinlogbeat(json: Record<string, unknown>): boolean {
  const w = json.winlog;
  if (isJsonObject(w)) return 'event_id' in w;
  return 'event_id' in json && 'computer_name' in json;
}

function winlogbeat7(json: Record<string, unknown>, w: Record<string, unknown>): WindowsLayout {
  const paths: Record<string, string> = {
    Hostname: w.computer_name === undefined && isJsonObject(json.host) ? 'host.name' : 'winlog.computer_name',
    EventID: 'winlog.event_id',
    SourceName: 'winlog.provider_name',
    Channel: 'winlog.channel',
    RecordNumber: 'winlog.record_id',
    TimeCreated: 'winlog.time_created',
  };
  const flat = eventData(w.event_data);
  const host = isJsonObject(json.host) ? json.host.name : undefined;
  assign(flat, {
    Hostname: w.computer_name ?? host,
    EventID: w.event_id,
    SourceName: w.provider_name,
    Channel: w.channel,
    RecordNumber: recordNumber(w.record_id),
    '@timestamp': json['@timestamp'],
    TimeCreated: w.time_created,
  });
  const noAddresses = flat.SourceIp === undefined && flat.DestinationIp === undefined && flat.SourceAddress === undefined;
  if (noAddresses) fromEcs(json, flat, paths);
  return { flat, name: (k) => paths[k] ?? (k.startsWith('@') ? k : `winlog.event_data.${k}`) };
}

function winlogbeat6(json: Record<string, unknown>): WindowsLayout {
  const paths: Record<string, string> = {
    Hostname: 'computer_name',
    EventID: 'event_id',
    SourceName: 'source_name',
    Channel: 'log_name',
    RecordNumber: 'record_number',
  };
  const flat = eventData(json.event_data);
  assign(flat, {
    Hostname: json.computer_name,
    EventID: json.event_id,
    SourceName: json.source_name,
    Channel: json.log_name,
    RecordNumber: recordNumber(json.record_number),
    '@timestamp': json['@timestamp'],
  });
  return { flat, name: (k) => paths[k] ?? (k.startsWith('@') ? k : `event_data.${k}`) };
}

/** A copy of the event data object (none when it is not an object: its fields are then missing). */
function eventData(v: unknown): Record<string, unknown> {
  return isJsonObject(v) ? { ...v } : {};
}

/** The envelope's fields, over any event data field of the same name; absent ones left out. */
function assign(flat: Record<string, unknown>, envelope: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(envelope)) {
    if (v !== undefined) flat[k] = v;
    else delete flat[k];
  }
}

/** A record number written as digits ("7959006") is the number; anything else is left for the schema. */
function recordNumber(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  const n = digitsValue(v, 15);
  return n >= 0 ? n : v;
}

/** A port written as an integer, as ECS does, in the text form the event data has. */
const portText = (v: unknown): unknown => (typeof v === 'number' && Number.isInteger(v) ? String(v) : v);

const INITIATED: Readonly<Record<string, string>> = { egress: 'true', outbound: 'true', ingress: 'false', inbound: 'false' };

/** Sysmon 3's network fields from ECS, where Elastic's ingest pipeline put them. */
function fromEcs(json: Record<string, unknown>, flat: Record<string, unknown>, paths: Record<string, string>): void {
  const source = isJsonObject(json.source) ? json.source : undefined;
  const destination = isJsonObject(json.destination) ? json.destination : undefined;
  const network = isJsonObject(json.network) ? json.network : undefined;
  if (!source && !destination) return;
  const direction = network?.direction;
  Object.assign(paths, {
    SourceIp: 'source.ip',
    SourcePort: 'source.port',
    DestinationIp: 'destination.ip',
    DestinationPort: 'destination.port',
    Protocol: 'network.transport',
    Initiated: 'network.direction',
  });
  assign(flat, {
    SourceIp: source?.ip,
    SourcePort: portText(source?.port),
    DestinationIp: destination?.ip,
    DestinationPort: portText(destination?.port),
    Protocol: network?.transport,
    Initiated: typeof direction === 'string' && Object.hasOwn(INITIATED, direction) ? INITIATED[direction] : direction,
  });
  const proc = isJsonObject(json.process) ? json.process : undefined;
  if (flat.Image === undefined && proc?.executable !== undefined) flat.Image = proc.executable;
}

/** The schema's error with each issue's first path element renamed to the record's own path. */
export function inRecordPaths(error: ZodError, layout: WindowsLayout): ZodError {
  const issues = error.issues.map((i) => {
    const [first, ...rest] = i.path;
    return typeof first === 'string' ? { ...i, path: [...layout.name(first).split('.'), ...rest] } : i;
  });
  return { issues } as unknown as ZodError;
}
