import type { Incident } from '../correlate/incident';
import type { Palette } from './terminal';

/** One readable paragraph per incident: what `cordon incidents` and `cordon replay` print unless --json. */
export function describeIncident(i: Incident, p: Palette): string {
  const targets = i.entities.filter((e) => e.position !== 'root').map((e) => e.name ?? e.ip ?? e.key);
  const severity = i.severity === 'critical' || i.severity === 'high' ? p.red(i.severity.toUpperCase()) : p.yellow(i.severity.toUpperCase());
  return [
    `${p.bold(i.id)}  ${severity}  score ${i.score}  confidence ${i.confidence}  ${i.status}`,
    `  root:       ${i.root}`,
    `  targets:    ${targets.join(', ')}`,
    `  techniques: ${i.techniques.join(', ')}`,
    `  seen:       ${new Date(i.firstSeen).toISOString()} .. ${new Date(i.lastSeen).toISOString()}`,
    `  summary:    ${i.summary}`,
    '',
  ].join('\n');
}

/** The common output flags: --json for machine output (the default is text for people); --progress/--no-progress. */
export const OUTPUT_HELP = {
  json: 'print JSON (one object a line) instead of text',
  progress: 'show progress on stderr even when it is not a terminal',
  noProgress: 'never show progress (default: only when stderr is a terminal)',
} as const;
