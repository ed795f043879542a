import { Queue, Worker, type Job } from 'bullmq';
import type Redis from 'ioredis';
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { Approval } from '../approvals/store';
import { ApprovalStore } from '../approvals/store';
import type { Config } from '../config';
import type { Incident } from '../correlate/incident';
import { CHANGE_HEADER } from '../correlate/correlator';
import type { Enforcer } from '../enforcer/enforcer';
import { FETCH } from '../kafka';
import { Ledger } from '../ledger/ledger';
import type { Lease } from '../ledger/records';
import { isLive as live } from '../ledger/registry';
import type { Logger } from '../logger';
import { IncidentSchema } from '../playbook/incident-schema';
import { formatIssue, loadPlaybooks, type LoadedPlaybook } from '../playbook/load';
import { CircuitBreaker } from './breaker';
import type { IncidentStatus } from '../correlate/incident';
import type { StatusRequests } from '../incidents/status-requests';
import type { Metrics } from '../metrics';
import { incidentStatuses } from './incident-status';
import { Quarantines, type QuarantineChange } from './quarantine';
import { PlaybookRunner, jobSafe } from './runner';

export interface ContainmentDeps {
  kafka: Kafka;
  redis: Redis;
  /** BullMQ needs its own connections (maxRetriesPerRequest: null). */
  bullConnection: () => Redis;
  config: Config;
  enforcers: ReadonlyMap<string, Enforcer>;
  /** Where incident status changes are asked for (the correlator owns incidents); none = statuses stay as they are. */
  statusRequests?: StatusRequests;
  metrics?: Metrics;
  log: Logger;
  clock?: () => number;
}

/** An analyst's decision about an incident, as the ledger keeps it. */
export interface IncidentDecision {
  actor: string;
  incidentId: string;
  /** The incident's root entity. */
  target: string;
  reason: string;
  after: { status: IncidentStatus; from: IncidentStatus };
}

/** Incidents of one fetched batch whose runs start at the same time. */
const INCIDENT_CONCURRENCY = 32;
/** Partitions of the incidents topic whose batches are handled at the same time. */
const PARTITIONS_CONCURRENTLY = 4;

type JobData =
  | { incidentId: string; index: number }
  | { entity: string }
  | { entity: string; incidentId: string; actor: string; reason: string }
  | { approvalId: string };

/**
 * The containment stage: incidents in, playbook runs out. It holds the ledger's writer lock (one
 * containment writer per deployment), runs playbook steps, expiries, releases and approval
 * deadlines as BullMQ jobs, and reconciles at start and periodically: every lease past its expiry
 * is released at once, every live lease has its expiry job, and drift is recorded.
 */
export class Containment {
  ledger!: Ledger;
  quarantines!: Quarantines;
  runner!: PlaybookRunner;
  readonly approvals: ApprovalStore;
  private queue!: Queue;
  private worker!: Worker;
  private consumer!: Consumer;
  private timer: NodeJS.Timeout | undefined;
  private playbooks: LoadedPlaybook[] = [];
  private readonly clock: () => number;
  private readonly drifted = new Map<string, string>();
  private running = false;
  private readonly bullConnections: Redis[] = [];

  constructor(private readonly deps: ContainmentDeps) {
    this.clock = deps.clock ?? Date.now;
    this.approvals = new ApprovalStore(deps.redis, deps.config.redis.keyPrefix);
  }

  async start(): Promise<void> {
    const { config, kafka, redis, log } = this.deps;
    const loaded = loadPlaybooks([config.contain.playbooks]);
    if (loaded.issues.length > 0) throw new Error(`playbooks refused:\n${loaded.issues.map((i) => `  ${formatIssue(i)}`).join('\n')}`);
    this.playbooks = loaded.playbooks.map((p) => (config.contain.dryRun ? { ...p, spec: { ...p.spec, dry_run: true } } : p));
    this.ledger = await Ledger.open({ kafka, redis, topic: config.kafka.topics.ledger, prefix: config.redis.keyPrefix, log, lockWaitMs: config.contain.lockWaitMs });
    const bullPrefix = `${config.redis.keyPrefix}:bull`;
    this.queue = new Queue('contain', { connection: this.bullConnection(), prefix: bullPrefix });
    this.quarantines = new Quarantines({
      ledger: this.ledger,
      enforcers: this.deps.enforcers,
      schedule: (l) => this.schedule(l),
      onChange: (change) => this.onQuarantineChange(change),
      log,
      clock: this.clock,
    });
    const breaker = new CircuitBreaker(redis, config.redis.keyPrefix, this.ledger, config.contain.breaker, log, () => this.quarantines.registry.liveCount());
    this.runner = new PlaybookRunner({ redis, prefix: config.redis.keyPrefix, queue: this.queue, ledger: this.ledger, quarantines: this.quarantines, approvals: this.approvals, breaker, playbooks: () => this.playbooks, status: (run, status, reason) => this.askStatus(run.incident, status, run.actor, reason), log, clock: this.clock });
    await this.reconcile();
    this.worker = new Worker('contain', (job) => this.onJob(job), {
      connection: this.bullConnection(),
      prefix: bullPrefix,
      concurrency: 48,
      lockDuration: 4_000,
      stalledInterval: 2_000,
    });
    this.worker.on('failed', (job, err) => log.error({ job: job?.id, name: job?.name, attempts: job?.attemptsMade, err }, 'containment job failed'));
    this.consumer = kafka.consumer({ groupId: config.kafka.groups.contain, ...FETCH });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: config.kafka.topics.incidents, fromBeginning: true });
    await this.consumer.run({ eachBatch: (p) => this.onIncidents(p), partitionsConsumedConcurrently: PARTITIONS_CONCURRENTLY });
    this.timer = setInterval(() => void this.reconcile().catch((err) => log.error({ err }, 'reconcile failed')), config.contain.reconcileIntervalMs);
    this.running = true;
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearInterval(this.timer);
    await this.consumer?.disconnect();
    await this.worker?.close();
    await this.queue?.close();
    await this.ledger?.close();
    // BullMQ closes only the connections it made itself.
    for (const c of this.bullConnections.splice(0)) c.disconnect();
  }

  private bullConnection(): Redis {
    const c = this.deps.bullConnection();
    this.bullConnections.push(c);
    return c;
  }

  isRunning(): boolean {
    return this.running;
  }

  /** A person (or a signed link) decides an approval; the run continues or releases. */
  async decide(id: string, decision: 'approve' | 'deny', by: string, reason: string, approvedTtlMs?: number): Promise<{ result: 'decided' | 'already' | 'missing'; approval?: Approval }> {
    const state = decision === 'approve' ? 'approved' : 'denied';
    const outcome = await this.approvals.decide(id, { state, by, reason, at: this.clock(), ...(approvedTtlMs ? { approvedTtlMs } : {}) });
    if (outcome.result !== 'decided') return outcome;
    const a = outcome.approval;
    await this.ledger.append({
      actor: by,
      action: decision === 'approve' ? 'approval_given' : 'approval_refused',
      target: a.targets[0]?.key ?? a.incidentId,
      after: { state: a.state, ...(approvedTtlMs ? { approvedTtlMs } : {}) },
      reason,
      incidentId: a.incidentId,
      approvalId: a.id,
    });
    await this.runner.onDecision(a);
    return outcome;
  }

  /**
   * The one place every quarantine applied, released, expired or failed passes, once the ledger
   * holds it, whoever caused it (a playbook step, an expiry, the reconciler, a person through the
   * API). Incident lifecycle transitions hook in here.
   */
  private async onQuarantineChange(change: QuarantineChange): Promise<void> {
    this.deps.metrics?.quarantineChanges.inc({ kind: change.kind });
    this.deps.log.info(
      { target: change.lease.target, incident: change.incidentId, state: change.lease.state, holders: change.lease.holders, actor: change.actor },
      `quarantine ${change.kind}`,
    );
    if (!this.deps.statusRequests) return;
    const held = new Set((await this.quarantines.registry.live()).flatMap((l) => l.holders));
    for (const ask of incidentStatuses(change, (id) => held.has(id))) {
      const run = await this.runner.run(ask.incident);
      if (run) await this.askStatus(run.incident, ask.status, change.actor, change.reason);
    }
  }

  private async askStatus(incident: Incident, status: IncidentStatus, actor: string, reason: string): Promise<void> {
    await this.deps.statusRequests?.request(incident, status, actor, reason);
  }

  /** An analyst's decision about an incident itself (closing it), on record before it is carried out. */
  async recordIncidentDecision(entry: IncidentDecision): Promise<void> {
    await this.ledger.append({ action: 'incident_updated', before: null, ...entry });
  }


  /** Reverts every lease past its expiry now, makes sure every live one has its expiry job, records drift. */
  async reconcile(): Promise<void> {
    const now = this.clock();
    for (const lease of await this.quarantines.registry.dueBy(now)) {
      await this.quarantines.release(lease.target, { actor: 'service:cordon', reason: `expired at ${new Date(lease.expiresAt).toISOString()}`, expired: true });
    }
    for (const lease of await this.quarantines.registry.live()) {
      await this.schedule(lease);
      if (lease.state === 'applied') await this.checkDrift(lease.target);
    }
  }

  private async checkDrift(target: string): Promise<void> {
    const observed = await this.quarantines.observeApplied(target).catch(() => undefined);
    if (!observed) return;
    const { lease, seen } = observed;
    const wrong = Object.entries(lease.labels).filter(([k, v]) => seen.labels[k] !== v && !(this.deps.enforcers.get(lease.enforcer)?.capabilities.labels === false && seen.contained));
    const signature = wrong.map(([k]) => `${k}=${seen.labels[k] ?? '(absent)'}`).join(',');
    if (wrong.length === 0 || this.drifted.get(lease.target) === signature) return;
    this.drifted.set(lease.target, signature);
    this.deps.log.warn({ target: lease.target, expected: lease.labels, seen: seen.labels }, 'quarantine drift: changed outside Cordon');
    await this.ledger.append({
      actor: 'service:cordon',
      action: 'drift_detected',
      target: lease.target,
      before: lease.labels,
      after: seen.labels,
      reason: `quarantine labels changed outside Cordon: ${signature} (held for ${lease.holders.join(', ')})`,
      ...(lease.holders[0] ? { incidentId: lease.holders[0] } : {}),
    });
  }

  private async schedule(lease: Lease): Promise<void> {
    if (!live(lease)) return;
    const delay = Math.max(0, lease.expiresAt - this.clock());
    await this.queue.add('expire', { entity: lease.target }, { jobId: `expire.${jobSafe(lease.target)}.${lease.expiresAt}`, delay, attempts: 10, backoff: { type: 'exponential', delay: 200 } });
  }

  /**
   * A batch's incidents start their runs concurrently (their ledger records then share group
   * commits); the messages of one incident stay in order. The batch is committed when all are done.
   */
  private async onIncidents({ batch, heartbeat }: EachBatchPayload): Promise<void> {
    const byIncident = new Map<string, Incident[]>();
    for (const m of batch.messages) {
      const incident = this.parseIncident(m.value, m.headers?.[CHANGE_HEADER], m.offset);
      if (incident) byIncident.set(incident.id, [...(byIncident.get(incident.id) ?? []), incident]);
    }
    const queues = [...byIncident.values()];
    const lane = async () => {
      for (let q = queues.shift(); q; q = queues.shift()) for (const incident of q) await this.runner.onIncident(incident);
    };
    await Promise.all(Array.from({ length: Math.min(INCIDENT_CONCURRENCY, queues.length) }, lane));
    await heartbeat();
  }

  private parseIncident(value: Buffer | null, header: unknown, offset: string): Incident | undefined {
    const change = String(header ?? '');
    if (change !== 'incident_opened' && change !== 'incident_updated') return undefined;
    let json: unknown;
    try {
      json = JSON.parse(String(value));
    } catch (err) {
      this.deps.log.error({ offset, err }, 'incident refused: not JSON');
      return undefined;
    }
    const parsed = IncidentSchema.safeParse(json);
    if (!parsed.success) {
      this.deps.log.error({ offset, issues: parsed.error.issues.slice(0, 3) }, 'incident refused');
      return undefined;
    }
    return parsed.data as unknown as Incident;
  }

  private async onJob(job: Job<JobData>): Promise<void> {
    const d = job.data;
    switch (job.name) {
      case 'step': {
        const { incidentId, index } = d as { incidentId: string; index: number };
        return this.runner.runStep(incidentId, index);
      }
      case 'expire':
        await this.quarantines.release((d as { entity: string }).entity, { actor: 'service:cordon', reason: 'lease expired', expired: true });
        return;
      case 'release': {
        const r = d as { entity: string; incidentId: string; actor: string; reason: string };
        await this.quarantines.release(r.entity, { incidentId: r.incidentId, actor: r.actor, reason: r.reason });
        return;
      }
      case 'approval-timeout':
        return this.onDeadline((d as { approvalId: string }).approvalId);
    }
  }

  /** An approval's deadline passed: its on_timeout says what happens. */
  private async onDeadline(id: string): Promise<void> {
    const a = await this.approvals.get(id);
    if (!a || a.state !== 'pending' || a.deadline > this.clock()) return;
    if (a.onTimeout === 'escalate' && a.escalation) {
      const deadline = this.clock() + a.escalation.deadlineMs;
      await this.approvals.escalate(id, a.escalation.approvers, deadline);
      await this.ledger.append({ actor: 'service:cordon', action: 'approval_escalated', target: a.targets[0]?.key ?? a.incidentId, after: { approvers: a.escalation.approvers, deadline }, reason: `no decision by ${new Date(a.deadline).toISOString()}: escalated to ${a.escalation.approvers.join(', ')}`, incidentId: a.incidentId, approvalId: id });
      await this.queue.add('approval-timeout', { approvalId: id }, { jobId: `timeout.${id}.${deadline}`, delay: a.escalation.deadlineMs });
      return;
    }
    const approve = a.onTimeout === 'approve';
    const outcome = await this.approvals.decide(id, { state: approve ? 'approved' : 'timed_out', by: 'service:cordon', reason: `deadline passed: on_timeout ${a.onTimeout}`, at: this.clock() });
    if (outcome.result !== 'decided') return;
    await this.ledger.append({ actor: 'service:cordon', action: 'approval_timed_out', target: a.targets[0]?.key ?? a.incidentId, after: { onTimeout: a.onTimeout }, reason: `no decision by ${new Date(a.deadline).toISOString()}: ${approve ? 'approved' : 'released'} as the playbook says`, incidentId: a.incidentId, approvalId: id });
    await this.runner.onDecision(outcome.approval);
  }
}
