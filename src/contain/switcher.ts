import type { Queue } from 'bullmq';
import type Redis from 'ioredis';
import type { Approval, ApprovalStore } from '../approvals/store';
import type { Incident } from '../correlate/incident';
import type { Ledger } from '../ledger/ledger';
import type { Logger } from '../logger';
import type { LoadedPlaybook } from '../playbook/load';
import { select } from '../playbook/match';
import type { Run } from './runner';
import { askedByRun, changeEntry, containsAnything, stepIdentities, switchRun, switchTarget, type DoneState, type SwitchState, type SwitchedRun } from './switch-plan';

export interface SwitcherDeps {
  redis: Redis;
  prefix: string;
  queue: Queue;
  ledger: Ledger;
  approvals: ApprovalStore;
  playbooks: () => readonly LoadedPlaybook[];
  status: (run: Run, status: 'containing', reason: string) => Promise<void>;
  /** Whether each configured layer cuts established connections, for the plan (PlanOptions.connectionCut). */
  connectionCut?: Readonly<Record<string, boolean>>;
  log: Logger;
  clock: () => number;
}

/** The run's current snapshot unchanged and no step claimed since it was read: then it becomes the new run. */
const SWITCH = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('SCARD', KEYS[2]) ~= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('SET', KEYS[3], ARGV[4])
return 1`;

/** A step job of the run as it is now: its identities are claimed, and the run it belongs to returned. */
const CLAIM = `
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local step = cjson.decode(raw)['steps'][tonumber(ARGV[2]) + 1]
if not step or step['jobId'] ~= ARGV[1] then return false end
redis.call('SADD', KEYS[2], 'job:' .. ARGV[1])
for i = 3, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
return raw`;

const SWITCH_ATTEMPTS = 5;

/**
 * Chooses the playbook again on each newer version of an incident and switches the run when
 * another one is chosen (switch-plan.ts says what is carried over). Each switch is claimed once,
 * by compare-and-set on the run, then recorded, then its first step queued, each phase marked, so
 * a replayed version finishes a cut-off switch instead of making another. Every step job claims
 * its step identities atomically against the current run: a job of a superseded playbook finds
 * itself stale and does nothing, and a switch never misses an identity claimed meanwhile.
 */
export class PlaybookSwitcher {
  constructor(private readonly deps: SwitcherDeps) {}

  /** A newer version of an incident with a run: finishes a cut-off switch, or switches if another playbook is chosen. */
  async onIncident(incident: Incident): Promise<void> {
    for (let attempt = 0; attempt < SWITCH_ATTEMPTS; attempt++) {
      const raw = await this.deps.redis.get(this.runKey(incident.id));
      if (!raw) return;
      const current = JSON.parse(raw) as SwitchedRun;
      const state = await this.state(incident.id);
      if (state && state.generation === current.generation && state.phase !== 'queued') return this.finish(current, state);
      if (incident.version <= current.incident.version) return;
      const chosen = switchTarget(current, select(this.deps.playbooks(), incident));
      if (!chosen) return;
      if (await this.trySwitch(raw, current, chosen, incident)) return;
    }
    throw new Error(`incident ${incident.id}: the run kept changing while switching playbook; tried ${SWITCH_ATTEMPTS} times`);
  }

  private async trySwitch(raw: string, current: SwitchedRun, chosen: LoadedPlaybook, incident: Incident): Promise<boolean> {
    const claimed = await this.deps.redis.smembers(this.doneKey(incident.id));
    const done: DoneState = { claimed: new Set(claimed), held: await this.held(incident.id) };
    const { run, carried } = switchRun(current, chosen, incident, { now: this.deps.clock(), ...(this.deps.connectionCut && { connectionCut: this.deps.connectionCut }) }, done);
    const matched = select(this.deps.playbooks(), incident).candidates.find((c) => c.id === chosen.id)?.reasons ?? [];
    const state: SwitchState = { generation: run.generation!, phase: 'claimed', from: current.playbookId, matched, carried };
    const ok = await this.deps.redis.eval(SWITCH, 3, this.runKey(incident.id), this.doneKey(incident.id), this.switchKey(incident.id), raw, claimed.length, JSON.stringify(run), JSON.stringify(state));
    if (ok !== 1) return false;
    await this.finish(run, state, current);
    return true;
  }

  /** The switch's phases after its claim; each done at most once per phase mark. */
  private async finish(run: SwitchedRun, state: SwitchState, previous?: Run): Promise<void> {
    const id = run.incidentId;
    if (state.phase === 'claimed') {
      await this.record(run, state);
      await this.supersede(run, state.from);
      if (containsAnything(run) && (!previous || !containsAnything(previous))) await this.deps.status(run, 'containing', `${run.playbookId} chosen instead of ${state.from}`);
      await this.setPhase(id, { ...state, phase: 'recorded' });
    }
    const first = run.steps[0];
    if (first) await this.deps.queue.add('step', { incidentId: id, index: 0 }, { jobId: first.jobId, attempts: 8, backoff: { type: 'exponential', delay: 500 } });
    await this.setPhase(id, { ...state, phase: 'queued' });
    this.deps.log.info({ incident: id, from: state.from, to: run.playbookId, generation: run.generation, carried: state.carried.length }, 'playbook changed');
  }

  private async record(run: SwitchedRun, state: SwitchState): Promise<void> {
    await this.deps.ledger.append(changeEntry(run, state));
  }

  /** The old playbook's open inquiries are closed, on record; nothing they gated runs, nothing is released. */
  private async supersede(run: SwitchedRun, from: string): Promise<void> {
    for (const a of await this.deps.approvals.forIncident(run.incidentId)) {
      if (a.state !== 'pending' || askedByRun(run, a.id)) continue;
      const reason = `superseded: the incident now follows ${run.playbookId} instead of ${from}`;
      const outcome = await this.deps.approvals.decide(a.id, { state: 'denied', by: 'service:cordon', reason, at: this.deps.clock() });
      if (outcome.result !== 'decided') continue;
      await this.deps.ledger.append({ actor: 'service:cordon', action: 'approval_refused', target: a.targets[0]?.key ?? a.incidentId, after: { state: 'denied', superseded: true }, reason, incidentId: a.incidentId, approvalId: a.id });
    }
  }

  /** Targets whose lease this incident holds or held: quarantined for it already. */
  private async held(incidentId: string): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const lease of await this.deps.ledger.registry.live()) {
      if (lease.holders.includes(incidentId)) out.set(lease.target, `already quarantined for this incident (lease ${lease.state}, until ${new Date(lease.expiresAt).toISOString()})`);
    }
    return out;
  }

  /** Whether a decided approval still drives the run: one asked by its current steps. */
  async current(approval: Approval): Promise<boolean> {
    const raw = await this.deps.redis.get(this.runKey(approval.incidentId));
    return raw !== null && askedByRun(JSON.parse(raw) as Run, approval.id);
  }

  /**
   * A step job about to run: its identities are claimed against the run as it is now. Returns that
   * run, or undefined when the job belongs to a playbook the run no longer follows (or no run).
   */
  async claim(jobId: string, incidentId: string, index: number): Promise<Run | undefined> {
    const raw = await this.deps.redis.get(this.runKey(incidentId));
    const step = raw ? (JSON.parse(raw) as Run).steps[index] : undefined;
    if (!step || step.jobId !== jobId) return undefined;
    const claimed = (await this.deps.redis.eval(CLAIM, 2, this.runKey(incidentId), this.doneKey(incidentId), jobId, index, ...stepIdentities(step))) as string | null;
    return claimed ? (JSON.parse(claimed) as Run) : undefined;
  }

  /** The run as kept now (with what switching added). */
  async run(incidentId: string): Promise<SwitchedRun | undefined> {
    const raw = await this.deps.redis.get(this.runKey(incidentId));
    return raw ? (JSON.parse(raw) as SwitchedRun) : undefined;
  }

  private async state(incidentId: string): Promise<SwitchState | undefined> {
    const raw = await this.deps.redis.get(this.switchKey(incidentId));
    return raw ? (JSON.parse(raw) as SwitchState) : undefined;
  }

  private async setPhase(incidentId: string, state: SwitchState): Promise<void> {
    await this.deps.redis.set(this.switchKey(incidentId), JSON.stringify(state));
  }

  /** The runner's key for an incident's run (PlaybookRunner.runKey). */
  private runKey(incidentId: string): string {
    return `${this.deps.prefix}:contain:run:${incidentId}`;
  }

  private doneKey(incidentId: string): string {
    return `${this.runKey(incidentId)}:done`;
  }

  private switchKey(incidentId: string): string {
    return `${this.runKey(incidentId)}:switch`;
  }
}
