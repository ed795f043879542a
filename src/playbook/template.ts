import { z } from 'zod';

/**
 * Message and query templates: text with `{{ variable }}` placeholders from a fixed list. An
 * unknown variable or an unclosed `{{` is a load error (with its line), not an empty string at
 * 3 a.m. No expressions, no filters, no loops: a template is read, not run.
 */
export const TEMPLATE_VARIABLES = {
  'incident.id': 'the incident id',
  'incident.severity': 'low, medium, high or critical',
  'incident.score': 'the risk score',
  'incident.confidence': 'the confidence, 0..1',
  'incident.techniques': 'the ATT&CK technique ids, comma-separated',
  'incident.summary': 'the one-sentence summary',
  'incident.root': 'the key of the root entity (e.g. host:ws5.corp.local)',
  'incident.first_seen': 'first evidence, ISO 8601',
  'incident.last_seen': 'latest evidence, ISO 8601',
  'root.name': 'the root entity name',
  'root.ip': 'the root entity address',
  'root.role': 'the root entity role',
  targets: 'names of the other entities (targets and pivots), comma-separated, at most 10 then "and N more"',
  'playbook.name': 'the playbook name',
  'playbook.version': 'the playbook content version (12 hex)',
  'playbook.id': 'name@version',
  'playbook.mode': 'the playbook mode',
  'run.dry_run': 'true or false',
} as const;
export type TemplateVariable = keyof typeof TEMPLATE_VARIABLES;
export type TemplateValues = Readonly<Record<TemplateVariable, string>>;

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_.]*)\s*\}\}/g;

/** What is wrong with a template, or undefined. */
export function templateProblem(text: string): string | undefined {
  const unknown: string[] = [];
  for (const m of text.matchAll(PLACEHOLDER)) {
    const name = m[1] ?? '';
    if (!Object.hasOwn(TEMPLATE_VARIABLES, name)) unknown.push(name === '' ? '{{}}' : name);
  }
  if (unknown.length) {
    return `unknown template variable${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => JSON.stringify(u)).join(', ')}; known: ${Object.keys(TEMPLATE_VARIABLES).join(', ')}`;
  }
  const rest = text.replace(PLACEHOLDER, '');
  if (rest.includes('{{') || rest.includes('}}')) return 'has an unbalanced "{{" or "}}" (placeholders are {{ variable }})';
  return undefined;
}

export const Template = z
  .string()
  .min(1)
  .max(4000)
  .superRefine((text, ctx) => {
    const problem = templateProblem(text);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** Plain substitution (notification text: delivered as a JSON string field, never interpreted). */
export function render(text: string, values: TemplateValues): string {
  return text.replace(PLACEHOLDER, (_, name: string) => values[name as TemplateVariable]);
}

/**
 * Substitution for Splunk search text: every value becomes a double-quoted SPL string with `\`
 * and `"` escaped, so a hostile workload name cannot add a `| delete` to the search.
 */
export function renderSpl(text: string, values: TemplateValues): string {
  return text.replace(PLACEHOLDER, (_, name: string) => splQuote(values[name as TemplateVariable]));
}

export function splQuote(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}
