import type { CorrelationConfig } from './config';
import { RULE_DESCRIPTIONS, type Evidence, type Rule } from './evidence';
import type { Incident } from './incident';

/** Why an incident exists: each rule that fired, its weight, and the evidence behind it. */
export interface Explanation {
  id: string;
  severity: Incident['severity'];
  score: number;
  confidence: number;
  threshold: number;
  halfLifeMs: number;
  rules: { rule: Rule; description: string; count: number; weight: number }[];
  evidence: Evidence[];
  summary: string;
}

export function explainIncident(incident: Incident, config: CorrelationConfig): Explanation {
  const rules = (Object.entries(incident.evidence.byRule) as [Rule, { count: number; weight: number }][])
    .map(([rule, t]) => ({ rule, description: RULE_DESCRIPTIONS[rule], count: t.count, weight: t.weight }))
    .sort((a, b) => b.weight - a.weight || (a.rule < b.rule ? -1 : 1));
  const evidence = [...incident.evidence.items].sort((a, b) => b.weight - a.weight || a.firstSeen - b.firstSeen);
  return {
    id: incident.id,
    severity: incident.severity,
    score: incident.score,
    confidence: incident.confidence,
    threshold: config.thresholds.incident,
    halfLifeMs: config.halfLifeMs,
    rules,
    evidence,
    summary: incident.summary,
  };
}

/** Plain text for `--explain`. */
export function formatExplanation(e: Explanation): string {
  const hours = (e.halfLifeMs / 3_600_000).toFixed(1);
  const lines = [
    `${e.id}: ${e.severity}, score ${e.score} (incident at ${e.threshold}; risk halves every ${hours} h), ` +
      `confidence ${e.confidence}`,
    `  ${e.summary}`,
    '  rules:',
    ...e.rules.map((r) => `    ${r.rule.padEnd(13)} +${String(r.weight).padEnd(7)} x${r.count}  ${r.description}`),
    '  evidence:',
    ...e.evidence.map((v) => `    [${v.rule}] +${v.weight} x${v.count}  ${v.reason}`),
  ];
  return lines.join('\n');
}
