import { z } from 'zod';
import { INCIDENT_STATUSES, type IncidentStatus } from '../correlate/incident';

/**
 * An incident's status is driven from outside the engine: containment moves it through
 * containing → contained → released, an analyst closes it. The correlator stays the only writer of
 * incidents, so these arrive as requests on the lifecycle topic, keyed by the incident's root
 * entity (the same partition as the incident's state), and are applied in order like any event.
 */
export const StatusRequest = z.strictObject({
  incident: z.string().min(1),
  root: z.string().min(1),
  status: z.enum(INCIDENT_STATUSES),
  /** Who asked: `user:<token name>`, `playbook:<id>`, `system:containment`. */
  actor: z.string().min(1).max(200),
  reason: z.string().min(1).max(2000),
  /** Epoch ms at which it was asked. */
  at: z.number().int().nonnegative(),
});
export type StatusRequest = z.infer<typeof StatusRequest>;

/**
 * Which status may follow which. `closed` is final: evidence after a close opens a new incident.
 * A quarantine may fail and leave an incident `containing`; it may go back to `open` then.
 */
const NEXT: Record<IncidentStatus, readonly IncidentStatus[]> = {
  open: ['containing', 'contained', 'closed'],
  containing: ['contained', 'released', 'open', 'closed'],
  contained: ['released', 'closed'],
  released: ['containing', 'contained', 'closed'],
  closed: [],
};

export type Transition = { outcome: 'changed' } | { outcome: 'unchanged' } | { outcome: 'refused'; reason: string };

export function transition(from: IncidentStatus, to: IncidentStatus): Transition {
  if (from === to) return { outcome: 'unchanged' };
  if (NEXT[from].includes(to)) return { outcome: 'changed' };
  const allowed = NEXT[from].length > 0 ? NEXT[from].join(', ') : 'nothing (it is final)';
  return { outcome: 'refused', reason: `an incident that is ${from} cannot become ${to}; it may become ${allowed}` };
}
