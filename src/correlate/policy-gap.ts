import { createHash } from 'node:crypto';
import type { Protocol } from '../events';
import { SERVICE_LABELS, type ServiceClass } from './ports';

/**
 * A policy gap: one source keeps trying one service on one destination, always denied, for a
 * long time. That is an application missing an allow rule (or a stale config), not lateral
 * movement; it is reported once in a while at low severity, never as an incident.
 */
export interface PolicyGapFinding {
  id: string;
  type: 'policy_gap';
  severity: 'low';
  src: GapParty;
  dst: GapParty;
  port: number;
  protocol: Protocol;
  service: ServiceClass;
  attempts: number;
  firstSeen: number;
  lastSeen: number;
  policy?: { id: string; name: string };
  summary: string;
}

export interface GapParty {
  key: string;
  name?: string;
  ip?: string;
}

function label(p: GapParty): string {
  return p.name ?? p.ip ?? p.key;
}

function hours(ms: number): string {
  const h = ms / 3_600_000;
  return h >= 1 ? `${h.toFixed(1)} h` : `${Math.round(ms / 60_000)} min`;
}

export function policyGapFinding(input: Omit<PolicyGapFinding, 'id' | 'type' | 'severity' | 'summary'>): PolicyGapFinding {
  const id =
    'gap-' +
    createHash('sha256')
      .update(`${input.src.key}|${input.dst.key}|${input.port}|${input.protocol}|${input.firstSeen}`)
      .digest('hex')
      .slice(0, 20);
  const svc = input.service === 'other' ? '' : ` (${SERVICE_LABELS[input.service]})`;
  const summary =
    `${label(input.src)} retried ${input.protocol}/${input.port}${svc} on ${label(input.dst)} ${input.attempts} times ` +
    `over ${hours(input.lastSeen - input.firstSeen)}, always denied: ` +
    `likely a missing allow rule or a stale configuration, not lateral movement.`;
  return { id, type: 'policy_gap', severity: 'low', ...input, summary };
}
