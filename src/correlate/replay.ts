import type { CordonEvent } from '../events';
import type { CorrelationConfigInput } from './config';
import { CorrelationEngine, type Change } from './engine';
import type { Incident } from './incident';
import type { PolicyGapFinding } from './policy-gap';

export interface ReplayResult {
  /** Final state of every incident, oldest first. */
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
  for (const event of sortByTime(events)) {
    for (const change of engine.ingest(event)) {
      changes.push(change);
      if (change.type === 'policy_gap') gaps.set(change.finding.id, change.finding);
    }
  }
  return { incidents: engine.listIncidents(), policyGaps: [...gaps.values()], changes, engine };
}
