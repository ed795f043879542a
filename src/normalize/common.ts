import { hash } from 'node:crypto';
import { z, type ZodError } from 'zod';
import { APP_PROTOCOLS, EventTime, Ip, PROCESS_NAME, type Labels, type Protocol } from '../events';
import { describeIssues } from '../validation';

/**
 * Small helpers shared by the normalizers: protocol names, event ids, addresses, time and
 * label building blocks for the vendor schemas. Every schema here yields values that already
 * satisfy the contracts of events.ts, so a normalizer builds its event without a second parse.
 */

/** IANA protocol number to contract protocol name. */
export function protocolName(n: number): Protocol {
  switch (n) {
    case 6:
      return 'tcp';
    case 17:
      return 'udp';
    case 1:
      return 'icmp';
    case 58:
      return 'icmpv6';
    case 132:
      return 'sctp';
    default:
      return 'other';
  }
}

/** A protocol given by name ("tcp", "ICMPv6", "icmp6") or by number as text ("6"). */
export function protocolFromText(s: string): Protocol {
  const c = s.charCodeAt(0);
  if (c >= 48 && c <= 57) return protocolName(Number(s));
  switch (s.toLowerCase()) {
    case 'tcp':
      return 'tcp';
    case 'udp':
      return 'udp';
    case 'icmp':
    case 'icmpv4':
      return 'icmp';
    case 'icmp6':
    case 'icmpv6':
    case 'ipv6-icmp':
      return 'icmpv6';
    case 'sctp':
      return 'sctp';
    default:
      return 'other';
  }
}

/** Short deterministic id for records that carry none: first 20 hex chars of SHA-1 of the raw text. */
export function textHash(text: string): string {
  return hash('sha1', text, 'hex').slice(0, 20);
}

/**
 * An event id `<format>:<parts>`; falls back to the hash of the raw text when the parts would
 * not fit in a Name (256 chars). Parts must come from Name-validated fields or numbers.
 */
export function eventId(format: string, parts: string, text: string): string {
  const id = `${format}:${parts}`;
  return id.length <= 256 ? id : `${format}:${textHash(text)}`;
}

/** Invisible and bidi-control characters JSON.stringify leaves as they are. */
const INVISIBLE = /[\u007f-\u00a0\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]/g;

/** Text for a reason or a log line, with invisible and bidi-control characters written as \uXXXX. */
export const escapeInvisible = (s: string): string =>
  s.replace(INVISIBLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** A value for a reject reason: JSON-quoted, invisible characters escaped, bounded. */
export function show(v: unknown): string {
  const s = escapeInvisible(v === undefined ? 'nothing' : (JSON.stringify(v) ?? String(v)));
  return s.length > 48 ? `${s.slice(0, 45)}...` : s;
}

/** `preferred` when it fits in a Name (256 chars), else `fallback` (itself a valid Name). */
export function fitName(preferred: string, fallback: string): string {
  return preferred.length <= 256 ? preferred : fallback;
}

/**
 * `<format>: <field>: <why>` for every issue (at most five), e.g. `wfp: DestPort: expected ...`.
 * A refused record key ("Invalid key in record") also says why it was refused.
 */
export function rejectReason(format: string, error: ZodError): string {
  const issues = error.issues.map((i) => {
    // Paths hold record keys from the input: bound each, and escape what could hide in them.
    const path = i.path.map((p) => (typeof p === 'string' && p.length > 40 ? `${p.slice(0, 37)}...` : p));
    const message = i.code === 'invalid_key' ? `invalid key: ${i.issues.map((n) => n.message).join(', ')}` : i.message;
    return { ...i, path, message };
  });
  return escapeInvisible(`${format}: ${describeIssues({ issues } as ZodError)}`);
}

/**
 * Canonical text of an address, so one host has one entity key whatever the source wrote:
 * IPv6 compressed and lower-cased (`0:0:0:0:0:0:0:1` -> `::1`), IPv4-mapped IPv6 as IPv4.
 * IPv4 is returned as is (the Ip schema already refuses leading zeros and out-of-range octets).
 */
export function canonicalIp(ip: string): string {
  if (ip.indexOf(':') === -1) return ip;
  const known = ipv6Seen.get(ip);
  if (known !== undefined) return known;
  const lower = ip.toLowerCase();
  const mapped = lower.startsWith('::ffff:') && lower.indexOf('.') !== -1;
  const canonical = mapped ? lower.slice(7) : new URL(`http://[${lower}]/`).hostname.slice(1, -1);
  if (ipv6Seen.size >= 4096) ipv6Seen.clear();
  ipv6Seen.set(ip, canonical);
  return canonical;
}

/** Recently canonicalized IPv6 texts (the URL parser costs ~1.5 us; flows repeat their addresses). */
const ipv6Seen = new Map<string, string>();

/** An IP address (IPv4 or IPv6), canonicalized. */
export const CanonIp = Ip.transform(canonicalIp);

/**
 * Multicast, limited broadcast, and (heuristically) an IPv4 address ending in .255: addresses
 * that name a group of receivers, not one host. Used so a datagram to a group is never read as
 * "this host" nor as an unanswered attempt. The .255 rule can miss or over-match subnets other
 * than /24; it only ever removes an identity or a denial, never invents one.
 */
export function isGroupAddress(ip: string): boolean {
  if (ip.indexOf(':') !== -1) return ip.startsWith('ff');
  const first = Number(ip.slice(0, ip.indexOf('.')));
  return (first >= 224 && first <= 239) || ip === '255.255.255.255' || ip.endsWith('.255');
}

/** The value of 1..maxLen decimal digits, or -1. */
export function digitsValue(s: string, maxLen: number): number {
  if (s.length === 0 || s.length > maxLen) return -1;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}

/** A port written as decimal text ("443"), as Windows and VPC flow logs do. */
export const PortText = z.string().transform((s, ctx): number => {
  const n = digitsValue(s, 5);
  if (n < 0 || n > 65535) {
    ctx.issues.push({ code: 'custom', input: s, message: `expected a port number 0..65535, got ${show(s)}` });
    return z.NEVER;
  }
  return n;
});

/** A count written as decimal text ("49"), as flow logs write packets. */
export const CountText = z.string().transform((s, ctx): number => {
  const n = digitsValue(s, 15);
  if (n < 0) {
    ctx.issues.push({ code: 'custom', input: s, message: `expected a count (decimal digits), got ${show(s)}` });
    return z.NEVER;
  }
  return n;
});

/** An IP protocol number written as decimal text ("6"). */
export const ProtocolNumberText = z.string().transform((s, ctx): number => {
  const n = digitsValue(s, 3);
  if (n < 0 || n > 255) {
    ctx.issues.push({ code: 'custom', input: s, message: `expected a protocol number 0..255, got ${show(s)}` });
    return z.NEVER;
  }
  return n;
});

const IsoDateTime = z.iso.datetime({
  offset: true,
  error: (iss) => `expected an ISO-8601 time with a zone, got ${show(iss.input)}`,
});

/** The pattern IsoTime's zod format check tests, taken from the schema itself for the fast path. */
export const ISO_DATETIME_PATTERN: RegExp = IsoDateTime._zod.def.pattern!;

/** ISO-8601 / RFC 3339 timestamp with a zone (any sub-second precision) to epoch ms. */
export const IsoTime = IsoDateTime.transform((s) => Date.parse(s)).pipe(EventTime);

/** Epoch seconds (integer or fractional, as Zeek, Calico and VPC flow logs write them) to epoch ms. */
export const EpochSeconds = z
  .number()
  .transform((s) => Math.floor(s * 1000))
  .pipe(EventTime);

/** Epoch seconds written as decimal text ("1418530010"). */
export const EpochSecondsText = z.string().transform((s, ctx): number => {
  const n = digitsValue(s, 12);
  if (n < 0) {
    ctx.issues.push({ code: 'custom', input: s, message: `expected epoch seconds, got ${show(s)}` });
    return z.NEVER;
  }
  return n * 1000;
}).pipe(EventTime);

/**
 * Labels given as `key=value` strings (Calico `app=web`; Hubble `k8s:app=web` with the source
 * prefix removed by `prefix`). Strings without `=` or with another source prefix are ignored;
 * the caller validates the result as contract Labels (forbidden keys, invisible characters).
 */
export function labelsFromPairs(
  pairs: readonly string[],
  prefix: string,
  ignoreKeyPrefixes: readonly string[] = NO_PREFIXES,
): Labels {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    if (prefix && !pair.startsWith(prefix)) continue;
    const eq = pair.indexOf('=', prefix.length);
    if (eq <= prefix.length) continue;
    const key = pair.slice(prefix.length, eq);
    if (!hasAnyPrefix(key, ignoreKeyPrefixes)) setLabel(out, key, pair.slice(eq + 1));
  }
  return out;
}

const NO_PREFIXES: readonly string[] = [];

function hasAnyPrefix(s: string, prefixes: readonly string[]): boolean {
  for (const p of prefixes) if (s.startsWith(p)) return true;
  return false;
}

/**
 * out[key] = value for a label. A `__proto__` key is dropped here (an assignment would be a
 * prototype write; the contract's record schema drops it too); `constructor` and `prototype`
 * stay, so Labels refuses the record.
 */
export function setLabel(out: Record<string, string>, key: string, value: string): void {
  if (key !== '__proto__') out[key] = value;
}

/** A JSON object (not an array, not null). */
export function isJsonObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Hints (events.ts flowHints) are never a reason to refuse a record: a value that does not fit is
 * left out, so a hostile process name cannot make its flow disappear, only lose the hint. The fast
 * path and the schema path both call these, so they agree by construction.
 */

/** The file name of an executable path (`\device\harddiskvolume2\windows\system32\svchost.exe`), lower-cased. */
export function processNameOf(v: unknown): string | undefined {
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_PROCESS_PATH) return undefined;
  // one pass from the end (the hot path: every Windows record has one): the name's characters
  // are checked as PROCESS_NAME would check them once lower-cased
  const end = v.length;
  let start = end;
  let upper = false;
  for (; start > 0; start--) {
    const c = v.charCodeAt(start - 1);
    if (c === 92 /* \ */ || c === 47 /* / */) break;
    if (c >= 128 || NAME_CHAR[c] === 0 || end - start >= MAX_PROCESS_NAME) return undefined;
    if (c >= 65 && c <= 90) upper = true;
  }
  if (start === end) return undefined;
  const name = start === 0 ? v : v.slice(start);
  return upper ? name.toLowerCase() : name;
}
const MAX_PROCESS_PATH = 1024;
const MAX_PROCESS_NAME = 128;
/** 1 for the ASCII characters a process name may hold once lower-cased (events.ts PROCESS_NAME). */
const NAME_CHAR = Uint8Array.from({ length: 128 }, (_, c) => (PROCESS_NAME.test(String.fromCharCode(c).toLowerCase()) ? 1 : 0));

/** A sensor's protocol detection (Zeek `service`), when it is a short list of protocol names. */
export function appProtocolsOf(v: unknown): string | undefined {
  return typeof v === 'string' && v.length <= 128 && APP_PROTOCOLS.test(v) ? v : undefined;
}

