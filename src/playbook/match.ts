import { SEVERITIES } from '../correlate/incident';
import type { IncidentView } from './incident-schema';
import type { LoadedPlaybook } from './load';
import type { Match } from './model';
import { compileSelector, describeSelector, displayEntity, factsOf, type EntityFacts, type IncidentSelector } from './selector';

/**
 * Whether a playbook applies to an incident, with a reason for every criterion (held or failed),
 * and which one of several playbooks runs.
 */

export interface MatchResult {
  matched: boolean;
  /** One line per criterion: `match.severity holds: ...` / `match.severity fails: ...`. */
  reasons: string[];
}

const rank = (s: string) => SEVERITIES.indexOf(s as (typeof SEVERITIES)[number]);

/** A technique pattern matches itself and its sub-techniques: T1021 matches T1021.002. */
export function techniqueMatches(pattern: string, technique: string): boolean {
  return technique === pattern || (!pattern.includes('.') && technique.startsWith(`${pattern}.`));
}

/** Entity facts of an incident: the root first (made from its key if the engine dropped it). */
export function incidentFacts(incident: IncidentView): { root: EntityFacts; others: EntityFacts[] } {
  const all = incident.entities.map(factsOf);
  const root =
    all.find((e) => e.key === incident.root) ??
    factsOf({ key: incident.root, kind: incident.root.slice(0, Math.max(0, incident.root.indexOf(':'))) || 'ip', role: 'unknown', roleSource: 'default', position: 'root' });
  return { root, others: all.filter((e) => e.key !== incident.root) };
}

function scope(sel: IncidentSelector, facts: { root: EntityFacts; others: EntityFacts[] }): EntityFacts[] {
  if (sel.on === 'root') return [facts.root];
  if (sel.on === 'targets') return facts.others;
  return [facts.root, ...facts.others];
}

const onWord = (on: IncidentSelector['on']) => (on === 'root' ? 'root' : on === 'targets' ? 'target' : 'entity');

/** The entity of the incident, among those `on` names, that the selector matches first. */
function firstMatch(sel: IncidentSelector, facts: { root: EntityFacts; others: EntityFacts[] }): EntityFacts | undefined {
  const m = compileSelector(sel);
  return scope(sel, facts).find(m);
}

export function matches(playbook: LoadedPlaybook, incident: IncidentView): MatchResult {
  return matchSpec(playbook.spec.match, incident);
}

export function matchSpec(match: Match, incident: IncidentView): MatchResult {
  const reasons: string[] = [];
  let matched = true;
  const hold = (field: string, ok: boolean, text: string) => {
    reasons.push(`${field} ${ok ? 'holds' : 'fails'}: ${text}`);
    if (!ok) matched = false;
  };

  if (match.severity !== undefined) {
    if (typeof match.severity === 'string') {
      const ok = rank(incident.severity) >= rank(match.severity);
      hold('match.severity', ok, `${incident.severity} is ${ok ? 'at least' : 'below'} ${match.severity}`);
    } else {
      const ok = match.severity.includes(incident.severity);
      hold('match.severity', ok, `${incident.severity} is ${ok ? '' : 'not '}one of ${match.severity.join(', ')}`);
    }
  }
  if (match.confidence !== undefined) {
    const ok = incident.confidence >= match.confidence;
    hold('match.confidence', ok, `${incident.confidence} is ${ok ? 'at least' : 'below'} ${match.confidence}`);
  }
  if (match.techniques !== undefined) {
    const hits = incident.techniques.flatMap((t) => match.techniques!.filter((p) => techniqueMatches(p, t)).map((p) => (p === t ? t : `${t} (as ${p})`)));
    hold(
      'match.techniques',
      hits.length > 0,
      hits.length > 0
        ? `${hits.join(', ')}`
        : `none of ${incident.techniques.join(', ') || '(no technique)'} is ${match.techniques.join(', ')} or a sub-technique of one`,
    );
  }
  const facts = incidentFacts(incident);
  (match.entities ?? []).forEach((sel, i) => {
    const hit = firstMatch(sel, facts);
    hold(
      `match.entities.${i}`,
      hit !== undefined,
      hit ? `${onWord(sel.on)} ${displayEntity(hit)} matches ${describeSelector(sel)}` : `no ${onWord(sel.on)} matches ${describeSelector(sel)}`,
    );
  });
  let excluded = false;
  (match.exclude ?? []).forEach((sel, i) => {
    const hit = firstMatch(sel, facts);
    if (hit) {
      excluded = true;
      reasons.push(`match.exclude.${i} excludes: ${onWord(sel.on)} ${displayEntity(hit)} matches ${describeSelector(sel)}`);
    }
  });
  if (excluded) matched = false;
  else if (match.exclude) reasons.push(`match.exclude holds: none of ${match.exclude.length} exclusion(s) applies`);
  if (reasons.length === 0) reasons.push('match is empty: applies to every incident');
  return { matched, reasons };
}

export interface Candidate {
  id: string;
  priority: number;
  file: string;
  matched: boolean;
  reasons: string[];
}

export interface Selection {
  /** The playbook that runs, or undefined when none matches. */
  playbook: LoadedPlaybook | undefined;
  /** Every playbook considered, highest priority first. */
  candidates: Candidate[];
}

/**
 * The rule: of the playbooks that match, the one with the highest `priority` runs; only one
 * playbook runs per incident. Priorities are unique in a loaded set (`loadPlaybooks` refuses
 * duplicates), so file order never decides; a caller that passes duplicates anyway gets the
 * first of them in the order given.
 */
export function select(playbooks: readonly LoadedPlaybook[], incident: IncidentView): Selection {
  const candidates = playbooks
    .map((p, order) => ({ p, order, r: matches(p, incident) }))
    .sort((a, b) => b.p.spec.priority - a.p.spec.priority || a.order - b.order);
  const chosen = candidates.find((c) => c.r.matched);
  return {
    playbook: chosen?.p,
    candidates: candidates.map(({ p, r }) => ({ id: p.id, priority: p.spec.priority, file: p.file, matched: r.matched, reasons: r.reasons })),
  };
}
