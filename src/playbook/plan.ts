import type { IncidentView } from './incident-schema';
import type { LoadedPlaybook } from './load';
import { incidentFacts } from './match';
import {
  approvalGates,
  approvalSpanMs,
  DEFAULT_PROTECTED,
  type Enforcer,
  type Mode,
  type QuarantineTarget,
  type StepOf,
  type StepType,
} from './model';
import { durationMs } from './duration';
import { compileSelector, describeSelector, type EntityFacts, type EntitySelector } from './selector';
import { render, renderSpl, type TemplateValues } from './template';

/**
 * The plan of a playbook for one incident: every step with its deterministic job id, the actionner
 * it would call, the entities it would touch and the safety decisions, with absolute times from
 * `now`. Pure: the same playbook, incident, `now` and state give the same plan. This is what
 * `cordon playbook test` prints and what the executor runs.
 */

/** When something happens: a single instant (earliest = latest) or a window that depends on people. */
export interface Window {
  earliest: string;
  latest: string;
}

export interface PlanOptions {
  now: number | Date;
  /**
   * Quarantine counters at plan time, to apply `max_concurrent_quarantines` and the circuit breaker
   * now. Without them the plan lists those checks as guards for the executor to apply.
   */
  state?: { activeQuarantines: number; recentQuarantines: number };
  /**
   * Whether each configured layer cuts established connections (its `capabilities.connectionCut`);
   * a layer not given has its built-in answer (CONNECTION_CUT).
   */
  connectionCut?: Readonly<Record<string, boolean>>;
}

export type TargetDecision = 'quarantine' | 'requires-approval' | 'skip';

export interface PlannedTarget {
  key: string;
  name?: string;
  kind: string;
  ip?: string;
  role: string;
  position: string;
  decision: TargetDecision;
  reasons: string[];
  /** When the quarantine would expire on its own (ttl after it is applied). */
  expiresAt?: Window;
  /** The inquiry a protected or over-limit target waits for. */
  approval?: { jobId: string; approvers: string[]; deadline: Window; onTimeout: 'not quarantined' };
  /** Contain-now-approve-to-keep: released unless this approval keeps it, at the latest at `releasedBy`. */
  provisional?: { approval: string; releasedBy: string };
  /** Whether the incident carried this entity's workload labels (label selectors need them). */
  labelsKnown: boolean;
}

export interface PlannedRelease {
  key: string;
  name?: string;
  decision: 'release' | 'skip';
  reason: string;
}

interface PlannedBase<T extends StepType> {
  index: number;
  id: string;
  type: T;
  /** `${incidentId}.${playbook}@${version}.${stepId}`: valid as a BullMQ job id. */
  jobId: string;
  /** `<layer>:<action>`, one per layer the step calls. */
  actionners: string[];
  dryRun: boolean;
  startsAt: Window;
  summary: string;
  notes: string[];
}

export type PlannedStep =
  | (PlannedBase<'notify'> & { channels: string[]; message: string })
  | (PlannedBase<'enrich'> & { source: string; query: string | undefined })
  | (PlannedBase<'approve'> & {
      question: string;
      approvers: string[];
      deadline: Window;
      onTimeout: 'approve' | 'release' | 'escalate';
      escalation?: { approvers: string[]; deadline: Window };
      blocking: boolean;
    })
  | (PlannedBase<'quarantine'> & {
      enforcer: Enforcer;
      target: QuarantineTarget;
      labels: Record<string, string>;
      ttl: string;
      cutConnections: boolean;
      /** Whether established connections are cut: asked (cut_connections) and the layer can. */
      cutsConnections: boolean;
      gatedBy: string | undefined;
      targets: PlannedTarget[];
      guards: string[];
    })
  | (PlannedBase<'wait'> & { duration: string | undefined; until: 'approval' | undefined; endsAt: Window })
  | (PlannedBase<'release'> & { target: QuarantineTarget; enforcer: Enforcer | undefined; targets: PlannedRelease[] });

// ---------------------------------------------------------------------------------------------
// Job ids

const SAFE = /[A-Za-z0-9._@-]/;

/**
 * Escape a job id component: every character outside [A-Za-z0-9._@-] becomes %XX of its UTF-8
 * bytes (so `:` never appears, and distinct inputs stay distinct).
 */
export function jobIdPart(text: string): string {
  let out = '';
  for (const ch of text) {
    if (SAFE.test(ch)) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** BullMQ refuses custom job ids that contain ':' or read as an integer. */
export function isValidJobId(id: string): boolean {
  return id.length > 0 && !id.includes(':') && `${parseInt(id, 10)}` !== id;
}

/** The deterministic job id of a step: a retry or a replayed incident update never runs a step twice. */
export function stepJobId(incidentId: string, playbookId: string, stepId: string): string {
  const id = `${jobIdPart(incidentId)}.${jobIdPart(playbookId)}.${jobIdPart(stepId)}`;
  if (!isValidJobId(id)) throw new Error(`not a valid job id: ${id}`);
  return id;
}

// ---------------------------------------------------------------------------------------------
// Enforcement layers

/** Which entities a layer can contain. */
const ENFORCER_REACH: Readonly<Record<Enforcer, { kinds?: readonly string[]; needsIp?: boolean; what: string }>> = {
  kubernetes: { kinds: ['pod'], what: 'labels pods' },
  illumio: { kinds: ['host', 'vm'], what: 'labels Illumio workloads (hosts and VMs)' },
  nftables: { needsIp: true, what: 'drops by address' },
  webhook: { what: 'hands any entity to the webhook' },
  labelstore: { what: 'keeps labels in Redis only (tests, benchmarks)' },
};

/**
 * Whether a layer cuts a target's established connections when it quarantines it, as its
 * enforcer's `capabilities.connectionCut` says. The webhook's is what the receiver declares
 * (`contain.enforcers.webhook.capabilities`, default false); the config's answer overrides these.
 */
export const CONNECTION_CUT: Readonly<Record<Enforcer, boolean>> = {
  nftables: true,
  kubernetes: false,
  illumio: false,
  webhook: false,
  labelstore: false,
};

function cutsConnections(enforcer: Enforcer, options: PlanOptions): boolean {
  return options.connectionCut?.[enforcer] ?? CONNECTION_CUT[enforcer];
}

/** What the plan says of a step that asks cut_connections of a layer that cannot. */
export function cannotCutNote(enforcer: Enforcer): string {
  return `${enforcer} cannot cut existing connections: cut_connections is asked, but established connections of the target stay open; only new ones are blocked`;
}

function reachProblem(enforcer: Enforcer, e: EntityFacts): string | undefined {
  if (e.kind === 'external') return 'an external entity is not ours to contain';
  const reach = ENFORCER_REACH[enforcer];
  if (reach.kinds && !reach.kinds.includes(e.kind)) return `${enforcer} ${reach.what}; this is a ${e.kind}`;
  if (reach.needsIp && e.ip === undefined) return `${enforcer} ${reach.what}; no address is known for it`;
  if (enforcer === 'kubernetes' && e.namespace === undefined) return 'kubernetes needs the pod namespace; the incident does not say it';
  return undefined;
}

// ---------------------------------------------------------------------------------------------

export function templateValues(playbook: LoadedPlaybook, incident: IncidentView): TemplateValues {
  const { root, others } = incidentFacts(incident);
  const names = others.map((e) => e.name ?? e.ip ?? e.key);
  const targets = names.length <= 10 ? names.join(', ') : `${names.slice(0, 10).join(', ')} and ${names.length - 10} more`;
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    'incident.id': incident.id,
    'incident.severity': incident.severity,
    'incident.score': String(incident.score),
    'incident.confidence': String(incident.confidence),
    'incident.techniques': incident.techniques.join(', '),
    'incident.summary': incident.summary,
    'incident.root': incident.root,
    'incident.first_seen': iso(incident.firstSeen),
    'incident.last_seen': iso(incident.lastSeen),
    'root.name': root.name ?? root.ip ?? root.key,
    'root.ip': root.ip ?? 'unknown',
    'root.role': root.role,
    targets: targets || 'none',
    'playbook.name': playbook.spec.name,
    'playbook.version': playbook.version,
    'playbook.id': playbook.id,
    'playbook.mode': playbook.spec.mode,
    'run.dry_run': String(playbook.spec.dry_run),
  };
}

/** The entities a `target` names, in incident order. */
export function resolveTargets(target: QuarantineTarget, facts: { root: EntityFacts; others: EntityFacts[] }): EntityFacts[] {
  switch (target) {
    case 'root':
      return [facts.root];
    case 'pivots':
      return facts.others.filter((e) => e.position === 'pivot');
    case 'targets':
      return facts.others;
    case 'all':
      return [facts.root, ...facts.others];
  }
}

interface Cursor {
  earliest: number;
  latest: number;
}

const iso = (ms: number) => new Date(ms).toISOString();
const win = (earliest: number, latest: number): Window => ({ earliest: iso(earliest), latest: iso(latest) });

export function plan(playbook: LoadedPlaybook, incident: IncidentView, options: PlanOptions): PlannedStep[] {
  const now = typeof options.now === 'number' ? options.now : options.now.getTime();
  if (!Number.isFinite(now)) throw new Error('plan: now is not a valid time');
  const spec = playbook.spec;
  const facts = incidentFacts(incident);
  const values = templateValues(playbook, incident);
  const gates = approvalGates(spec.steps);
  const protectedSelectors = [
    ...DEFAULT_PROTECTED.map((sel, i) => protection(sel, `built-in protected.${i}`)),
    ...spec.safety.protected.map((sel, i) => protection(sel, `safety.protected.${i}`)),
  ];
  const labelSelectors = protectedSelectors.filter((p) => p.byLabels).map((p) => p.label);

  const jobId = (stepId: string) => stepJobId(incident.id, playbook.id, stepId);
  const dryRun = spec.dry_run;
  const baseNotes = dryRun ? ['dry run: logged and recorded, nothing is sent or changed'] : [];

  let cursor: Cursor = { earliest: now, latest: now };
  let pending: { id: string; decidedBy: number } | undefined;
  /** Quarantines this run makes or asks for, by entity key, for release steps and approvals. */
  const contained = new Map<string, { enforcer: Enforcer; step: string }>();
  /** Automatic (unapproved) quarantines planned so far, for the runtime limits. */
  let automatic = 0;
  const out: PlannedStep[] = [];

  spec.steps.forEach((step, index) => {
    const startsAt = win(cursor.earliest, cursor.latest);
    const base = { index, id: step.id, jobId: jobId(step.id), dryRun, startsAt, notes: [...baseNotes] };
    switch (step.type) {
      case 'notify': {
        const message = render(step.message, values);
        out.push({
          ...base,
          type: 'notify',
          actionners: step.channels.map((c) => `${c}:notify`),
          channels: [...step.channels],
          message,
          summary: `send to ${step.channels.join(', ')}: ${JSON.stringify(message.length > 120 ? message.slice(0, 117) + '...' : message)}`,
        });
        break;
      }
      case 'enrich': {
        const query = step.query === undefined ? undefined : renderSpl(step.query, values);
        out.push({
          ...base,
          type: 'enrich',
          actionners: [`${step.source}:enrich`],
          source: step.source,
          query,
          summary: query ? `search ${step.source}: ${query}` : `run the built-in ${step.source} search for the incident entities`,
        });
        break;
      }
      case 'approve': {
        const deadlineMs = durationMs(step.deadline);
        const deadline = win(cursor.earliest + deadlineMs, cursor.latest + deadlineMs);
        const escalation =
          step.on_timeout === 'escalate' && step.escalate_to
            ? { approvers: [...step.escalate_to], deadline: win(cursor.earliest + 2 * deadlineMs, cursor.latest + 2 * deadlineMs) }
            : undefined;
        const decidedBy = cursor.latest + approvalSpanMs(step);
        const question = approvalQuestion(spec.mode, spec.steps, index, facts);
        const onTimeout = timeoutText(spec.mode, step, question.containedBefore);
        out.push({
          ...base,
          type: 'approve',
          actionners: ['cordon:approve'],
          question: question.text,
          approvers: [...step.approvers],
          deadline,
          onTimeout: step.on_timeout,
          ...(escalation && { escalation }),
          blocking: step.blocking,
          summary: `ask ${step.approvers.join(', ')}: ${question.text} Deadline ${describeWindow(deadline)}; ${onTimeout}.${step.blocking ? '' : ' The run does not wait here.'}`,
        });
        if (step.blocking) cursor = { earliest: cursor.earliest, latest: decidedBy };
        else pending = { id: step.id, decidedBy };
        break;
      }
      case 'wait': {
        if (step.duration !== undefined) {
          const d = durationMs(step.duration);
          cursor = { earliest: cursor.earliest + d, latest: cursor.latest + d };
        } else if (pending) {
          cursor = { earliest: cursor.earliest, latest: Math.max(cursor.latest, pending.decidedBy) };
        }
        const endsAt = win(cursor.earliest, cursor.latest);
        out.push({
          ...base,
          type: 'wait',
          actionners: ['cordon:wait'],
          duration: step.duration,
          until: step.until,
          endsAt,
          summary:
            step.duration !== undefined
              ? `pause ${step.duration}, until ${describeWindow(endsAt)}`
              : `pause until approval "${pending?.id}" is decided, at the latest ${endsAt.latest}`,
        });
        if (step.until === 'approval') pending = undefined;
        break;
      }
      case 'quarantine': {
        const ttlMs = durationMs(step.ttl);
        const gate = gates[index];
        const keep = spec.mode === 'contain-now-approve-to-keep' && gate === undefined ? keepingApproval(spec.steps, index, cursor) : undefined;
        const targets: PlannedTarget[] = [];
        for (const e of resolveTargets(step.target, facts)) {
          const t: PlannedTarget = {
            key: e.key,
            ...(e.name !== undefined && { name: e.name }),
            kind: e.kind,
            ...(e.ip !== undefined && { ip: e.ip }),
            role: e.role,
            position: e.position,
            decision: 'quarantine',
            reasons: [],
            labelsKnown: e.labels !== undefined,
          };
          targets.push(t);
          const problem = reachProblem(step.enforcer, e);
          if (problem) {
            t.decision = 'skip';
            t.reasons.push(problem);
            continue;
          }
          const already = contained.get(e.key);
          if (already && already.enforcer === step.enforcer) {
            t.decision = 'skip';
            t.reasons.push(`already quarantined with ${step.enforcer} by step "${already.step}" of this run`);
            continue;
          }
          const prot = protectedSelectors.find((p) => p.match(e));
          if (gate !== undefined) {
            t.reasons.push(`approved by step "${gate}"${prot ? ` (protected: ${prot.label}; the approval covers it)` : ''}`);
          } else if (prot) {
            t.decision = 'requires-approval';
            t.reasons.push(`protected: ${prot.label}; never quarantined without approval`);
          } else {
            automatic += 1;
            const limit = limitProblem(spec.safety, options.state, automatic);
            if (limit) {
              t.decision = 'requires-approval';
              t.reasons.push(limit);
            } else {
              t.reasons.push(spec.mode === 'auto' ? 'automatic (mode auto)' : `at once (mode ${spec.mode})`);
            }
          }
          if (!t.labelsKnown && labelSelectors.length && gate === undefined && t.decision === 'quarantine') {
            t.reasons.push(`labels not in the incident: the enforcer checks ${labelSelectors.join(', ')} on the live workload first`);
          }
          if (t.decision === 'requires-approval') {
            const pa = spec.safety.protected_approval;
            if (pa) {
              const d = durationMs(pa.deadline);
              t.approval = {
                jobId: `${base.jobId}.approve.${jobIdPart(e.key)}`,
                approvers: [...pa.approvers],
                deadline: win(cursor.earliest + d, cursor.latest + d),
                onTimeout: 'not quarantined',
              };
              t.expiresAt = win(cursor.earliest + ttlMs, cursor.latest + d + ttlMs);
            }
          } else {
            t.expiresAt = win(cursor.earliest + ttlMs, cursor.latest + ttlMs);
            if (keep) t.provisional = { approval: keep.id, releasedBy: iso(keep.decidedBy) };
          }
          contained.set(e.key, { enforcer: step.enforcer, step: step.id });
        }
        // Limits apply to quarantines no person approved; without counters the executor checks them.
        const guards =
          options.state || gate !== undefined
            ? []
            : [
                `max_concurrent_quarantines ${spec.safety.max_concurrent_quarantines}: past it an automatic quarantine needs approval`,
                `circuit_breaker ${spec.safety.circuit_breaker.max_new_quarantines} per ${spec.safety.circuit_breaker.per}: past it an automatic quarantine needs approval`,
              ];
        const counts = countDecisions(targets);
        const cuts = step.cut_connections && cutsConnections(step.enforcer, options);
        const cutText = cuts ? ', cutting established connections' : step.cut_connections ? `; ${step.enforcer} cannot cut existing connections` : '';
        out.push({
          ...base,
          notes: step.cut_connections && !cuts ? [...base.notes, cannotCutNote(step.enforcer)] : base.notes,
          type: 'quarantine',
          actionners: [`${step.enforcer}:quarantine`],
          enforcer: step.enforcer,
          target: step.target,
          labels: { ...step.labels },
          ttl: step.ttl,
          cutConnections: step.cut_connections,
          cutsConnections: cuts,
          gatedBy: gate,
          targets,
          guards,
          summary:
            `quarantine ${step.target} with ${step.enforcer} for ${step.ttl}` +
            ` (labels ${Object.entries(step.labels).map(([k, v]) => `${k}=${v}`).join(',')}${cutText}): ${counts}` +
            (keep ? `; kept only if approval "${keep.id}" approves, else released by ${iso(keep.decidedBy)}` : ''),
        });
        break;
      }
      case 'release': {
        const targets: PlannedRelease[] = resolveTargets(step.target, facts).map((e) => {
          const held = contained.get(e.key);
          const name = e.name !== undefined ? { name: e.name } : {};
          if (!held) return { key: e.key, ...name, decision: 'skip', reason: 'not quarantined by this run' };
          if (step.enforcer && held.enforcer !== step.enforcer) {
            return { key: e.key, ...name, decision: 'skip', reason: `quarantined with ${held.enforcer}, this step releases ${step.enforcer}` };
          }
          return { key: e.key, ...name, decision: 'release', reason: `releases this incident's hold from step "${held.step}" (other incidents' holds stay)` };
        });
        const layers = [...new Set(targets.filter((t) => t.decision === 'release').map((t) => contained.get(t.key)!.enforcer))];
        out.push({
          ...base,
          type: 'release',
          actionners: (layers.length ? layers : [step.enforcer ?? 'cordon']).map((l) => `${l}:release`),
          target: step.target,
          enforcer: step.enforcer,
          targets,
          summary: `release ${step.target}: ${targets.filter((t) => t.decision === 'release').length} of ${targets.length} entit${targets.length === 1 ? 'y' : 'ies'}`,
        });
        break;
      }
    }
  });
  return out;
}

function protection(sel: EntitySelector, field: string) {
  return { label: `${field} (${describeSelector(sel)})`, match: compileSelector(sel), byLabels: sel.labels !== undefined };
}

function countDecisions(targets: readonly PlannedTarget[]): string {
  if (targets.length === 0) return 'no entity';
  const n = (d: TargetDecision) => targets.filter((t) => t.decision === d).length;
  return [`${n('quarantine')} now`, `${n('requires-approval')} need approval`, `${n('skip')} skipped`].join(', ');
}

function limitProblem(
  safety: LoadedPlaybook['spec']['safety'],
  state: PlanOptions['state'],
  planned: number,
): string | undefined {
  if (!state) return undefined;
  if (state.activeQuarantines + planned > safety.max_concurrent_quarantines) {
    return `max_concurrent_quarantines: ${state.activeQuarantines} active + ${planned} would exceed ${safety.max_concurrent_quarantines}`;
  }
  const cb = safety.circuit_breaker;
  if (state.recentQuarantines + planned > cb.max_new_quarantines) {
    return `circuit breaker open: ${state.recentQuarantines} new quarantines in the last ${cb.per} + ${planned} would exceed ${cb.max_new_quarantines}`;
  }
  return undefined;
}

/** The approve step after a contain-now quarantine that decides whether it is kept. */
function keepingApproval(
  steps: LoadedPlaybook['spec']['steps'],
  index: number,
  cursor: Cursor,
): { id: string; decidedBy: number } | undefined {
  let at = { ...cursor };
  for (let i = index + 1; i < steps.length; i++) {
    const s = steps[i]!;
    if (s.type === 'approve') return { id: s.id, decidedBy: at.latest + approvalSpanMs(s) };
    if (s.type === 'wait' && s.duration !== undefined) at = { earliest: at.earliest + durationMs(s.duration), latest: at.latest + durationMs(s.duration) };
  }
  return undefined;
}

function approvalQuestion(
  mode: Mode,
  steps: LoadedPlaybook['spec']['steps'],
  index: number,
  facts: { root: EntityFacts; others: EntityFacts[] },
): { text: string; containedBefore: boolean } {
  const names = (target: QuarantineTarget) => resolveTargets(target, facts).map((e) => e.name ?? e.ip ?? e.key);
  const list = (qs: StepOf<'quarantine'>[]) => [...new Set(qs.flatMap((q) => names(q.target)))].join(', ') || 'nothing';
  const before = steps.slice(0, index).filter((s): s is StepOf<'quarantine'> => s.type === 'quarantine');
  if (mode === 'contain-now-approve-to-keep' && before.length) {
    return { text: `keep the quarantine of ${list(before)} (step${before.length > 1 ? 's' : ''} ${before.map((q) => q.id).join(', ')})?`, containedBefore: true };
  }
  const after: StepOf<'quarantine'>[] = [];
  for (const s of steps.slice(index + 1)) {
    if (s.type === 'approve') break;
    if (s.type === 'quarantine') after.push(s);
  }
  if (after.length) return { text: `quarantine ${list(after)} (step${after.length > 1 ? 's' : ''} ${after.map((q) => q.id).join(', ')})?`, containedBefore: false };
  return { text: 'proceed with the rest of the playbook?', containedBefore: false };
}

function timeoutText(mode: Mode, step: StepOf<'approve'>, containedBefore: boolean): string {
  const no = containedBefore || mode === 'contain-now-approve-to-keep' ? 'releases the quarantine' : 'means no quarantine';
  switch (step.on_timeout) {
    case 'approve':
      return 'silence approves';
    case 'release':
      return `silence ${no}`;
    case 'escalate':
      return `then ${step.escalate_to?.join(', ')} are asked with the same deadline; silence after that ${no}`;
  }
}

export function describeWindow(w: Window): string {
  return w.earliest === w.latest ? w.earliest : `between ${w.earliest} and ${w.latest}`;
}

