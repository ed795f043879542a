import type Redis from 'ioredis';
import type { Queue } from 'bullmq';
import type { Approval, ApprovalStore } from '../approvals/store';
import type { Incident } from '../correlate/incident';
import type { Target } from '../enforcer/enforcer';
import type { Ledger } from '../ledger/ledger';
import type { Logger } from '../logger';
import { durationMs, formatDuration } from '../playbook/duration';
import type { LoadedPlaybook } from '../playbook/load';
import { select } from '../playbook/match';
import { plan, type PlannedStep, type PlannedTarget } from '../playbook/plan';
import { Safety, SIEM_CHANNELS } from '../playbook/model';
import { incidentNotice } from '../notify/notice';
import type { Delivery } from '../notify/notifier';
import type { EnrichOutcome, SplunkEnricher } from '../siem/splunk-enrich';
import type { AdmitRequest, CircuitBreaker, PlaybookLimits } from './breaker';
import { EnforcerError, type Capabilities } from '../enforcer/enforcer';
import type { EntitySelector } from '../playbook/selector';
import { faultPoint } from './faults';
import type { Quarantines } from './quarantine';
import type { SideQueue } from './side-queue';

/** One playbook run for one incident: the plan it follows, fixed when the run starts. */
export interface Run {
  incidentId: string;
  playbookId: string;
  actor: string;
  incident: Incident;
  steps: PlannedStep[];
  startedAt: number;
  /** Why the playbook matched: its description, else its name. */
  description: string;
  /** The playbook's safety.protected selectors and protected_approval, passed to each quarantine. */
  protected?: EntitySelector[];
  protectedApproval?: { approvers: string[]; deadline: string };
  /** The playbook's max_concurrent_quarantines and circuit_breaker, checked as each quarantine is applied. */
  limits?: PlaybookLimits;
}

export interface RunnerDeps {
  redis: Redis;
  prefix: string;
  queue: Queue;
  ledger: Ledger;
  quarantines: Quarantines;
  approvals: ApprovalStore;
  breaker: CircuitBreaker;
  playbooks: () => readonly LoadedPlaybook[];
  /** The configured enforcement layers, whose capabilities the plan states (a layer that cannot cut connections). */
  enforcers?: ReadonlyMap<string, { capabilities: Capabilities }>;
  /** Asks for the incident's status to change (containment starting, or given up before it held anything). */
  status?: (run: Run, status: 'containing' | 'open', reason: string) => Promise<void>;
  /** Where enrichment searches and notification deliveries run, apart from containment. */
  side?: SideQueue;
  /** Runs enrich steps' Splunk searches; none = splunk.search is off, and the record says so. */
  enricher?: SplunkEnricher;
  /** Attempts per notification delivery (notify.retry.attempts). */
  deliveryAttempts?: number;
  /** The signed-link deliveries an approval gets when it opens (notify.oncall). */
  oncall?: (run: Run, approval: Approval) => Delivery[];
  log: Logger;
  clock?: () => number;
}

/**
 * Runs playbooks: each step is a BullMQ job whose id is the plan's deterministic job id
 * (incident, playbook version, step), so a retried job or a replayed incident never runs a step
 * twice. A step that completes enqueues the next; an approval step pauses the run until a
 * decision (or its deadline) continues it.
 */
export class PlaybookRunner {
  private readonly clock: () => number;

  constructor(private readonly deps: RunnerDeps) {
    this.clock = deps.clock ?? Date.now;
  }

  /** Starts the run for an incident once; later updates of the incident do not start another. */
  async onIncident(incident: Incident): Promise<Run | undefined> {
    const selection = select(this.deps.playbooks(), incident);
    const chosen = selection.playbook;
    if (!chosen) {
      this.deps.log.info({ incident: incident.id, severity: incident.severity, confidence: incident.confidence }, 'no playbook matched');
      return undefined;
    }
    const now = this.clock();
    const run: Run = {
      incidentId: incident.id,
      playbookId: chosen.id,
      actor: `playbook:${chosen.id}`,
      incident,
      steps: plan(chosen, incident, { now, connectionCut: this.connectionCut() }),
      startedAt: now,
      description: chosen.spec.description ?? chosen.spec.name,
      protected: [...chosen.spec.safety.protected],
      ...(chosen.spec.safety.protected_approval ? { protectedApproval: { approvers: [...chosen.spec.safety.protected_approval.approvers], deadline: chosen.spec.safety.protected_approval.deadline } } : {}),
      limits: playbookLimits(chosen.spec.name, chosen.spec.safety),
    };
    const fresh = await this.deps.redis.set(this.runKey(incident.id), JSON.stringify(run), 'NX');
    if (fresh === 'OK') return this.start(run);
    return this.resume(incident.id);
  }

  /**
   * Records the run's start, then queues its first step, marking each phase done. A process that
   * died in between left a claimed run without its first step: the incident's redelivery resumes
   * it from the phase it reached (see resume).
   */
  private async start(run: Run, from: 'claimed' | 'recorded' = 'claimed'): Promise<Run> {
    const { incident } = run;
    await faultPoint('run-claimed');
    if (from === 'claimed') {
      // Both asked for at once (the ledger keeps call order), so they go out in one group commit.
      await Promise.all([
        this.ledger('incident_raised', run, incident.id, `${incident.severity} incident, score ${incident.score}: ${incident.summary}`, { after: { id: incident.id, severity: incident.severity, root: incident.root } }),
        this.ledger('playbook_started', run, incident.id, `${run.playbookId} matched: ${run.description}`, { after: { steps: run.steps.map((s) => s.jobId) } }),
      ]);
      if (containsAnything(run)) await this.deps.status?.(run, 'containing', `${run.playbookId} started`);
      await this.deps.redis.set(this.phaseKey(incident.id), 'recorded');
    }
    await faultPoint('run-recorded');
    await this.enqueueStep(run, 0);
    await this.deps.redis.set(this.phaseKey(incident.id), 'queued');
    this.deps.log.info({ incident: incident.id, playbook: run.playbookId, steps: run.steps.map((s) => s.id) }, 'playbook run started');
    return run;
  }

  /** The run of an incident seen before: started already (undefined), or resumed now. */
  private async resume(incidentId: string): Promise<Run | undefined> {
    const phase = await this.deps.redis.get(this.phaseKey(incidentId));
    if (phase === 'queued') return undefined;
    const run = await this.run(incidentId);
    if (!run) return undefined;
    this.deps.log.warn({ incident: incidentId, playbook: run.playbookId, phase: phase ?? 'claimed' }, 'resuming a playbook run whose start was cut off');
    return this.start(run, phase === 'recorded' ? 'recorded' : 'claimed');
  }

  async run(incidentId: string): Promise<Run | undefined> {
    const json = await this.deps.redis.get(this.runKey(incidentId));
    return json ? (JSON.parse(json) as Run) : undefined;
  }

  /** Executes step `index` of a run (a BullMQ job body); of `claimed`, the run its job claimed the step in, when given. */
  async runStep(incidentId: string, index: number, claimed?: Run): Promise<void> {
    const run = claimed ?? (await this.run(incidentId));
    const step = run?.steps[index];
    if (!run || !step) return;
    const next = await this.execute(run, step);
    if (next === 'continue') await this.enqueueStep(run, index + 1);
  }

  /** An approval was decided (by a person or its deadline): continue, or release and stop. */
  async onDecision(approval: Approval): Promise<void> {
    const run = await this.run(approval.incidentId);
    if (!run) return;
    const step = run.steps[approval.stepIndex];
    const approved = approval.state === 'approved';
    if (approval.subject === 'target') {
      if (approved && step?.type === 'quarantine') await this.containTargets(run, step, approval.targets.map((t) => t.key), approvedTtl(approval, durationMs(step.ttl)), approval.decidedBy ?? 'approval');
      return;
    }
    if (approved) {
      await this.keep(run, approval);
      await this.enqueueStep(run, approval.stepIndex + 1);
      return;
    }
    const actor = approval.decidedBy ?? run.actor;
    const why = `approval ${approval.id} ${approval.state.replace('_', ' ')}: ${approval.reason ?? ''}`.trim();
    const held = await this.releaseAll(run, why, undefined, actor);
    if (held === 0) await this.deps.status?.(run, 'open', why);
  }

  private async execute(run: Run, step: PlannedStep): Promise<'continue' | 'pause'> {
    switch (step.type) {
      case 'notify':
        await this.ledger('playbook_step', run, step.jobId, `notify ${step.channels.join(', ')}: ${step.message}`, {
          after: { step: step.id, type: 'notify', channels: step.channels, message: step.message, dryRun: step.dryRun },
        });
        if (!step.dryRun) await this.deliver(run, step);
        return 'continue';
      case 'enrich':
        await this.enrich(run, step);
        return 'continue';
      case 'approve':
        await this.ask(run, step);
        return 'pause';
      case 'wait':
        if (step.duration) {
          await this.enqueueStep(run, step.index + 1, durationMs(step.duration));
          return 'pause';
        }
        return 'continue';
      case 'quarantine': {
        if (!step.gatedBy) {
          await this.quarantine(run, step);
          return 'continue';
        }
        const gate = await this.gate(run, step.gatedBy);
        if (gate?.state !== 'approved') return 'pause';
        await this.quarantine(run, step, approvedTtl(gate, durationMs(step.ttl)), gate.decidedBy ?? 'approval');
        return 'continue';
      }
      case 'release':
        await this.releaseAll(run, `release step ${step.id}`, step.targets.filter((t) => t.decision === 'release').map((t) => t.key));
        return 'continue';
    }
  }

  /**
   * Queues one delivery per channel that is not a SIEM (those get the notify record through the
   * ledger); the run goes on at once, whatever the channels answer.
   */
  private async deliver(run: Run, step: Extract<PlannedStep, { type: 'notify' }>): Promise<void> {
    const notice = incidentNotice(run.incident, run.playbookId, step.id, step.message);
    for (const channel of step.channels.filter((c) => !(SIEM_CHANNELS as readonly string[]).includes(c))) {
      const d: Delivery = { id: `${step.jobId}.${channel}`, channel, notice, actor: run.actor, incidentId: run.incidentId, target: step.jobId };
      await this.queueDelivery(d);
    }
  }

  private async queueDelivery(d: Delivery): Promise<void> {
    if (!this.deps.side) throw new Error(`notification ${d.id}: no side queue to deliver it`);
    await this.deps.side.add('deliver', d, { jobId: d.id, attempts: this.deps.deliveryAttempts ?? 1 });
  }

  /**
   * The entities' labels are read now (before a later quarantine step changes them); the Splunk
   * search runs on the side queue, so a slow or failing Splunk never holds the run up. The step's
   * record is written when the search ends (finishEnrich).
   */
  private async enrich(run: Run, step: Extract<PlannedStep, { type: 'enrich' }>): Promise<void> {
    const labels = await this.currentLabels(run);
    if (this.deps.side) await this.deps.side.add('enrich', { incidentId: run.incidentId, index: step.index, labels }, { jobId: `${step.jobId}.search`, attempts: 3 });
    else await this.finishEnrich(run.incidentId, step.index, labels);
  }

  /** Runs an enrich step's search and attaches the outcome to the incident's ledger record. */
  async finishEnrich(incidentId: string, index: number, labels: unknown): Promise<void> {
    const run = await this.run(incidentId);
    const step = run?.steps[index];
    if (!run || step?.type !== 'enrich') return;
    const search: EnrichOutcome = this.deps.enricher
      ? await this.deps.enricher.enrich(run.incident, step.query)
      : { outcome: 'skipped', source: 'splunk', reason: 'splunk.search is not enabled in the config' };
    await this.ledger('playbook_step', run, step.jobId, `enrich: ${step.summary}: ${enrichResult(search)}`.slice(0, 8_000), {
      after: { step: step.id, type: 'enrich', source: step.source, query: step.query ?? null, labels: labels as never, search: search as never },
    });
  }

  private async quarantine(run: Run, step: Extract<PlannedStep, { type: 'quarantine' }>, ttlMs?: number, approvedBy?: string): Promise<void> {
    const ready = step.targets.filter((t) => t.decision === 'quarantine').map((t) => t.key);
    for (const t of step.targets.filter((t) => t.decision === 'requires-approval')) await this.askForTarget(run, step, t);
    await this.containTargets(run, step, ready, ttlMs, approvedBy);
  }

  /**
   * The labels each entity of the incident has now, as the run's enforcement layers (or, for a run
   * that contains nothing, every configured layer) see them. At most ENRICH_ENTITIES entities.
   */
  private async currentLabels(run: Run): Promise<Record<string, Record<string, Record<string, string> | { error: string }>>> {
    const layers = [...new Set(run.steps.flatMap((s) => (s.type === 'quarantine' ? [s.enforcer] : [])))];
    const configured = this.deps.quarantines.enforcerNames();
    const out: Record<string, Record<string, Record<string, string> | { error: string }>> = {};
    for (const layer of (layers.length > 0 ? layers : configured).filter((l) => configured.includes(l))) {
      const seen: Record<string, Record<string, string> | { error: string }> = {};
      for (const e of run.incident.entities.slice(0, ENRICH_ENTITIES)) {
        try {
          seen[e.key] = (await this.deps.quarantines.observeTarget(layer, toTarget(e))).labels;
        } catch (err) {
          seen[e.key] = { error: (err as Error).message };
        }
      }
      out[layer] = seen;
    }
    return out;
  }

  private async containTargets(run: Run, step: Extract<PlannedStep, { type: 'quarantine' }>, keys: string[], ttlMs = durationMs(step.ttl), approvedBy?: string): Promise<void> {
    for (const key of keys) {
      const planned = step.targets.find((t) => t.key === key)!;
      if (step.dryRun) {
        await this.ledger('dry_run', run, key, `would quarantine ${describe(planned)} with ${step.enforcer} for ${step.ttl}`, { after: { labels: step.labels, ttlMs } });
        continue;
      }
      const admit: AdmitRequest = { incidentId: run.incidentId, target: key, approved: approvedBy !== undefined, limits: this.limitsOf(run) };
      const admission = await this.deps.breaker.admit(this.clock(), admit);
      if (!admission.ok) {
        await this.overLimit(run, step, planned, admission.reason);
        continue;
      }
      try {
        await this.deps.quarantines.contain({
          target: toTarget(planned),
          enforcer: step.enforcer,
          labels: step.labels,
          ttlMs,
          incidentId: run.incidentId,
          actor: run.actor,
          reason: `${run.playbookId} step ${step.id}: ${run.incident.summary}`,
          ...(approvedBy !== undefined && { approvedBy }),
          protected: run.protected ?? [],
          cutConnections: step.cutConnections,
        });
      } catch (err) {
        if (!(err instanceof EnforcerError && err.code === 'protected') || approvedBy !== undefined || !run.protectedApproval) throw err;
        await this.deps.breaker.forget(admit);
        await this.askForTarget(run, step, { ...planned, reasons: [...planned.reasons, `protected as ${step.enforcer} sees it now: ${err.message}`] });
      }
    }
  }

  /**
   * A quarantine no person approved, past a cap or with a breaker tripped, is not applied: it waits
   * for the playbook's protected_approval inquiry, whose question names the limit.
   */
  private async overLimit(run: Run, step: Extract<PlannedStep, { type: 'quarantine' }>, planned: PlannedTarget, reason: string): Promise<void> {
    if (!run.protectedApproval) {
      await this.ledger('playbook_step', run, planned.key, `not quarantined: ${reason}; the playbook has no safety.protected_approval to ask`, { after: { step: step.id, skipped: planned.key } });
      return;
    }
    await this.askForTarget(run, step, { ...planned, reasons: [...planned.reasons, reason] });
  }

  /** The run's playbook limits; a run recorded before runs carried them takes its loaded playbook's, or the defaults. */
  private limitsOf(run: Run): PlaybookLimits {
    if (run.limits) return run.limits;
    const loaded = this.deps.playbooks().find((p) => p.id === run.playbookId);
    return playbookLimits(loaded?.spec.name ?? run.playbookId.split('@')[0]!, loaded?.spec.safety ?? Safety.parse({}));
  }

  private connectionCut(): Record<string, boolean> {
    return Object.fromEntries([...(this.deps.enforcers ?? new Map<string, { capabilities: Capabilities }>())].map(([name, e]) => [name, e.capabilities.connectionCut]));
  }

  private async ask(run: Run, step: Extract<PlannedStep, { type: 'approve' }>): Promise<void> {
    const quarantine = run.steps.find((s): s is Extract<PlannedStep, { type: 'quarantine' }> => s.type === 'quarantine');
    await this.request(run, {
      id: step.jobId,
      stepIndex: step.index,
      question: step.question,
      subject: 'step',
      targets: (quarantine?.targets ?? []).filter((t) => t.decision !== 'skip').map(({ key, name, ip }) => ({ key, name, ip })),
      ...(quarantine ? { ttlMs: durationMs(quarantine.ttl), labels: quarantine.labels } : {}),
      approvers: step.approvers,
      deadlineInMs: Date.parse(step.deadline.latest) - Date.parse(step.startsAt.latest),
      onTimeout: step.onTimeout,
      ...(step.escalation ? { escalation: { approvers: step.escalation.approvers, deadlineMs: Date.parse(step.escalation.deadline.latest) - Date.parse(step.deadline.latest) } } : {}),
    });
  }

  private async askForTarget(run: Run, step: Extract<PlannedStep, { type: 'quarantine' }>, t: PlannedTarget): Promise<void> {
    const a = t.approval ?? this.targetApproval(run, step, t);
    await this.request(run, {
      id: a.jobId,
      stepIndex: step.index,
      question: `Quarantine ${describe(t)} for ${step.ttl}? ${t.reasons.join('; ')}`,
      subject: 'target',
      targets: [{ key: t.key, name: t.name, ip: t.ip }],
      ttlMs: durationMs(step.ttl),
      labels: step.labels,
      approvers: a.approvers,
      deadlineInMs: Date.parse(a.deadline.latest) - Date.parse(step.startsAt.latest),
      onTimeout: 'release',
    });
  }

  /** The inquiry for a target the plan let through but that must wait for a person (protected as the layer sees it). */
  private targetApproval(run: Run, step: Extract<PlannedStep, { type: 'quarantine' }>, t: PlannedTarget): NonNullable<PlannedTarget['approval']> {
    const pa = run.protectedApproval!;
    const iso = new Date(Date.parse(step.startsAt.latest) + durationMs(pa.deadline)).toISOString();
    return { jobId: `${step.jobId}.approve.${jobSafe(t.key)}`, approvers: pa.approvers, deadline: { earliest: iso, latest: iso }, onTimeout: 'not quarantined' };
  }

  /** Opens an approval; its deadline is `deadlineInMs` after its creation, both from one reading of the clock. */
  private async request(
    run: Run,
    { deadlineInMs, ...fields }: Omit<Approval, 'incidentId' | 'playbookId' | 'state' | 'createdAt' | 'labels' | 'deadline'> & { labels?: Record<string, string>; deadlineInMs: number },
  ): Promise<void> {
    const createdAt = this.clock();
    const approval: Approval = { labels: {}, ...fields, deadline: createdAt + deadlineInMs, incidentId: run.incidentId, playbookId: run.playbookId, state: 'pending', createdAt };
    const { created } = await this.deps.approvals.create(approval);
    if (!created) return;
    await this.deps.ledger.append({
      actor: run.actor,
      action: 'approval_requested',
      target: approval.targets[0]?.key ?? run.incidentId,
      after: { question: approval.question, approvers: approval.approvers, deadline: approval.deadline, onTimeout: approval.onTimeout },
      reason: approval.question,
      incidentId: run.incidentId,
      approvalId: approval.id,
    });
    await this.announce(run, approval);
    await this.deps.queue.add('approval-timeout', { approvalId: approval.id }, { jobId: `timeout.${approval.id}.${approval.deadline}`, delay: Math.max(0, approval.deadline - this.clock()) });
  }

  /** Sends an open approval's signed approve/deny links to each on-call approver of its groups. */
  async announce(run: Run, approval: Approval): Promise<void> {
    for (const d of this.deps.oncall?.(run, approval) ?? []) await this.queueDelivery(d);
  }

  /** The approval of the approve step (by step id) that gates a quarantine. */
  private async gate(run: Run, gate: string): Promise<Approval | undefined> {
    const step = run.steps.find((s) => s.id === gate);
    return step ? this.deps.approvals.get(step.jobId) : undefined;
  }

  /**
   * Contain-now-approve-to-keep: an approval keeps the quarantines this run already holds, for the
   * approved TTL from the decision (the playbook's TTL unless the approver gave a shorter one), as
   * an audited extension by the approver, with the approver's reason.
   */
  private async keep(run: Run, approval: Approval): Promise<void> {
    if (approval.ttlMs === undefined) return;
    const ttlMs = approvedTtl(approval, approval.ttlMs);
    const until = (approval.decidedAt ?? this.clock()) + ttlMs;
    for (const lease of await this.deps.quarantines.registry.live()) {
      if (!lease.holders.includes(run.incidentId) || lease.expiresAt === until) continue;
      await this.deps.quarantines.extend(lease.target, until, {
        actor: approval.decidedBy ?? run.actor,
        reason: `kept for ${formatDuration(ttlMs)} by approval ${approval.id}: ${approval.reason ?? 'approved'}`,
        incidentId: run.incidentId,
      });
    }
  }

  /** Queues the release of the run's live quarantines (`only` these targets, when given); returns how many. */
  private async releaseAll(run: Run, reason: string, only?: string[], actor = run.actor): Promise<number> {
    let queued = 0;
    for (const lease of await this.deps.quarantines.registry.live()) {
      if (!lease.holders.includes(run.incidentId) || (only && !only.includes(lease.target))) continue;
      await this.deps.queue.add('release', { entity: lease.target, incidentId: run.incidentId, actor, reason }, { jobId: `release.${jobSafe(lease.target)}.${run.incidentId}` });
      queued += 1;
    }
    return queued;
  }

  private async enqueueStep(run: Run, index: number, delay = 0): Promise<void> {
    const step = run.steps[index];
    if (!step) return;
    await this.deps.queue.add('step', { incidentId: run.incidentId, index }, { jobId: step.jobId, delay, attempts: 8, backoff: { type: 'exponential', delay: 500 } });
  }

  private async ledger(action: 'incident_raised' | 'playbook_started' | 'playbook_step' | 'dry_run', run: Run, target: string, reason: string, payload: { after: Record<string, unknown> }): Promise<void> {
    await this.deps.ledger.append({ actor: run.actor, action, target, after: payload.after as never, reason, incidentId: run.incidentId });
  }

  private runKey(incidentId: string): string {
    return `${this.deps.prefix}:contain:run:${incidentId}`;
  }

  /** How far the run's start got: `recorded` (in the ledger), `queued` (first step queued). */
  private phaseKey(incidentId: string): string {
    return `${this.runKey(incidentId)}:phase`;
  }
}

/** Entities whose labels an enrich step records. */
const ENRICH_ENTITIES = 20;

function enrichResult(search: EnrichOutcome): string {
  if (search.outcome === 'skipped') return `not searched: ${search.reason}`;
  if (search.outcome === 'failed') return `search failed: ${search.error}`;
  return `${search.rows.length} row(s)${search.truncated ? ' (truncated)' : ''}`;
}

export function playbookLimits(playbook: string, safety: Safety): PlaybookLimits {
  const cb = safety.circuit_breaker;
  return { playbook, maxConcurrent: safety.max_concurrent_quarantines, maxNew: cb.max_new_quarantines, windowMs: durationMs(cb.per), per: cb.per };
}

/** The TTL an approval grants: what was asked, or less when the approver said so (never more). */
export function approvedTtl(approval: Pick<Approval, 'approvedTtlMs'>, requestedMs: number): number {
  return approval.approvedTtlMs !== undefined ? Math.min(approval.approvedTtlMs, requestedMs) : requestedMs;
}

function describe(t: { name?: string; ip?: string; key: string }): string {
  return t.name ? `${t.name}${t.ip ? ` (${t.ip})` : ''}` : (t.ip ?? t.key);
}

/** The enforcement target of an incident entity; a pod's namespace is in its key (`pod:ns/name`). */
export function toTarget(t: { key: string; kind: string; name?: string; ip?: string }): Target {
  const kind = (['pod', 'vm', 'host', 'service', 'node', 'external'].includes(t.kind) ? t.kind : 'ip') as Target['kind'];
  const m = /^pod:([^/]+)\/(.+)$/.exec(t.key);
  return {
    entity: t.key,
    kind,
    ...(t.name ? { name: m ? m[2] : t.name } : {}),
    ...(m ? { namespace: m[1] } : {}),
    ...(t.ip ? { ip: t.ip } : {}),
  };
}

export function jobSafe(text: string): string {
  return text.replace(/[^A-Za-z0-9._@-]/g, '_');
}

/** Whether the run would quarantine anything for real (not only notify, or record a dry run). */
function containsAnything(run: Run): boolean {
  return run.steps.some((s) => s.type === 'quarantine' && !s.dryRun && s.targets.some((t) => t.decision !== 'skip'));
}
