import { readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { z } from 'zod';
import { IncidentSchema, type ParsedIncident } from '../playbook/incident-schema';
import { formatIssue, loadPlaybookFile, loadPlaybooks, type LoadedPlaybook, type PlaybookIssue } from '../playbook/load';
import { matches, select, type Candidate } from '../playbook/match';
import { describeWindow, plan, type PlannedStep } from '../playbook/plan';
import { playbookJsonSchema } from '../playbook/schema';
import { describeIssues, parseJson } from '../validation';
import { parseOptions } from './options';
import { processTerminal, type Terminal } from './terminal';

/**
 * `cordon playbook validate|test|schema`: playbooks as code, checked and tried before they run.
 * Nothing here touches Kafka, Redis or an enforcer.
 */

const MAX_INCIDENT_FILE_BYTES = 64 * 1024 * 1024;

const ValidateOptions = z.object({ paths: z.array(z.string().min(1)).default(['playbooks']), json: z.boolean().default(false) });

const Count = z.coerce.number().int().min(0).max(1_000_000);
const TestOptions = z
  .object({
    playbook: z.string().min(1),
    incident: z.string().min(1),
    now: z.iso.datetime({ offset: true, error: 'expected an ISO 8601 time such as 2024-05-01T12:00:00Z' }).optional(),
    json: z.boolean().default(false),
    activeQuarantines: Count.optional(),
    recentQuarantines: Count.optional(),
  })
  .superRefine((o, ctx) => {
    if ((o.activeQuarantines === undefined) === (o.recentQuarantines === undefined)) return;
    const [path, input] = o.activeQuarantines === undefined ? ['recentQuarantines', o.recentQuarantines] : ['activeQuarantines', o.activeQuarantines];
    ctx.addIssue({ code: 'custom', path: [path], input, message: 'give both --active-quarantines and --recent-quarantines, or neither' });
  });
type TestOptions = z.infer<typeof TestOptions>;

export function registerPlaybook(program: Command, term: Terminal = processTerminal()): void {
  const playbook = program.command('playbook').description('check, try and describe response playbooks (YAML under playbooks/)');

  playbook
    .command('validate')
    .description('validate playbook files (a directory: its *.yaml / *.yml); prints "ok name@version" or file:line:col errors, exit 1 on any error')
    .argument('[paths...]', 'playbook files or directories (default: playbooks)')
    .option('--json', 'print {valid: [{id, file}], issues: [{file, line, col, path, message}]} instead')
    .action((paths: string[], raw: { json?: boolean }) => {
      const opts = parseOptions('playbook validate', ValidateOptions, { ...raw, paths: paths.length ? paths : undefined });
      const { playbooks, issues } = loadPlaybooks(opts.paths);
      const bad = new Set(issues.map((i) => i.file));
      if (opts.json) {
        const valid = playbooks.filter((p) => !bad.has(p.file)).map((p) => ({ id: p.id, file: p.file }));
        term.out.write(`${JSON.stringify({ valid, issues })}\n`);
        if (issues.length) process.exitCode = 1;
        return;
      }
      for (const p of playbooks) if (!bad.has(p.file)) process.stdout.write(`ok ${p.id}  ${p.file}\n`);
      for (const i of issues) process.stderr.write(`${formatIssue(i)}\n`);
      if (issues.length) {
        process.stderr.write(`${issues.length} error(s) in ${bad.size} file(s)\n`);
        process.exitCode = 1;
      }
    });

  playbook
    .command('test')
    .description(
      'show whether a playbook matches an incident and the steps it would take, with their job ids; touches nothing. ' +
        'PLAYBOOK may be a directory: the playbook that would be selected is shown. INCIDENT is a JSON file (one incident, an array, or JSON lines as `cordon replay --json` prints)',
    )
    .argument('<playbook>', 'playbook file, or a directory of playbooks')
    .argument('<incident>', 'incident JSON file')
    .option('--now <iso>', 'the time the run starts (default: the incident\'s lastSeen, so the output is reproducible)')
    .option('--json', 'print the result as JSON')
    .option('--active-quarantines <n>', 'live quarantines of the runs of this playbook now (with --recent-quarantines: apply the limits in the plan)')
    .option('--recent-quarantines <n>', 'new quarantines within the circuit breaker window')
    .action((playbookPath: string, incidentPath: string, raw) => {
      const opts = parseOptions('playbook test', TestOptions, { ...raw, playbook: playbookPath, incident: incidentPath });
      process.exitCode = runTest(opts);
    });

  playbook
    .command('schema')
    .description('print the JSON Schema of playbook files (for editors: playbooks/playbook.schema.json)')
    .action(() => {
      process.stdout.write(`${JSON.stringify(playbookJsonSchema(), null, 2)}\n`);
    });
}

function printIssues(issues: readonly PlaybookIssue[]): void {
  for (const i of issues) process.stderr.write(`${formatIssue(i)}\n`);
}

function runTest(opts: TestOptions): number {
  let playbooks: LoadedPlaybook[];
  let isSet = false;
  try {
    isSet = statSync(opts.playbook).isDirectory();
  } catch {
    // reported by the loader
  }
  if (isSet) {
    const r = loadPlaybooks([opts.playbook]);
    if (r.issues.length) {
      printIssues(r.issues);
      return 1;
    }
    playbooks = r.playbooks;
  } else {
    const r = loadPlaybookFile(opts.playbook);
    if (!r.ok) {
      printIssues(r.issues);
      return 1;
    }
    playbooks = [r.playbook];
  }

  const read = readIncidents(opts.incident);
  if (!read.ok) {
    for (const e of read.errors) process.stderr.write(`${e}\n`);
    return 1;
  }
  const state =
    opts.activeQuarantines !== undefined && opts.recentQuarantines !== undefined
      ? { activeQuarantines: opts.activeQuarantines, recentQuarantines: opts.recentQuarantines }
      : undefined;

  for (const incident of read.incidents) {
    const now = opts.now !== undefined ? Date.parse(opts.now) : incident.lastSeen;
    let chosen: LoadedPlaybook | undefined;
    let matched: boolean;
    let reasons: string[];
    let candidates: Candidate[] | undefined;
    if (isSet) {
      const sel = select(playbooks, incident);
      candidates = sel.candidates;
      chosen = sel.playbook;
      matched = chosen !== undefined;
      reasons = sel.candidates.find((c) => c.id === chosen?.id)?.reasons ?? [];
    } else {
      chosen = playbooks[0] as LoadedPlaybook;
      const m = matches(chosen, incident);
      matched = m.matched;
      reasons = m.reasons;
    }
    const steps = chosen ? plan(chosen, incident, { now, ...(state && { state }) }) : [];
    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify({
          incident: incident.id,
          now: new Date(now).toISOString(),
          playbook: chosen ? { id: chosen.id, file: chosen.file, mode: chosen.spec.mode, dryRun: chosen.spec.dry_run } : null,
          matched,
          reasons,
          ...(candidates && { candidates }),
          plan: steps,
        })}\n`,
      );
    } else {
      process.stdout.write(describeTest(incident, now, chosen, matched, reasons, candidates, steps));
    }
  }
  return 0;
}

type ReadIncidents = { ok: true; incidents: ParsedIncident[] } | { ok: false; errors: string[] };

/** One incident, an array of them, or JSON lines; every one validated at this edge. */
export function readIncidents(file: string): ReadIncidents {
  let text: string;
  try {
    if (statSync(file).size > MAX_INCIDENT_FILE_BYTES) return { ok: false, errors: [`${file}: larger than ${MAX_INCIDENT_FILE_BYTES} bytes`] };
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return { ok: false, errors: [`${file}: cannot read: ${(err as Error).message}`] };
  }
  const values: { where: string; value: unknown }[] = [];
  const whole = parseJson(text);
  if (whole.ok) {
    if (Array.isArray(whole.value)) whole.value.forEach((v, i) => values.push({ where: `${file}: [${i}]`, value: v }));
    else values.push({ where: file, value: whole.value });
  } else {
    const lines = text.split(/\r?\n/);
    const errors: string[] = [];
    lines.forEach((line, i) => {
      if (!line.trim()) return;
      const r = parseJson(line);
      if (r.ok) values.push({ where: `${file}:${i + 1}`, value: r.value });
      else errors.push(`${file}:${i + 1}: ${r.reason}`);
    });
    if (errors.length) return { ok: false, errors: errors.slice(0, 10) };
  }
  if (values.length === 0) return { ok: false, errors: [`${file}: no incident in the file`] };
  const incidents: ParsedIncident[] = [];
  const errors: string[] = [];
  for (const { where, value } of values) {
    const r = IncidentSchema.safeParse(value);
    if (r.success) incidents.push(r.data);
    else errors.push(`${where}: not an incident: ${describeIssues(r.error)}`);
  }
  return errors.length ? { ok: false, errors } : { ok: true, incidents };
}

function describeTest(
  incident: ParsedIncident,
  now: number,
  playbook: LoadedPlaybook | undefined,
  matched: boolean,
  reasons: readonly string[],
  candidates: readonly Candidate[] | undefined,
  steps: readonly PlannedStep[],
): string {
  const out: string[] = [];
  out.push(
    `incident  ${incident.id}  ${incident.severity}  score ${incident.score}  confidence ${incident.confidence}  techniques ${incident.techniques.join(',') || '-'}`,
    `          root ${incident.root}; ${incident.entities.length} entities`,
  );
  if (candidates) {
    out.push('candidates (highest priority first; the first that matches runs):');
    for (const c of candidates) out.push(`  ${c.matched ? 'match   ' : 'no match'}  ${String(c.priority).padStart(5)}  ${c.id}  ${c.file}`);
  }
  if (!playbook) {
    out.push('selected  none: no playbook matches this incident', '');
    return out.join('\n');
  }
  out.push(
    `playbook  ${playbook.id}  (${playbook.file})  mode ${playbook.spec.mode}${playbook.spec.dry_run ? '  DRY RUN' : ''}`,
    `matched   ${matched ? 'yes' : 'no: this playbook would not run; below is what it would do if it did'}`,
  );
  for (const r of reasons) out.push(`  ${r}`);
  out.push(`plan      from ${new Date(now).toISOString()} (nothing was touched)`);
  for (const s of steps) {
    out.push(`  ${s.index + 1}. ${s.id} [${s.type}]  ${s.actionners.join(', ')}  ${s.startsAt.earliest === s.startsAt.latest ? 'at ' : ''}${describeWindow(s.startsAt)}`);
    out.push(`     job ${s.jobId}`);
    out.push(`     ${s.summary}`);
    if (s.type === 'quarantine') {
      for (const t of s.targets) {
        const expiry = t.expiresAt ? `  expires ${describeWindow(t.expiresAt)}` : '';
        out.push(`     - ${t.name ?? t.key} (${t.key}${t.ip ? `, ${t.ip}` : ''}, ${t.role}): ${t.decision}${expiry}`);
        for (const r of t.reasons) out.push(`         ${r}`);
        if (t.provisional) out.push(`         kept only if "${t.provisional.approval}" approves; else released by ${t.provisional.releasedBy}`);
        if (t.approval) {
          out.push(`         asks ${t.approval.approvers.join(', ')} by ${describeWindow(t.approval.deadline)} (job ${t.approval.jobId}); silence: not quarantined`);
        }
      }
      for (const g of s.guards) out.push(`     guard: ${g}`);
    }
    if (s.type === 'release') for (const t of s.targets) out.push(`     - ${t.name ?? t.key}: ${t.decision} (${t.reason})`);
    for (const n of s.notes) out.push(`     note: ${n}`);
  }
  out.push('');
  return out.join('\n');
}
