import type { IncidentStatus } from '../correlate/incident';

/** What a quarantine change means for the incidents behind it. */
export interface HoldChange {
  kind: 'applied' | 'released' | 'expired' | 'failed';
  /** The incident on whose behalf it happened, when one did. */
  incidentId?: string;
  /** Incidents whose hold on the target ended with this change. */
  endedFor: readonly string[];
}

export interface StatusAsk {
  incident: string;
  status: IncidentStatus;
}

/**
 * An incident is `contained` once one of its quarantines is applied, back to `open` when one
 * could not be, and `released` when the last target it held is let go (by release or expiry).
 * `stillHolds` says whether an incident holds any other live quarantine.
 */
export function incidentStatuses(change: HoldChange, stillHolds: (incident: string) => boolean): StatusAsk[] {
  switch (change.kind) {
    case 'applied':
      return change.incidentId ? [{ incident: change.incidentId, status: 'contained' }] : [];
    case 'failed':
      return change.incidentId && !stillHolds(change.incidentId) ? [{ incident: change.incidentId, status: 'open' }] : [];
    case 'released':
    case 'expired':
      return change.endedFor.filter((id) => !stillHolds(id)).map((incident) => ({ incident, status: 'released' }));
  }
}
