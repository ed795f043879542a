import type { CordonEvent } from '../events';

export const FORMATS = ['wfp', 'hubble', 'calico', 'vpcflow', 'illumio', 'zeek', 'ocsf', 'cordon'] as const;
export type Format = (typeof FORMATS)[number];

/** One raw record as it came off the wire or out of a file: its text, and its JSON if it is JSON. */
export interface RawRecord {
  text: string;
  json?: unknown;
}

/**
 * What a normalizer made of one record:
 * - events: zero or more internal events (a permitted flow is an AllowedFlow, never a denial);
 * - skip: a well-formed record that carries no network telemetry Cordon uses (not an error);
 * - reject: a record that is malformed for its format; the reason names the field.
 */
export type Outcome =
  | { kind: 'events'; events: CordonEvent[] }
  | { kind: 'skip'; reason: string }
  | { kind: 'reject'; reason: string };

/** Per-stream state a normalizer may keep between records (e.g. a VPC flow log header line). */
export interface StreamContext {
  state: Map<string, unknown>;
}

export interface Normalizer {
  readonly format: Format;
  /** Cheap test whether a record looks like this format, for per-record detection (`ctx`: its stream's state). */
  detect(record: RawRecord, ctx?: StreamContext): boolean;
  normalize(record: RawRecord, ctx: StreamContext): Outcome;
}

export const events = (...list: CordonEvent[]): Outcome => ({ kind: 'events', events: list });
export const skip = (reason: string): Outcome => ({ kind: 'skip', reason });
export const reject = (reason: string): Outcome => ({ kind: 'reject', reason });
