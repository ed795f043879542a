import type { Approval } from '../approvals/store';
import type { Run } from '../contain/runner';
import type { Lease, LedgerRecord } from '../ledger/records';

/**
 * What a playbook run has done so far, step by step, read from the ledger records of the incident,
 * its approvals and the leases it holds. Pure: the console shows it as the run's progress.
 */

export type StepState = 'done' | 'waiting' | 'approved' | 'denied' | 'timed out' | 'escalated' | 'skipped' | 'failed' | 'dry run' | 'not reached';

export interface TargetView {
  key: string;
  name?: string;
  decision: string;
  state: string;
  expiresAt?: number;
  detail?: string;
}

export interface StepView {
  index: number;
  id: string;
  type: string;
  summary: string;
  dryRun: boolean;
  state: StepState;
  at?: number;
  detail?: string;
  approvalId?: string;
  targets?: TargetView[];
}

export interface RunView {
  incidentId: string;
  playbookId: string;
  startedAt: number;
  steps: StepView[];
}

const APPROVAL_STATE: Record<Approval['state'], StepState> = {
  pending: 'waiting',
  approved: 'approved',
  denied: 'denied',
  timed_out: 'timed out',
  escalated: 'escalated',
};

export function runView(run: Run, records: readonly LedgerRecord[], approvals: readonly Approval[], leases: readonly Lease[]): RunView {
  const steps = run.steps.map((step): StepView => {
    const base = { index: step.index, id: step.id, type: step.type, summary: step.summary, dryRun: step.dryRun };
    switch (step.type) {
      case 'notify':
        return { ...base, ...notifyState(step.jobId, records) };
      case 'enrich': {
        const done = records.find((r) => r.action === 'playbook_step' && r.target === step.jobId);
        if (!done) return { ...base, state: 'not reached' };
        const search = (done.after as { search?: { outcome?: string } } | null)?.search;
        return { ...base, state: search?.outcome === 'failed' ? 'failed' : 'done', at: done.at, detail: done.reason.replace(/^enrich: /, '') };
      }
      case 'approve': {
        const a = approvals.find((x) => x.id === step.jobId);
        if (!a) return { ...base, state: 'not reached' };
        const detail = a.state === 'pending' ? `asked ${a.approvers.join(', ')}; deadline ${new Date(a.deadline).toISOString()}` : `${a.decidedBy ?? ''}: ${a.reason ?? ''}`;
        return { ...base, state: APPROVAL_STATE[a.state], approvalId: a.id, at: a.decidedAt ?? a.createdAt, detail };
      }
      case 'quarantine': {
        const targets = step.targets.map((t) => targetView(run, step.index, t, records, approvals, leases));
        return { ...base, state: quarantineState(targets), targets };
      }
      case 'release': {
        const done = records.find((r) => r.action.startsWith('quarantine_') && r.reason.startsWith(`release step ${step.id}`));
        return { ...base, state: done ? 'done' : 'not reached', ...(done ? { at: done.at } : {}) };
      }
      case 'wait':
        return { ...base, state: 'not reached' };
    }
  });
  // An enrich step whose search has not ended yet is still running once a later step happened.
  steps.forEach((s, i) => {
    if (s.type === 'enrich' && s.state === 'not reached' && steps.slice(i + 1).some((x) => x.state !== 'not reached')) {
      s.state = 'waiting';
      s.detail = 'searching';
    }
  });
  // A wait step is over once anything after it happened, and running while the step before it is done.
  steps.forEach((s, i) => {
    if (s.type !== 'wait') return;
    const later = steps.slice(i + 1).some((x) => x.state !== 'not reached');
    const previous = i === 0 || steps[i - 1]!.state !== 'not reached';
    s.state = later ? 'done' : previous ? 'waiting' : 'not reached';
  });
  return { incidentId: run.incidentId, playbookId: run.playbookId, startedAt: run.startedAt, steps };
}

/** A notify step: its record, and how each delivery to a configured channel ended (failed if one did). */
function notifyState(jobId: string, records: readonly LedgerRecord[]): Pick<StepView, 'state' | 'at' | 'detail'> {
  const mine = records.filter((r) => r.action === 'playbook_step' && r.target === jobId);
  const done = mine.find((r) => (r.after as { delivery?: string } | null)?.delivery === undefined);
  if (!done) return { state: 'not reached' };
  const deliveries = mine.map((r) => (r.after ?? {}) as { delivery?: string; channel?: string; outcome?: string; error?: string }).filter((a) => a.delivery !== undefined);
  const detail = deliveries.map((d) => `${d.channel}: ${d.outcome === 'delivered' ? 'delivered' : `not delivered (${d.error ?? ''})`}`).join('; ');
  return { state: deliveries.some((d) => d.outcome === 'failed') ? 'failed' : 'done', at: done.at, ...(detail ? { detail } : {}) };
}

function targetView(
  run: Run,
  stepIndex: number,
  t: { key: string; name?: string; decision: string },
  records: readonly LedgerRecord[],
  approvals: readonly Approval[],
  leases: readonly Lease[],
): TargetView {
  const view = { key: t.key, ...(t.name ? { name: t.name } : {}), decision: t.decision };
  if (t.decision === 'skip') return { ...view, state: 'skipped' };
  const lease = leases.find((l) => l.target === t.key && records.some((r) => r.action.startsWith('quarantine_') && r.target === t.key && r.incidentId === run.incidentId));
  if (lease) return { ...view, state: lease.state, expiresAt: lease.expiresAt };
  if (records.some((r) => r.action === 'dry_run' && r.target === t.key)) return { ...view, state: 'dry run' };
  const skipped = records.find((r) => r.action === 'playbook_step' && r.target === t.key);
  if (skipped) return { ...view, state: 'skipped', detail: skipped.reason };
  const asked = approvals.find((a) => a.subject === 'target' && a.stepIndex === stepIndex && a.targets.some((x) => x.key === t.key));
  if (asked) return { ...view, state: `approval ${asked.state}` };
  return { ...view, state: 'not reached' };
}

function quarantineState(targets: TargetView[]): StepState {
  const states = targets.map((t) => t.state);
  const acted = states.filter((s) => s !== 'skipped');
  if (states.length === 0 || (acted.length > 0 && acted.every((s) => s === 'not reached'))) return 'not reached';
  if (states.includes('failed')) return 'failed';
  if (states.every((s) => s === 'dry run' || s === 'skipped')) return states.includes('dry run') ? 'dry run' : 'skipped';
  if (states.some((s) => s === 'not reached' || s === 'pending' || s.startsWith('approval pending'))) return 'waiting';
  return 'done';
}
