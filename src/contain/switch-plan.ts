import type { Incident } from '../correlate/incident';
import { CARRIED_IN_RECORD, type LedgerEntry, type PlaybookChangedPayload } from '../ledger/records';
import type { LoadedPlaybook } from '../playbook/load';
import type { Selection } from '../playbook/match';
import { plan, type PlanOptions, type PlannedStep } from '../playbook/plan';
import type { Run } from './runner';

/**
 * Choosing the playbook again on every version of an incident (pure): when another playbook is
 * chosen, the run switches to that playbook's plan, less what the incident already had done.
 *
 * A step's identity is what makes it the same action for the incident whichever playbook asks:
 * a notify is its step id and channel (one identity per channel), an enrich its step id, a
 * quarantine its target. Approve, wait and release steps have none: a new playbook's inquiry is
 * a new question, and waits and releases are about its own quarantines.
 */

/** A quarantine step of a playbook the run followed before, with the targets it planned. */
export interface FollowedQuarantine {
  step: string;
  targets: string[];
}

export interface Followed {
  playbookId: string;
  quarantines: FollowedQuarantine[];
}

/** A run as kept in Redis: the runner's run, plus what switching adds (absent on a first run). */
export type SwitchedRun = Run & {
  /** 0 for the first playbook; +1 at each switch. Part of the job ids of the steps from 1 on. */
  generation?: number;
  /** The playbooks the run followed before this one, oldest first. */
  followed?: Followed[];
};

/** Identities a step claims when it runs (see above); quarantine targets are judged by their leases. */
export function stepIdentities(step: PlannedStep): string[] {
  switch (step.type) {
    case 'notify':
      return step.channels.map((c) => `notify:${step.id}:${c}`);
    case 'enrich':
      return [`enrich:${step.id}`];
    case 'quarantine':
      return step.targets.filter((t) => t.decision === 'quarantine').map((t) => `quarantine:${t.key}`);
    default:
      return [];
  }
}

/** What the incident already has, as far as carrying steps over goes. */
export interface DoneState {
  /** Identities claimed by steps of any playbook this incident's run followed. */
  claimed: ReadonlySet<string>;
  /** Why a target is already taken care of for this incident (a live or ended lease it held), by entity key. */
  held: ReadonlyMap<string, string>;
}

export interface Carried {
  step: string;
  identity: string;
  why: string;
}

export interface SwitchDecision {
  run: SwitchedRun;
  carried: Carried[];
}

/** Whether the selection asks for another playbook than the run follows (none matching: the run stays). */
export function switchTarget(current: Run, selection: Selection): LoadedPlaybook | undefined {
  const chosen = selection.playbook;
  return chosen && chosen.id !== current.playbookId ? chosen : undefined;
}

/**
 * The run that follows `chosen` from now on: its plan for this version of the incident, with job
 * ids of a generation of their own (a playbook followed twice does not meet its old jobs), and
 * every step identity already done left out: a notify's channel dropped (the step too, when none
 * is left), a quarantine's target marked skip with the reason, an enrich step dropped.
 */
export function switchRun(current: SwitchedRun, chosen: LoadedPlaybook, incident: Incident, options: PlanOptions & { now: number }, done: DoneState): SwitchDecision {
  const generation = (current.generation ?? 0) + 1;
  const carried: Carried[] = [];
  const kept: PlannedStep[] = [];
  for (const step of plan(chosen, incident, options)) {
    const next = carryOver(renamed(step, generation), done, carried);
    if (next) kept.push(next);
  }
  const steps = kept.map((s, index) => ({ ...s, index }));
  const run: SwitchedRun = {
    incidentId: incident.id,
    playbookId: chosen.id,
    actor: `playbook:${chosen.id}`,
    incident,
    steps,
    startedAt: options.now,
    description: chosen.spec.description ?? chosen.spec.name,
    protected: [...chosen.spec.safety.protected],
    ...(chosen.spec.safety.protected_approval
      ? { protectedApproval: { approvers: [...chosen.spec.safety.protected_approval.approvers], deadline: chosen.spec.safety.protected_approval.deadline } }
      : {}),
    generation,
    followed: [...(current.followed ?? []), followedOf(current)],
  };
  return { run, carried };
}

function followedOf(run: Run): Followed {
  return {
    playbookId: run.playbookId,
    quarantines: run.steps.flatMap((s) => (s.type === 'quarantine' ? [{ step: s.id, targets: s.targets.map((t) => t.key) }] : [])),
  };
}

/** Job ids of generation g: `<plan job id>.g<g>`, and each target inquiry's id after its step's. */
function renamed(step: PlannedStep, generation: number): PlannedStep {
  const jobId = `${step.jobId}.g${generation}`;
  if (step.type !== 'quarantine') return { ...step, jobId };
  return {
    ...step,
    jobId,
    targets: step.targets.map((t) => (t.approval ? { ...t, approval: { ...t.approval, jobId: t.approval.jobId.replace(step.jobId, jobId) } } : t)),
  };
}

function carryOver(step: PlannedStep, done: DoneState, carried: Carried[]): PlannedStep | undefined {
  switch (step.type) {
    case 'notify': {
      const sent = step.channels.filter((c) => done.claimed.has(`notify:${step.id}:${c}`));
      for (const c of sent) carried.push({ step: step.id, identity: `notify:${step.id}:${c}`, why: `already notified ${c} for this incident` });
      const channels = step.channels.filter((c) => !sent.includes(c));
      return channels.length === 0 ? undefined : { ...step, channels, actionners: step.actionners.filter((a) => channels.some((c) => a === `${c}:notify`)) };
    }
    case 'enrich':
      if (!done.claimed.has(`enrich:${step.id}`)) return step;
      carried.push({ step: step.id, identity: `enrich:${step.id}`, why: 'already enriched for this incident' });
      return undefined;
    case 'quarantine':
      return {
        ...step,
        targets: step.targets.map((t) => {
          if (t.decision === 'skip') return t;
          const why = done.held.get(t.key) ?? (done.claimed.has(`quarantine:${t.key}`) ? 'a quarantine of this target for this incident is under way' : undefined);
          if (!why) return t;
          carried.push({ step: step.id, identity: `quarantine:${t.key}`, why });
          const { approval: _approval, ...rest } = t;
          return { ...rest, decision: 'skip' as const, reasons: [...t.reasons, `not again: ${why}`] };
        }),
      };
    default:
      return step;
  }
}

/** Whether the run would quarantine anything for real (the incident is then containing). */
export function containsAnything(run: Run): boolean {
  return run.steps.some((s) => s.type === 'quarantine' && !s.dryRun && s.targets.some((t) => t.decision !== 'skip'));
}

/** Whether an approval is one the run's current steps asked (a step's inquiry, or one of its targets'). */
export function askedByRun(run: Run, approvalId: string): boolean {
  return run.steps.some((s) => approvalId === s.jobId || approvalId.startsWith(`${s.jobId}.approve.`));
}

/** How far a switch got: `claimed` (the run is the new one), `recorded` (in the ledger), `queued` (first step queued). */
export interface SwitchState {
  generation: number;
  phase: 'claimed' | 'recorded' | 'queued';
  from: string;
  matched: string[];
  carried: Carried[];
}

/** The playbook_changed entry of a switch: bounded whatever the incident (at most CARRIED_IN_RECORD identities listed). */
export function changeEntry(run: SwitchedRun, state: SwitchState): LedgerEntry {
  const after: PlaybookChangedPayload = {
    from: state.from,
    to: run.playbookId,
    generation: state.generation,
    severity: run.incident.severity,
    version: run.incident.version,
    matched: state.matched.slice(0, 64).map((m) => m.slice(0, 1024)),
    steps: run.steps.map((s) => s.jobId),
    carried: state.carried.slice(0, CARRIED_IN_RECORD),
    ...(state.carried.length > CARRIED_IN_RECORD && { carriedLeftOut: state.carried.length - CARRIED_IN_RECORD }),
  };
  const n = state.carried.length;
  return {
    actor: run.actor,
    action: 'playbook_changed',
    target: run.incidentId,
    before: { playbook: state.from },
    after,
    reason: `incident version ${run.incident.version} (${run.incident.severity}, confidence ${run.incident.confidence}) chose ${run.playbookId} instead of ${state.from}; ${n} step identit${n === 1 ? 'y' : 'ies'} already done not run again`,
    incidentId: run.incidentId,
  };
}
