import { z } from 'zod';
import { Labels, Name } from '../events';
import { CanonIp, ISO_DATETIME_PATTERN, digitsValue } from './common';

/**
 * Field checks for the normalizers' fast path. Each one returns the value the field's zod schema
 * would produce, when it is certain the schema accepts the input; otherwise it sets `doubt` and
 * returns a placeholder. A record with any doubt goes to the zod schema, which gives the verdict
 * and the reject reason, so reasons are zod's by construction. Where a check only covers the
 * common case (printable ASCII names, IPv4), the rest is handed to that field's own schema.
 *
 * The bounds below are those of events.ts (Name, Port, EventTime, Labels); the equivalence tests
 * (test/normalize/fast-path.test.ts) probe each one on both sides.
 */
export class FieldCheck {
  doubt = false;

  /** Starts a record. */
  reset(): this {
    this.doubt = false;
    return this;
  }

  /** Marks the record doubtful; returns the placeholder so a check can end in one expression. */
  fail<T>(placeholder: T): T {
    this.doubt = true;
    return placeholder;
  }

  string(v: unknown): string {
    return typeof v === 'string' ? v : this.fail('');
  }

  optString(v: unknown): string | undefined {
    return v === undefined ? undefined : this.string(v);
  }

  boolean(v: unknown): boolean {
    return typeof v === 'boolean' ? v : this.fail(false);
  }

  optBoolean(v: unknown): boolean | undefined {
    return v === undefined ? undefined : this.boolean(v);
  }

  number(v: unknown): number {
    return typeof v === 'number' && Number.isFinite(v) ? v : this.fail(0);
  }

  optNumber(v: unknown): number | undefined {
    return v === undefined ? undefined : this.number(v);
  }

  /** `Name`: 1..256 chars, no control or invisible characters. */
  name(v: unknown): string {
    if (typeof v === 'string' && v.length >= 1 && v.length <= MAX_NAME && printableAscii(v)) return v;
    return this.viaSchema(Name, v, '');
  }

  optName(v: unknown): string | undefined {
    return v === undefined ? undefined : this.name(v);
  }

  /** `CanonIp`: an IPv4 address is its own canonical text; anything else asks the schema. */
  ip(v: unknown): string {
    if (typeof v === 'string' && v.length <= 15 && IPV4.test(v)) return v;
    return this.viaSchema(CanonIp, v, '');
  }

  optIp(v: unknown): string | undefined {
    return v === undefined ? undefined : this.ip(v);
  }

  /** `Port`: an integer 0..65535. */
  port(v: unknown): number {
    return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 65535 ? v : this.fail(0);
  }

  optPort(v: unknown): number | undefined {
    return v === undefined ? undefined : this.port(v);
  }

  /** `z.number().int().nonnegative()`. */
  count(v: unknown): number {
    return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : this.fail(0);
  }

  optCount(v: unknown): number | undefined {
    return v === undefined ? undefined : this.count(v);
  }

  /** `PortText`: "0".."65535" in at most 5 digits. */
  portText(v: unknown): number {
    const n = typeof v === 'string' ? digitsValue(v, 5) : -1;
    return n >= 0 && n <= 65535 ? n : this.fail(0);
  }

  optPortText(v: unknown): number | undefined {
    return v === undefined ? undefined : this.portText(v);
  }

  /** `CountText`: at most 15 digits. */
  countText(v: unknown): number {
    const n = typeof v === 'string' ? digitsValue(v, 15) : -1;
    return n >= 0 ? n : this.fail(0);
  }

  optCountText(v: unknown): number | undefined {
    return v === undefined ? undefined : this.countText(v);
  }

  /** `ProtocolNumberText`: "0".."255" in at most 3 digits. */
  protocolNumberText(v: unknown): number {
    const n = typeof v === 'string' ? digitsValue(v, 3) : -1;
    return n >= 0 && n <= 255 ? n : this.fail(0);
  }

  /** `EpochSecondsText`: at most 12 digits, as epoch ms within EventTime. */
  epochSecondsText(v: unknown): number {
    const n = typeof v === 'string' ? digitsValue(v, 12) : -1;
    return n >= 0 ? this.eventTime(n * 1000) : this.fail(0);
  }

  /** `EpochSeconds`: a number, as epoch ms (floored) within EventTime. */
  epochSeconds(v: unknown): number {
    return typeof v === 'number' ? this.eventTime(Math.floor(v * 1000)) : this.fail(0);
  }

  /** `IsoTime`: the schema's own datetime pattern, then Date.parse within EventTime. */
  isoTime(v: unknown): number {
    return typeof v === 'string' && ISO_DATETIME_PATTERN.test(v) ? this.eventTime(Date.parse(v)) : this.fail(0);
  }

  optIsoTime(v: unknown): number | undefined {
    return v === undefined ? undefined : this.isoTime(v);
  }

  /** `EventTime`: integer epoch ms in [2000, 2100]. */
  eventTime(ms: number): number {
    return Number.isSafeInteger(ms) && ms >= MIN_TIME && ms <= MAX_TIME ? ms : this.fail(0);
  }

  /** `z.enum(values)`: one of the set's strings. */
  oneOf<T extends string>(v: unknown, values: ReadonlySet<string>): T {
    return typeof v === 'string' && values.has(v) ? (v as T) : this.fail('' as T);
  }

  optOneOf<T extends string>(v: unknown, values: ReadonlySet<string>): T | undefined {
    return v === undefined ? undefined : this.oneOf<T>(v, values);
  }

  /** A JSON object whose fields the caller checks next. */
  object(v: unknown): Record<string, unknown> {
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : this.fail(EMPTY);
  }

  /** Contract `Labels` built by the caller from the record: keys and values within bounds. */
  labels(out: Record<string, string>): Record<string, string> {
    for (const key in out) {
      const value = out[key]!;
      if (key.length > MAX_LABEL_KEY || !printableAscii(key) || FORBIDDEN_KEYS.has(key) || value.length > MAX_NAME) {
        return this.viaSchema(Labels, out, out);
      }
    }
    return out;
  }

  private viaSchema<T>(schema: z.ZodType<T>, v: unknown, placeholder: T): T {
    const r = schema.safeParse(v);
    return r.success ? r.data : this.fail(placeholder);
  }
}

/** z.ipv4()'s own pattern. */
const IPV4 = z.regexes.ipv4;
const MAX_NAME = 256;
const MAX_LABEL_KEY = 317;
const MIN_TIME = 946684800000;
const MAX_TIME = 4102444800000;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const EMPTY: Record<string, unknown> = Object.freeze({});

/** Non-empty printable ASCII (space..tilde): none of it is a control or invisible character. */
function printableAscii(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 32 || c > 126) return false;
  }
  return true;
}

/** A set for `oneOf`, from a zod enum's values. */
export const valueSet = (values: readonly string[]): ReadonlySet<string> => new Set(values);
