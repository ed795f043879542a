import type { CordonEvent } from '../events';
import type { CorrelationConfigInput } from './config';
import { CorrelationEngine, type Change } from './engine';
import type { Incident } from './incident';
import type { PolicyGapFinding } from './policy-gap';

export interface ReplayResult {
  /**
   * The latest version of every incident the run raised, oldest first, including those the engine
   * had already forgotten (gone quiet and past their retention) by the end of a long recording.
   */
  incidents: Incident[];
  /** Latest version of every policy-gap finding, in order of first report. */
  policyGaps: PolicyGapFinding[];
  /** Every change in the order the engine published it (what Kafka would have seen). */
  changes: Change[];
  engine: CorrelationEngine;
}

/** Stable sort by event time: equal times keep their input order. */
export function sortByTime<T extends { time: number }>(events: readonly T[]): T[] {
  return events
    .map((e, i) => ({ e, i }))
    .sort((a, b) => a.e.time - b.e.time || a.i - b.i)
    .map((x) => x.e);
}

/**
 * Replay normalized events (any order) through a fresh engine: the library part of
 * `cordon replay`. Deterministic: the same events give the same result.
 */
export function replay(events: readonly CordonEvent[], config: CorrelationConfigInput = {}): ReplayResult {
  const engine = new CorrelationEngine(config);
  const changes: Change[] = [];
  const gaps = new Map<string, PolicyGapFinding>();
  const raised = new Map<string, Incident>();
  engine.whenForgotten((incident) => raised.set(incident.id, incident));
  for (const event of sortByTime(events)) {
    for (const change of engine.ingest(event)) {
      changes.push(change);
      if (change.type === 'policy_gap') gaps.set(change.finding.id, change.finding);
      else raised.set(change.incident.id, change.incident);
    }
  }
  // what the engine still holds is the newest (a quiet incident's last view); the rest it forgot
  for (const incident of engine.listIncidents()) raised.set(incident.id, incident);
  return { incidents: oldestFirst([...raised.values()]), policyGaps: [...gaps.values()], changes, engine };
}

function oldestFirst(incidents: Incident[]): Incident[] {
  return incidents.sort((a, b) => a.firstSeen - b.firstSeen || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
