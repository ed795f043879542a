import { reject, skip, type Outcome, type StreamContext } from './normalizer';
import { digitsValue, show } from './common';

/**
 * Zeek's default log format, the ASCII writer's TSV: header lines (`#separator \x09`,
 * `#set_separator`, `#empty_field`, `#unset_field`, `#path`, `#open`, `#fields`, `#types`,
 * `#close`), then one record per line. The header is kept per stream (StreamContext) and applies
 * to the records that follow it; a `#separator` line starts a new log. A record becomes the
 * object Zeek's JSON writer would have written (unset fields left out, `time`, `interval`, `port`
 * and `count` columns as numbers), so the JSON path's schema and fast path decide it.
 *
 * Only the columns a flow needs are read and typed: ts (time), uid (string), id.orig_h / id.resp_h
 * (addr), id.orig_p / id.resp_p (port), proto (enum), conn_state (string); a header that lacks
 * one of them, or declares another type for it, is rejected with the field named. `service`
 * (string) is read as a hint when present and typed so, and otherwise ignored. Other columns
 * (duration, bytes, history, tunnel_parents, ...) are counted but not read.
 */

const STATE_KEY = 'zeek.tsv';
const MAX_FIELDS = 256;
const MAX_FIELD_NAME = 128;
const MAX_META = 32;

/** The columns read, with the Zeek types accepted for each. */
const COLUMNS: Readonly<Record<string, readonly string[]>> = {
  ts: ['time'],
  uid: ['string'],
  'id.orig_h': ['addr'],
  'id.orig_p': ['port'],
  'id.resp_h': ['addr'],
  'id.resp_p': ['port'],
  proto: ['enum'],
  conn_state: ['string'],
  service: ['string'], // a hint: read only when typed so, never a reason to refuse the header
};
const HINTS = new Set(['service']);
const REQUIRED = ['ts', 'uid', 'id.orig_h', 'id.orig_p', 'id.resp_h', 'id.resp_p', 'proto'];

interface Header {
  separator: string;
  emptyField: string;
  unsetField: string;
  path?: string;
  fields?: string[];
  /** Column index and type of each column read, once #types has been accepted. */
  read?: { name: string; at: number; type: string }[];
}

const fresh = (): Header => ({ separator: '\t', emptyField: '(empty)', unsetField: '-' });
const FRESH: Readonly<Header> = Object.freeze(fresh());

/** The stream's header, never changed in place: a header line that changes it puts a new one. */
function headerOf(ctx: StreamContext): Readonly<Header> {
  return (ctx.state.get(STATE_KEY) as Header | undefined) ?? FRESH;
}

/** Zeek's `\xHH` escapes (the writer escapes the separator and non-printable bytes that way). */
function unescape(s: string): string {
  if (s.indexOf('\\x') === -1) return s;
  return s.replace(/\\x([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** True when the text is a Zeek TSV header line (a known `#` directive). */
export function isZeekHeaderLine(text: string): boolean {
  return /^#(separator|set_separator|empty_field|unset_field|path|open|close|fields|types)[ \t]/.test(text);
}

/** True when a previous header of this stream declared the columns of a Zeek TSV log. */
export function hasZeekHeader(ctx: StreamContext | undefined): boolean {
  return (ctx?.state.get(STATE_KEY) as Header | undefined)?.read !== undefined;
}

function metaValue(name: string, value: string): string | Outcome {
  const v = unescape(value);
  if (v.length === 0 || v.length > MAX_META) return reject(`zeek: #${name}: expected 1..${MAX_META} characters, got ${show(value)}`);
  return v;
}

/**
 * A header line's outcome. The stream's header is replaced, not changed in place, and only when
 * the line changes it, so a caller can tell a line that changed the stream's state (the ingest
 * keeps those lines to rebuild the state after a rebalance: src/ingest/stream-headers.ts).
 */
function header(line: string, ctx: StreamContext): Outcome {
  const before = headerOf(ctx);
  const h: Header = { ...before };
  const outcome = readHeader(line, h);
  if (HEADER_KEYS.some((k) => h[k] !== before[k])) ctx.state.set(STATE_KEY, h);
  return outcome;
}

const HEADER_KEYS = ['separator', 'emptyField', 'unsetField', 'path', 'fields', 'read'] as const;

function readHeader(line: string, h: Header): Outcome {
  if (line.startsWith('#separator ')) {
    const sep = metaValue('separator', line.slice('#separator '.length).trimEnd());
    if (typeof sep !== 'string') return sep;
    Object.assign(h, fresh(), { separator: sep, path: undefined, fields: undefined, read: undefined });
    return skip('zeek: TSV header #separator (a new log begins)');
  }
  const parts = line.replace(/\r$/, '').split(h.separator);
  const name = parts[0]!.slice(1);
  const values = parts.slice(1);
  switch (name) {
    case 'set_separator':
    case 'empty_field':
    case 'unset_field': {
      const v = metaValue(name, values.join(h.separator));
      if (typeof v !== 'string') return v;
      // set_separator is checked, not kept: no set column is read
      if (name === 'empty_field') h.emptyField = v;
      else if (name === 'unset_field') h.unsetField = v;
      return skip(`zeek: TSV header #${name}`);
    }
    case 'path': {
      const v = metaValue(name, values.join(h.separator));
      if (typeof v !== 'string') return v;
      h.path = v;
      return skip('zeek: TSV header #path');
    }
    case 'open':
    case 'close':
      return skip(`zeek: TSV header #${name}`);
    case 'fields':
      return fieldsLine(h, values);
    case 'types':
      return typesLine(h, values);
    default:
      return reject(`zeek: unknown TSV header line ${show(line.slice(0, 24))}`);
  }
}

function fieldsLine(h: Header, names: string[]): Outcome {
  h.fields = undefined;
  h.read = undefined;
  if (names.length === 0 || names.length > MAX_FIELDS) {
    return reject(`zeek: #fields: expected 1..${MAX_FIELDS} field names, got ${names.length}`);
  }
  const bad = names.find((n) => n.length === 0 || n.length > MAX_FIELD_NAME || !/^[\x21-\x7e]+$/.test(n));
  if (bad !== undefined) return reject(`zeek: #fields: ${show(bad)} is not a field name`);
  if (new Set(names).size !== names.length) return reject('zeek: #fields: names a field twice');
  h.fields = names;
  return skip('zeek: TSV header #fields');
}

function typesLine(h: Header, types: string[]): Outcome {
  h.read = undefined;
  const fields = h.fields;
  if (!fields) return reject('zeek: #types: no #fields line before it');
  if (types.length !== fields.length) {
    return reject(`zeek: #types: ${types.length} types for ${fields.length} fields`);
  }
  const missing = REQUIRED.filter((f) => !fields.includes(f));
  if (missing.length > 0) return reject(`zeek: #fields: lacks ${missing.join(', ')}, so its records cannot give flows`);
  const read: NonNullable<Header['read']> = [];
  for (const [name, accepted] of Object.entries(COLUMNS)) {
    const at = fields.indexOf(name);
    if (at < 0) continue;
    const type = types[at]!;
    if (!accepted.includes(type) && HINTS.has(name)) continue;
    if (!accepted.includes(type)) return reject(`zeek: #types: ${name}: expected ${accepted.join(' or ')}, got ${show(type)}`);
    read.push({ name, at, type });
  }
  h.read = read;
  return skip('zeek: TSV header #types');
}

/** A `time` or `interval` value: decimal seconds, as Zeek writes them ("1521911721.255387"). */
const SECONDS = /^-?\d{1,12}(\.\d{1,9})?$/;

/** One column's value as Zeek's JSON writer types it; text the type refuses stays text, for the schema to name. */
function typed(value: string, type: string, h: Header): unknown {
  if (value === h.emptyField) return type === 'string' ? '' : value;
  switch (type) {
    case 'time':
    case 'interval':
      return SECONDS.test(value) ? Number(value) : value;
    case 'port':
    case 'count': {
      const n = digitsValue(value, 15);
      return n >= 0 ? n : value;
    }
    default:
      return unescape(value);
  }
}

export type TsvRecord = { kind: 'record'; json: Record<string, unknown> } | { kind: 'outcome'; outcome: Outcome };

/** A Zeek TSV line: a header line (its outcome) or a record (as the object Zeek's JSON writer would write). */
export function readTsvLine(text: string, ctx: StreamContext): TsvRecord {
  const line = text.endsWith('\n') ? text.replace(/\r?\n$/, '') : text;
  if (line.startsWith('#')) return { kind: 'outcome', outcome: header(line, ctx) };
  const h = headerOf(ctx);
  if (!h.fields || !h.read) {
    return { kind: 'outcome', outcome: reject('zeek: not JSON, and no Zeek TSV #fields / #types header before it on this stream') };
  }
  if (h.path !== undefined && h.path !== 'conn') {
    return { kind: 'outcome', outcome: skip(`zeek: a record of ${show(h.path)}, not of conn.log`) };
  }
  const tokens = line.split(h.separator);
  if (tokens.length !== h.fields.length) {
    return { kind: 'outcome', outcome: reject(`zeek: expected ${h.fields.length} fields (the #fields header), got ${tokens.length}`) };
  }
  const json: Record<string, unknown> = {};
  for (const c of h.read) {
    const v = tokens[c.at]!;
    if (v !== h.unsetField) json[c.name] = typed(v, c.type, h);
  }
  return { kind: 'record', json };
}
