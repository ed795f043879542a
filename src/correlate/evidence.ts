import type { AnomalyKind } from '../events';
import type { ServiceClass } from './ports';

/** The rules that can raise a campaign's risk; every piece of evidence names one. */
export const RULES = [
  'admin_port', // denied attempt on a remote-administration / remote-execution service
  'denied_other', // denied attempt on an ordinary port
  'fan_out', // many new (destination, port) pairs in a short window: discovery
  'rpc_chain', // endpoint mapper (135) then a blocked call on the dynamic port it handed out
  'propagation', // a target of the campaign attacks onward
  'target_role', // a target turned out to be a domain controller
  'anomaly', // a corroborating anomaly on a campaign entity
  'admin_session', // a permitted remote-administration session between peers that do not normally speak it
  'session_fan_out', // remote-administration sessions to many destinations in a short window
] as const;
export type Rule = (typeof RULES)[number];

/** Rules that show movement; a campaign without one of these never becomes an incident. */
export const LATERAL_RULES: ReadonlySet<Rule> = new Set<Rule>([
  'admin_port',
  'fan_out',
  'rpc_chain',
  'propagation',
  'admin_session',
  'session_fan_out',
]);

export const RULE_DESCRIPTIONS: Readonly<Record<Rule, string>> = {
  admin_port: 'denied attempt on a remote-administration service, weighted by service and by who talks to whom',
  denied_other: 'denied attempt on an ordinary port',
  fan_out: 'many distinct destinations or ports denied within the fan-out window (discovery)',
  rpc_chain: 'RPC endpoint mapper contacted, then the interface call on the dynamic port was blocked',
  propagation: 'an earlier target of the campaign became a source itself',
  target_role: 'an attacked destination was later identified as a domain controller',
  anomaly: 'a corroborating anomaly on an entity of the campaign, weighted by its score',
  admin_session:
    'permitted remote-administration session to a peer that does not serve it, weighted by service and by who talks to whom',
  session_fan_out: 'remote-administration sessions to many distinct destinations within the fan-out window',
};

export interface Evidence {
  rule: Rule;
  /** Total weight this item added to the campaign's risk (before decay). */
  weight: number;
  /** Events folded into this item (repeats of the same attempt count here, weighing nothing). */
  count: number;
  firstSeen: number;
  lastSeen: number;
  src: string;
  dst?: string;
  port?: number;
  service?: ServiceClass;
  anomaly?: AnomalyKind;
  reason: string;
}

export interface RuleTally {
  count: number;
  weight: number;
}

/** Bounded evidence with exact counters: the item list is capped, the tallies never are. */
export interface EvidenceData {
  items: Evidence[];
  /** Events that contributed evidence (exact). */
  total: number;
  /** Distinct items that were not kept because the list was full (their tallies are exact). */
  dropped: number;
  byRule: Partial<Record<Rule, RuleTally>>;
}

export function emptyEvidence(): EvidenceData {
  return { items: [], total: 0, dropped: 0, byRule: {} };
}

export type EvidenceInput = Omit<Evidence, 'count' | 'firstSeen' | 'lastSeen'>;

function sameItem(a: Evidence, b: EvidenceInput): boolean {
  return a.rule === b.rule && a.src === b.src && a.dst === b.dst && a.port === b.port && a.anomaly === b.anomaly;
}

/** Fold one event's evidence in: same rule and subject aggregate into one item. */
export function addEvidence(data: EvidenceData, input: EvidenceInput, at: number, cap: number, count = 1): void {
  data.total += count;
  const tally = data.byRule[input.rule] ?? (data.byRule[input.rule] = { count: 0, weight: 0 });
  tally.count += count;
  tally.weight += input.weight;
  const existing = data.items.find((item) => sameItem(item, input));
  if (existing) {
    existing.count += count;
    existing.weight += input.weight;
    existing.lastSeen = Math.max(existing.lastSeen, at);
    return;
  }
  if (data.items.length >= cap) {
    data.dropped += 1;
    return;
  }
  data.items.push({ ...input, count, firstSeen: at, lastSeen: at });
}

/** A repeat of an attempt already in evidence: counted, weighs nothing. */
export function countRepeat(data: EvidenceData, rule: Rule, src: string, dst: string, port: number, at: number, n = 1): void {
  data.total += n;
  const tally = data.byRule[rule] ?? (data.byRule[rule] = { count: 0, weight: 0 });
  tally.count += n;
  const item = data.items.find((i) => i.rule === rule && i.src === src && i.dst === dst && i.port === port);
  if (!item) return;
  item.count += n;
  item.lastSeen = Math.max(item.lastSeen, at);
}

/** Evidence that was counted but not kept as an item (the list was full before it was written). */
export function addUnkept(data: EvidenceData, rule: Rule, count: number, weight: number): void {
  data.total += count;
  data.dropped += count;
  const tally = data.byRule[rule] ?? (data.byRule[rule] = { count: 0, weight: 0 });
  tally.count += count;
  tally.weight += weight;
}

/** Independent signal families present (for confidence); ordinary denials do not count. */
export function signalFamilies(data: EvidenceData): number {
  let n = 0;
  for (const rule of RULES) if (rule !== 'denied_other' && data.byRule[rule]) n += 1;
  return n;
}
