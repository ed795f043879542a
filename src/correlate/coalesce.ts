import type { Change } from './engine';

/**
 * One batch may move an incident several times; only its last version is published. An incident
 * opened within the batch is published as opened, with the reasons of every update folded in.
 */
export function latestPerIncident(changes: readonly Change[]): Change[] {
  if (changes.length < 2) return [...changes];
  const last = new Map<string, Change>();
  for (const change of changes) {
    const key = change.type === 'policy_gap' ? `gap:${change.finding.id}` : `incident:${change.incident.id}`;
    const before = last.get(key);
    last.delete(key);
    last.set(key, before && before.type !== 'policy_gap' && change.type !== 'policy_gap' ? merge(before, change) : change);
  }
  return [...last.values()];
}

function merge(before: Exclude<Change, { type: 'policy_gap' }>, after: Exclude<Change, { type: 'policy_gap' }>): Change {
  if (before.type === 'incident_opened') return { type: 'incident_opened', incident: after.incident };
  const reasons = [...before.reasons, ...(after.type === 'incident_updated' ? after.reasons : [])];
  return { type: 'incident_updated', incident: after.incident, reasons: [...new Set(reasons)] };
}
