import { nextRecord, type ChainHead } from '../../src/ledger/chain';
import type { LeasePayload, LedgerEntry, LedgerRecord } from '../../src/ledger/records';

/** Test data for the ledger: leases, a scripted quarantine history, and a mixed stream of entries. */

export const T0 = Date.UTC(2025, 0, 15, 12, 0, 0);
export const MIN = 60_000;

export function lease(target: string, over: Partial<LeasePayload> = {}): LeasePayload {
  return {
    target,
    labels: { 'cordon.io/quarantine': 'true' },
    priorLabels: { 'cordon.io/quarantine': null, app: 'web' },
    holders: ['inc-1'],
    expiresAt: T0 + 30 * MIN,
    state: 'applied',
    enforcer: 'kubernetes',
    ref: { entity: target, kind: 'pod', name: target.replace(/^pod:/, ''), namespace: 'default' },
    ...over,
  };
}

const CONTROLLER = 'service:cordon';
const PLAYBOOK = 'playbook:contain-lateral@3f9a2c1';

/**
 * A quarantine history over six targets, with other decisions in between. What the registry must
 * hold after it:
 *   pod:a  applied, holders [inc-2] (shared with inc-1, then inc-1 let go), expires T0+30m
 *   pod:b  applied, extended to T0+2h
 *   pod:c  released (holders empty)
 *   pod:d  expired
 *   pod:e  failed
 *   pod:f  pending (apply intended, outcome not recorded)
 */
export function quarantineHistory(): LedgerEntry[] {
  const a1 = lease('pod:a');
  const a2 = lease('pod:a', { holders: ['inc-1', 'inc-2'] });
  const a3 = lease('pod:a', { holders: ['inc-2'] });
  const b1 = lease('pod:b', { holders: ['inc-3'], state: 'pending' });
  const b2 = { ...b1, state: 'applied' as const };
  const b3 = { ...b2, expiresAt: T0 + 120 * MIN };
  const c1 = lease('pod:c', { holders: ['inc-4'] });
  const c2 = { ...c1, holders: [], state: 'released' as const };
  const d1 = lease('pod:d', { holders: ['inc-5'], expiresAt: T0 + 5 * MIN });
  const d2 = { ...d1, state: 'expired' as const };
  const e1 = lease('pod:e', { holders: ['inc-6'], state: 'failed' });
  const f1 = lease('pod:f', { holders: ['inc-7'], state: 'pending', expiresAt: T0 + 10 * MIN });
  const q = (action: LedgerEntry['action'], before: LeasePayload | null, after: LeasePayload, incidentId: string): LedgerEntry => ({
    actor: PLAYBOOK,
    action,
    target: after.target,
    before,
    after,
    reason: `${action} by playbook step quarantine`,
    incidentId,
  });
  return [
    { actor: CONTROLLER, action: 'incident_raised', target: 'pod:a', after: { score: 0.9 }, reason: 'smb fan-out', incidentId: 'inc-1' },
    q('quarantine_applied', null, a1, 'inc-1'),
    { actor: CONTROLLER, action: 'incident_raised', target: 'pod:a', after: { score: 0.7 }, reason: 'rdp burst', incidentId: 'inc-2' },
    q('quarantine_applied', a1, a2, 'inc-2'),
    q('quarantine_applied', null, b1, 'inc-3'),
    q('quarantine_applied', b1, b2, 'inc-3'),
    { actor: 'user:alice@example.com', action: 'approval_given', target: 'pod:b', reason: 'confirmed', approvalId: 'ap-1', incidentId: 'inc-3' },
    q('quarantine_extended', b2, b3, 'inc-3'),
    q('quarantine_released', a2, a3, 'inc-1'),
    q('quarantine_applied', null, c1, 'inc-4'),
    { actor: 'user:bob', action: 'quarantine_released', target: 'pod:c', before: c1, after: c2, reason: 'false positive', incidentId: 'inc-4' },
    q('quarantine_applied', null, d1, 'inc-5'),
    { actor: CONTROLLER, action: 'quarantine_expired', target: 'pod:d', before: d1, after: d2, reason: 'ttl reached' },
    { actor: CONTROLLER, action: 'quarantine_failed', target: 'pod:e', before: null, after: e1, reason: 'enforcer: 403 forbidden', incidentId: 'inc-6' },
    { actor: CONTROLLER, action: 'drift_detected', target: 'pod:a', before: { labels: {} }, after: { labels: { 'cordon.io/quarantine': 'true' } }, reason: 'label removed by hand' },
    q('quarantine_applied', null, f1, 'inc-7'),
  ];
}

/** `n` entries cycling through every kind of decision, quarantines included. */
export function mixedEntries(n: number): LedgerEntry[] {
  const history = quarantineHistory();
  const others: LedgerEntry[] = [
    { actor: CONTROLLER, action: 'incident_updated', target: 'pod:x', after: { score: 0.95, paths: 3 }, reason: 'new edge', incidentId: 'inc-9' },
    { actor: PLAYBOOK, action: 'playbook_started', target: 'pod:x', reason: 'severity high', incidentId: 'inc-9' },
    { actor: PLAYBOOK, action: 'playbook_step', target: 'pod:x', after: { step: 'notify', splunk: 'ok' }, reason: 'notify', incidentId: 'inc-9' },
    { actor: PLAYBOOK, action: 'approval_requested', target: 'pod:x', reason: 'protected selector', approvalId: 'ap-9', incidentId: 'inc-9' },
    { actor: 'user:carol', action: 'approval_refused', target: 'pod:x', reason: 'maintenance window', approvalId: 'ap-9' },
    { actor: CONTROLLER, action: 'approval_timed_out', target: 'pod:y', reason: 'deadline passed', approvalId: 'ap-10' },
    { actor: CONTROLLER, action: 'approval_escalated', target: 'pod:y', after: { to: 'secops-lead' }, reason: 'on_timeout: escalate', approvalId: 'ap-10' },
    { actor: PLAYBOOK, action: 'dry_run', target: 'pod:z', after: { wouldApply: { 'cordon.io/quarantine': 'true' } }, reason: 'dry-run playbook' },
    { actor: CONTROLLER, action: 'circuit_breaker_opened', target: 'quarantine-rate', after: { rate: 12, limit: 10 }, reason: 'too many quarantines' },
    { actor: CONTROLLER, action: 'circuit_breaker_closed', target: 'quarantine-rate', after: { rate: 2 }, reason: 'rate back under limit' },
  ];
  const out: LedgerEntry[] = [];
  for (let i = 0; out.length < n; i++) {
    out.push(history[i % history.length]!);
    if (out.length < n) out.push(others[i % others.length]!);
  }
  return out;
}

/** Builds a chain in memory from entries, one minute apart. */
export function chain(entries: LedgerEntry[], from?: ChainHead): LedgerRecord[] {
  const records: LedgerRecord[] = [];
  let prev = from;
  entries.forEach((entry, i) => {
    const record = nextRecord(prev, entry, T0 + i * MIN);
    records.push(record);
    prev = record;
  });
  return records;
}
