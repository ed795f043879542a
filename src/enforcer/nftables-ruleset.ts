import { createHash } from 'node:crypto';
import { SocketAddress, isIP } from 'node:net';
import { z } from 'zod';
import { EnforcerError } from './enforcer';

/**
 * The nftables side of the host enforcer, as pure functions: validation of everything that goes
 * into an nft command, the ruleset Cordon owns, the element changes, and the parsing of what
 * `nft -j list` prints. No I/O here (nftables-exec.ts runs the commands, nftables.ts decides).
 *
 * Kernel and nft facts these functions rely on (found by experiment with nft 1.0.6 on kernel 6.18;
 * the end-to-end test exercises the behaviour that matters):
 * - `add table|set|counter|chain` never fail when the object exists with the same definition; an
 *   `add chain` with another policy updates the policy; an incompatible set is EEXIST and another
 *   hook priority is EOPNOTSUPP (both non-retriable, the operator's table is in the way).
 * - `add rule` always appends, so the chains are flushed and refilled in the same transaction.
 * - `add element` on an existing element keeps its comment, and on older kernels its timeout too
 *   (6.18 updates the timeout, not the comment). So an element is replaced with
 *   `add` + `delete` + `add` in one transaction: it works whether or not the element exists and
 *   leaves no window without it. nft 1.0.6 has no `destroy`.
 * - `timeout 0s` means no timeout at all (a permanent element): never sent.
 * - nft 1.0.6 rejects timeouts above 99999999s ("value too large") and comments over 128 chars.
 */

export const QUARANTINE_LABEL = 'cordon.io/quarantine';
export const SET_V4 = 'quarantine_v4';
export const SET_V6 = 'quarantine_v6';
export const CHAINS = ['forward', 'input', 'output'] as const;
export type Chain = (typeof CHAINS)[number];
/** The largest element timeout nft 1.0.6 accepts (about 3.2 years). */
export const MAX_TIMEOUT_SEC = 99_999_999;
export const DEFAULT_TABLE = 'cordon';
/** Before the `filter` priority (0), after conntrack (-200) and destination NAT (-100). */
export const DEFAULT_PRIORITY = -10;

export interface RulesetSpec {
  table: string;
  priority: number;
}

export interface QuarantineAddress {
  /** Canonical text form (what nft prints): lower-case, compressed IPv6, IPv4-mapped as IPv4. */
  address: string;
  version: 4 | 6;
  set: typeof SET_V4 | typeof SET_V6;
}

const TABLE_NAME = /^[A-Za-z][A-Za-z0-9_]{0,31}$/;
/** Lease ids that can be an nft comment as they are (between double quotes, no escapes). */
const LEASE_ID = /^[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}$/;
const CANONICAL = /^[0-9a-f:.]{2,45}$/;

function invalid(message: string, code: string): EnforcerError {
  return new EnforcerError(message, false, code);
}

/**
 * Validates and canonicalizes a target address. Only what `net.isIP` accepts, without an IPv6
 * zone (`%eth0`), and never loopback, unspecified, multicast or broadcast: quarantining those
 * would cut the host (and Cordon) off, not a workload.
 */
export function parseAddress(raw: unknown): QuarantineAddress {
  if (typeof raw !== 'string' || raw === '') throw invalid('target has no ip: the nftables enforcer contains addresses', 'invalid_target');
  const shown = JSON.stringify(raw.length > 64 ? `${raw.slice(0, 64)}…` : raw);
  const version = raw.length <= 45 && !raw.includes('%') ? isIP(raw) : 0;
  if (version === 0) throw invalid(`target ip ${shown} is not an IPv4 or IPv6 address`, 'invalid_target');
  let address = new SocketAddress({ address: raw, family: version === 4 ? 'ipv4' : 'ipv6' }).address.toLowerCase();
  let v: 4 | 6 = version === 4 ? 4 : 6;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (mapped) {
    address = mapped[1]!;
    v = 4;
  }
  if (!CANONICAL.test(address)) throw invalid(`target ip ${shown} did not canonicalize`, 'invalid_target');
  const reserved = v === 4 ? reservedV4(address) : reservedV6(address);
  if (reserved) throw invalid(`target ip ${shown} is ${reserved}: refusing to quarantine it`, 'invalid_target');
  return { address, version: v, set: v === 4 ? SET_V4 : SET_V6 };
}

function reservedV4(address: string): string | undefined {
  const first = Number(address.split('.')[0]);
  if (first === 0) return 'an unspecified ("this network") address';
  if (first === 127) return 'a loopback address';
  if (address === '255.255.255.255') return 'the broadcast address';
  if (first >= 224 && first <= 239) return 'a multicast address';
  if (first >= 240) return 'a reserved address';
  return undefined;
}

function reservedV6(address: string): string | undefined {
  if (address === '::') return 'the unspecified address';
  if (address === '::1') return 'the loopback address';
  if (address.startsWith('ff')) return 'a multicast address';
  return undefined;
}

/** Canonical form of an address nft printed, for comparison; undefined when it is not one. */
export function canonicalAddress(raw: unknown): string | undefined {
  if (typeof raw !== 'string') return undefined;
  const version = isIP(raw);
  if (version === 0) return undefined;
  const address = new SocketAddress({ address: raw, family: version === 4 ? 'ipv4' : 'ipv6' }).address.toLowerCase();
  return /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(address)?.[1] ?? address;
}

export function validateTable(name: unknown): string {
  if (typeof name !== 'string' || !TABLE_NAME.test(name)) {
    throw invalid(`table name ${JSON.stringify(name)} is not a plain nft identifier ([A-Za-z][A-Za-z0-9_]*, at most 32)`, 'invalid_config');
  }
  return name;
}

/**
 * The element comment that names a lease: the lease id itself when nft can hold it (letters,
 * digits and ._:@/+=-, at most 128), else a readable prefix and a hash (`lease.pod:ns/name with
 * space` -> `lease.pod:ns/name_with_space~3f1a...`). Deterministic, so the same lease always
 * finds its element; the `~` cannot occur in a plain lease id, so the two forms never collide.
 */
export function leaseComment(leaseId: unknown): string {
  if (typeof leaseId !== 'string' || leaseId === '') throw invalid(`lease id ${JSON.stringify(leaseId)} is empty`, 'invalid_lease_id');
  if (LEASE_ID.test(leaseId)) return leaseId;
  const digest = createHash('sha256').update(leaseId).digest('hex').slice(0, 24);
  return `${leaseId.replace(/[^A-Za-z0-9._:@/+=-]/g, '_').slice(0, 96)}~${digest}`;
}

export function validatePriority(priority: unknown): number {
  if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < -400 || priority > 400) {
    throw invalid(`chain priority ${JSON.stringify(priority)} is not an integer in [-400, 400]`, 'invalid_config');
  }
  return priority;
}

/**
 * Whole seconds from now to `expiresAt`, rounded up so the kernel never releases before the lease
 * ends (at most one second after). Throws when the lease has already expired or is too long.
 */
export function timeoutSeconds(expiresAt: number, now: number): number {
  if (!Number.isFinite(expiresAt)) throw invalid(`expiresAt ${String(expiresAt)} is not a time`, 'invalid_expiry');
  const seconds = Math.ceil((expiresAt - now) / 1000);
  if (seconds < 1) throw invalid(`the lease expired ${new Date(expiresAt).toISOString()}: nothing to apply`, 'expired');
  if (seconds > MAX_TIMEOUT_SEC) {
    throw invalid(`the lease ends in ${seconds}s, beyond the ${MAX_TIMEOUT_SEC}s an nft element timeout can hold`, 'invalid_expiry');
  }
  return seconds;
}

export function counterName(chain: Chain): string {
  return `dropped_${chain}`;
}

/** Table and sets only: enough for element changes, installs no hook. */
export function declareSets(table: string): string[] {
  return [
    `add table inet ${table}`,
    `add set inet ${table} ${SET_V4} { type ipv4_addr; flags timeout; }`,
    `add set inet ${table} ${SET_V6} { type ipv6_addr; flags timeout; }`,
  ];
}

/** The rules of one chain: drop anything from or to a quarantined address, counted. */
export function chainRules(chain: Chain): string[] {
  const rules: string[] = [];
  for (const [proto, set] of [['ip', SET_V4], ['ip6', SET_V6]] as const) {
    for (const field of ['saddr', 'daddr'] as const) rules.push(`${proto} ${field} @${set} counter name "${counterName(chain)}" drop`);
  }
  return rules;
}

/**
 * The whole ruleset, as commands that bring any state (nothing, the same, an older version) to
 * exactly this one, in one transaction. Elements and counters survive; the chains are refilled.
 */
export function ensureRuleset(spec: RulesetSpec): string[] {
  const { table, priority } = spec;
  const lines = declareSets(table);
  for (const chain of CHAINS) lines.push(`add counter inet ${table} ${counterName(chain)}`);
  for (const chain of CHAINS) {
    lines.push(`add chain inet ${table} ${chain} { type filter hook ${chain} priority ${priority}; policy accept; }`);
  }
  for (const chain of CHAINS) {
    lines.push(`flush chain inet ${table} ${chain}`);
    for (const rule of chainRules(chain)) lines.push(`add rule inet ${table} ${chain} ${rule}`);
  }
  return lines;
}

/** Whether a string can stand between double quotes in an nft command (nft has no escapes there). */
export function isSafeComment(comment: string): boolean {
  return /^[\x20-\x7e]{1,128}$/.test(comment) && !/["\\]/.test(comment);
}

/**
 * Puts the address in its set with this timeout and comment, whether or not it was there.
 * No timeout means a permanent element: only used to put back one that was permanent before.
 */
export function replaceElement(table: string, addr: QuarantineAddress, element: { timeoutSec?: number; comment?: string }): string[] {
  const { timeoutSec, comment } = element;
  if (timeoutSec !== undefined && (!Number.isInteger(timeoutSec) || timeoutSec < 1 || timeoutSec > MAX_TIMEOUT_SEC)) {
    throw new RangeError(`bad element timeout ${timeoutSec}`);
  }
  if (comment !== undefined && !isSafeComment(comment)) throw new RangeError(`unsafe element comment ${JSON.stringify(comment)}`);
  const attrs = `${timeoutSec !== undefined ? ` timeout ${timeoutSec}s` : ''}${comment !== undefined ? ` comment "${comment}"` : ''}`;
  return [...removeElement(table, addr), `add element inet ${table} ${addr.set} { ${addr.address}${attrs} }`];
}

/** Takes the address out of its set, whether or not it is there (no ENOENT, no race with expiry). */
export function removeElement(table: string, addr: QuarantineAddress): string[] {
  return [`add element inet ${table} ${addr.set} { ${addr.address} }`, `delete element inet ${table} ${addr.set} { ${addr.address} }`];
}

/** The ruleset as a file an operator can review and load with `nft -f` (loading twice is harmless). */
export function renderRulesetFile(spec: RulesetSpec): string {
  const { table } = spec;
  const header = [
    `# Cordon host enforcer: the nftables ruleset it owns (table inet ${table}).`,
    '#',
    '# Generated from src/enforcer/nftables-ruleset.ts; the enforcer sends exactly these commands',
    '# in one transaction before each change, so loading this file by hand is optional and harmless.',
    `#   review:  nft -c -f cordon.nft      load:  nft -f cordon.nft      remove:  nft delete table inet ${table}`,
    '#',
    `# A quarantined address is an element of ${SET_V4} or ${SET_V6} with a timeout (the lease`,
    '# expiry) and a comment (the lease id); the kernel deletes it at expiry, even if Cordon is down:',
    `#   add element inet ${table} ${SET_V4} { 172.18.39.5 timeout 3600s comment "lease-id" }`,
    `#   nft list set inet ${table} ${SET_V4}`,
    '#',
    `# The chains run at priority ${spec.priority}, before the usual filter chains (0): a drop here is final`,
    '# whatever other tables accept. Addresses are matched as packets are at those hooks: after',
    '# destination NAT, before source NAT.',
    '',
  ];
  return [...header, ...ensureRuleset(spec), ''].join('\n');
}

// ---------------------------------------------------------------------------------------------
// What `nft -j list table|set` prints (nft 1.0.6, json_schema_version 1).

export interface SetElement {
  address: string;
  timeoutSec?: number;
  /** Whole seconds left, as nft prints them (truncated). */
  expiresSec?: number;
  comment?: string;
}

export interface Listing {
  sets: Map<string, SetElement[]>;
  chains: Map<string, { hook?: string; prio?: number; policy?: string }>;
  /** One entry per rule that matches an address against a set: `chain proto field @set verdict`. */
  rules: string[];
  counters: Map<string, { packets: number; bytes: number }>;
}

const ElemObject = z.object({
  elem: z.object({
    val: z.unknown(),
    timeout: z.number().optional(),
    expires: z.number().optional(),
    comment: z.string().optional(),
  }),
});
const Payload = z.object({ payload: z.object({ protocol: z.string(), field: z.string() }) });
const NftJson = z.object({
  nftables: z.array(
    z.object({
      set: z.object({ name: z.string(), elem: z.array(z.unknown()).optional() }).optional(),
      chain: z.object({ name: z.string(), hook: z.string().optional(), prio: z.number().optional(), policy: z.string().optional() }).optional(),
      rule: z.object({ chain: z.string(), expr: z.array(z.record(z.string(), z.unknown())) }).optional(),
      counter: z.object({ name: z.string(), packets: z.number(), bytes: z.number() }).optional(),
    }),
  ),
});

export function parseListing(json: string): Listing {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    throw new EnforcerError(`nft printed JSON that does not parse: ${(err as Error).message}`, true, 'bad_output');
  }
  const parsed = NftJson.safeParse(doc);
  if (!parsed.success) throw new EnforcerError(`nft printed JSON of an unexpected shape: ${parsed.error.message}`, false, 'bad_output');
  const listing: Listing = { sets: new Map(), chains: new Map(), rules: [], counters: new Map() };
  for (const item of parsed.data.nftables) {
    if (item.set) listing.sets.set(item.set.name, (item.set.elem ?? []).flatMap(parseElement));
    if (item.chain) listing.chains.set(item.chain.name, { hook: item.chain.hook, prio: item.chain.prio, policy: item.chain.policy });
    if (item.counter) listing.counters.set(item.counter.name, { packets: item.counter.packets, bytes: item.counter.bytes });
    if (item.rule) {
      const match = item.rule.expr.map((e) => e.match).find((m) => m !== undefined) as { left?: unknown; right?: unknown } | undefined;
      const payload = Payload.safeParse(match?.left);
      const verdict = item.rule.expr.some((e) => 'drop' in e) ? 'drop' : item.rule.expr.some((e) => 'accept' in e) ? 'accept' : 'none';
      if (payload.success && typeof match?.right === 'string' && match.right.startsWith('@')) {
        listing.rules.push(`${item.rule.chain} ${payload.data.payload.protocol} ${payload.data.payload.field} ${match.right} ${verdict}`);
      }
    }
  }
  return listing;
}

function parseElement(raw: unknown): SetElement[] {
  if (typeof raw === 'string') {
    const address = canonicalAddress(raw);
    return address ? [{ address }] : [];
  }
  const parsed = ElemObject.safeParse(raw);
  if (!parsed.success) return [];
  const address = canonicalAddress(parsed.data.elem.val);
  if (!address) return [];
  const { timeout, expires, comment } = parsed.data.elem;
  return [{ address, timeoutSec: timeout, expiresSec: expires, comment }];
}

/** What is missing from a listed table for the quarantine to hold (empty: the ruleset is intact). */
export function missingRules(listing: Listing): string[] {
  const missing: string[] = [];
  for (const set of [SET_V4, SET_V6]) if (!listing.sets.has(set)) missing.push(`set ${set}`);
  for (const chain of CHAINS) {
    const c = listing.chains.get(chain);
    if (!c || c.hook !== chain) {
      missing.push(`base chain ${chain}`);
      continue;
    }
    for (const [proto, set] of [['ip', SET_V4], ['ip6', SET_V6]] as const) {
      for (const field of ['saddr', 'daddr']) {
        const rule = `${chain} ${proto} ${field} @${set} drop`;
        if (!listing.rules.includes(rule)) missing.push(`rule ${rule}`);
      }
    }
  }
  return missing;
}
