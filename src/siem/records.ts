import type { KafkaMessage } from '../kafka';
import { z } from 'zod';
import type { Incident } from '../correlate/incident';
import { CHANGE_HEADER } from '../correlate/correlator';
import type { PolicyGapFinding } from '../correlate/policy-gap';
import { SERVICE_CLASSES } from '../correlate/ports';
import { LedgerRecord } from '../ledger/records';
import { IncidentSchema } from '../playbook/incident-schema';
import { describeIssues, parseJson } from '../validation';
import type { SiemDoc } from './inputs';

/**
 * Reading the topics the SIEM stage consumes: the incidents topic (incidents and policy-gap
 * findings, told apart by the `cordon-change` header), the ledger topic and the dead-letter topic.
 * Kafka messages are external input: each is parsed with the schema of what it claims to be. Pure.
 */

export type TopicRole = 'incidents' | 'ledger' | 'dlq';

export type Reading = { doc: SiemDoc } | { skip: string } | { error: string };

const GapParty = z.object({ key: z.string().min(1).max(1024), name: z.string().max(256).optional(), ip: z.string().max(64).optional() });
export const PolicyGapSchema = z.object({
  id: z.string().regex(/^gap-[0-9a-f]{8,64}$/, 'expected a finding id such as gap-0123456789abcdef0123'),
  type: z.literal('policy_gap'),
  severity: z.literal('low'),
  src: GapParty,
  dst: GapParty,
  port: z.number().int().min(0).max(65535),
  protocol: z.enum(['tcp', 'udp', 'icmp', 'icmpv6', 'sctp', 'other']),
  service: z.enum(SERVICE_CLASSES),
  attempts: z.number().int().min(0),
  firstSeen: z.number().int().min(0),
  lastSeen: z.number().int().min(0),
  policy: z.object({ id: z.string(), name: z.string() }).optional(),
  summary: z.string().max(8192),
});

function header(m: KafkaMessage, name: string): string | undefined {
  const v = m.headers?.[name];
  const first = Array.isArray(v) ? v[0] : v;
  return first === undefined ? undefined : String(first);
}

function json(m: KafkaMessage): { ok: true; value: unknown } | { ok: false; reason: string } {
  if (!m.value) return { ok: false, reason: 'empty message' };
  return parseJson(m.value.toString('utf8'));
}

export function readSiemDoc(role: TopicRole, m: KafkaMessage): Reading {
  if (role === 'dlq') return { doc: { kind: 'dead_letter', letter: { key: m.key, value: m.value, headers: m.headers } } };
  if (role === 'ledger') {
    const j = json(m);
    if (!j.ok) return { error: `ledger record: ${j.reason}` };
    const r = LedgerRecord.safeParse(j.value);
    return r.success ? { doc: { kind: 'ledger', record: r.data } } : { error: `ledger record: ${describeIssues(r.error)}` };
  }
  const change = header(m, CHANGE_HEADER);
  if (change !== 'incident_opened' && change !== 'incident_updated' && change !== 'policy_gap') return { skip: `change ${change ?? '(none)'}` };
  const j = json(m);
  if (!j.ok) return { error: `${change}: ${j.reason}` };
  if (change === 'policy_gap') {
    const f = PolicyGapSchema.safeParse(j.value);
    return f.success ? { doc: { kind: 'finding', finding: f.data as PolicyGapFinding } } : { error: `policy gap: ${describeIssues(f.error)}` };
  }
  const i = IncidentSchema.safeParse(j.value);
  return i.success ? { doc: { kind: 'incident', incident: i.data as unknown as Incident } } : { error: `incident: ${describeIssues(i.error)}` };
}
