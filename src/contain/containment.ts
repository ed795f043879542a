import { Queue, Worker, type Job } from 'bullmq';
import type Redis from 'ioredis';
import type { Consumer, EachBatchPayload, Kafka } from '../kafka';
import type { Approval } from '../approvals/store';
import { ApprovalStore, type DecideResult } from '../approvals/store';
import type { Config } from '../config';
import type { Incident } from '../correlate/incident';
import { CHANGE_HEADER } from '../correlate/correlator';
import type { Enforcer } from '../enforcer/enforcer';
import { FETCH } from '../kafka';
import { Ledger } from '../ledger/ledger';
import type { LedgerLockLostError } from '../ledger/lock';
import type { Lease } from '../ledger/records';
import { isLive as live } from '../ledger/registry';
import type { Logger } from '../logger';
import { IncidentSchema } from '../playbook/incident-schema';
import { formatIssue, loadPlaybooks, type LoadedPlaybook } from '../playbook/load';
import { Backoff } from '../backoff';
import { ConsumerSupervisor } from '../consumer-supervisor';
import { CircuitBreaker } from './breaker';
import type { IncidentStatus } from '../correlate/incident';
import type { StatusRequests } from '../incidents/status-requests';
import type { Metrics } from '../metrics';
import { incidentStatuses } from './incident-status';
import { Quarantines, type QuarantineChange } from './quarantine';
import { PlaybookRunner, jobSafe } from './runner';
import { PlaybookSwitcher } from './switcher';
import { configBounds, extensionRefusal, mergeBounds, stepBounds, type ExtensionBounds } from './extension';
import type { Followed } from './switch-plan';
import { durationMs } from '../playbook/duration';
import { SideQueue } from './side-queue';
import { manualQuarantine, type ManualAsk, type ManualOutcome } from './manual';
import { channelProblems } from '../notify/config';
import { Notifier } from '../notify/notifier';
import { linkMinter, oncallDeliveries } from '../notify/oncall';
import { SplunkEnricher } from '../siem/splunk-enrich';

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
  /** Called once when this replica finds the ledger lock lost to another writer (leadership.ts steps down). */
  onLockLost?: (err: LedgerLockLostError) => void;
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

/** How long a stop waits for intake and jobs to end before it releases the ledger lock anyway. */
/** How long stop() after a lost lock waits for the consumer and workers to close (the lock is gone already). */
const LOST_CLOSE_MS = 5_000;
const HANDOVER_MS = 1_500;
/** Incidents of one fetched batch whose runs start at the same time. */
const INCIDENT_CONCURRENCY = 32;
/** Partitions of the incidents topic whose batches are handled at the same time. */
const PARTITIONS_CONCURRENTLY = 4;
/** How long the reconciler waits before it tries an overdue lease's failed release again: doubling, capped. */
const RELEASE_BACKOFF = { initialMs: 1_000, maxMs: 5 * 60_000 };

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
  switcher!: PlaybookSwitcher;
  readonly approvals: ApprovalStore;
  private queue!: Queue;
  private side: SideQueue | undefined;
  private worker!: Worker;
  private consumer!: Consumer;
  private supervisor: ConsumerSupervisor | undefined;
  private timer: NodeJS.Timeout | undefined;
  private playbooks: LoadedPlaybook[] = [];
  private readonly clock: () => number;
  private running = false;
  /** Job handlers and reconciles of this term still running: stop() waits for them, so none runs into the next term. */
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly bullConnections: Redis[] = [];
  private reconciling: Promise<void> | undefined;
  private readonly releaseBackoff = new Backoff(RELEASE_BACKOFF.initialMs, RELEASE_BACKOFF.maxMs);

  constructor(private readonly deps: ContainmentDeps) {
    this.clock = deps.clock ?? Date.now;
    this.approvals = new ApprovalStore(deps.redis, deps.config.redis.keyPrefix);
  }

  /** Starts under the ledger lock, waiting up to `lockWaitMs` for it (LedgerLockedError when another writer keeps it). */
  async start(lockWaitMs = this.deps.config.contain.lockWaitMs): Promise<{ token: string; epoch: number }> {
    const { config, kafka, redis, log } = this.deps;
    const loaded = loadPlaybooks([config.contain.playbooks]);
    if (loaded.issues.length > 0) throw new Error(`playbooks refused:\n${loaded.issues.map((i) => `  ${formatIssue(i)}`).join('\n')}`);
    this.playbooks = loaded.playbooks.map((p) => (config.contain.dryRun ? { ...p, spec: { ...p.spec, dry_run: true } } : p));
    const missing = channelProblems(this.playbooks, config.notify);
    if (missing.length > 0) throw new Error(`playbooks refused:\n${missing.map((m) => `  ${m}`).join('\n')}`);
    if (config.notify.oncall.length > 0 && !config.auth.linkSecret) throw new Error('notify.oncall sends signed approve/deny links: set auth.linkSecret');
    const mint = linkMinter(config.auth, this.clock);
    this.ledger = await Ledger.open({
      kafka,
      redis,
      topic: config.kafka.topics.ledger,
      prefix: config.redis.keyPrefix,
      log,
      lockWaitMs,
      lockTtlMs: config.contain.lockTtlMs,
      ...(this.deps.onLockLost ? { onLockLost: this.deps.onLockLost } : {}),
    });
    const bullPrefix = `${config.redis.keyPrefix}:bull`;
    this.queue = new Queue('contain', { connection: this.bullConnection(), prefix: bullPrefix });
    this.quarantines = new Quarantines({
      ledger: this.ledger,
      enforcers: this.deps.enforcers,
      schedule: (l) => this.schedule(l),
      driftPolicy: config.contain.driftPolicy,
      onChange: (change) => this.onQuarantineChange(change),
      log,
      clock: this.clock,
    });
    const breaker = new CircuitBreaker(redis, config.redis.keyPrefix, this.ledger, config.contain.breaker, log);
    const notifier = new Notifier({ config: config.notify, append: (entry) => this.ledger.append(entry), log, clock: this.clock });
    this.side = new SideQueue({
      connection: () => this.bullConnection(),
      prefix: bullPrefix,
      log,
      handlers: {
        enrich: (d) => this.track(this.runner.finishEnrich(d.incidentId, d.index, d.labels)),
        deliver: (d, attemptsMade) => this.track(notifier.attempt(d, attemptsMade)),
      },
    });
    this.runner = new PlaybookRunner({
      redis,
      prefix: config.redis.keyPrefix,
      queue: this.queue,
      ledger: this.ledger,
      quarantines: this.quarantines,
      approvals: this.approvals,
      breaker,
      playbooks: () => this.playbooks,
      enforcers: this.deps.enforcers,
      status: (run, status, reason) => this.askStatus(run.incident, status, run.actor, reason),
      side: this.side,
      ...(config.splunk.search.enabled ? { enricher: new SplunkEnricher(config.splunk.search, this.clock) } : {}),
      deliveryAttempts: notifier.attempts,
      oncall: (run, approval) => oncallDeliveries(run, approval, run.steps[approval.stepIndex]?.id ?? '', config.notify, mint),
      log,
      clock: this.clock,
    });
    this.switcher = new PlaybookSwitcher({
      redis,
      prefix: config.redis.keyPrefix,
      queue: this.queue,
      ledger: this.ledger,
      approvals: this.approvals,
      playbooks: () => this.playbooks,
      status: (run, status, reason) => this.askStatus(run.incident, status, run.actor, reason),
      connectionCut: Object.fromEntries([...this.deps.enforcers].map(([name, e]) => [name, e.capabilities.connectionCut])),
      log,
      clock: this.clock,
    });
    this.side.start();
    await this.reconcile();
    this.worker = new Worker('contain', (job) => this.track(this.onJob(job)), {
      connection: this.bullConnection(),
      prefix: bullPrefix,
      concurrency: 48,
      // Seconds an idle worker blocks waiting for a job: close() waits it out (a leader's SIGTERM hand-over).
      drainDelay: 1,
      lockDuration: 4_000,
      stalledInterval: 2_000,
    });
    this.worker.on('failed', (job, err) => log.error({ job: job?.id, name: job?.name, attempts: job?.attemptsMade, err }, 'containment job failed'));
    const consumer = kafka.consumer({ groupId: config.kafka.groups.contain, ...FETCH, sessionTimeout: config.contain.sessionTimeoutMs, heartbeatInterval: Math.floor(config.contain.sessionTimeoutMs / 6) });
    this.consumer = consumer;
    const run = () => consumer.run({ eachBatch: (p) => this.onIncidents(p), partitionsConsumedConcurrently: PARTITIONS_CONCURRENTLY });
    this.supervisor = new ConsumerSupervisor(consumer, { name: 'contain', log, ...(this.deps.metrics && { metrics: this.deps.metrics }), run });
    await consumer.connect();
    await consumer.subscribe({ topic: config.kafka.topics.incidents, fromBeginning: true });
    // The group join waits for a departing member (the leader this replica takes over from) to
    // leave or time out; containment is leading meanwhile: leases are released, jobs run.
    void run().catch((err) => log.error({ err }, 'incidents consumer did not start'));
    this.timer = setInterval(() => void this.track(this.reconcile()).catch((err) => log.error({ err }, 'reconcile failed')), config.contain.reconcileIntervalMs);
    this.running = true;
    return { token: this.ledger.token, epoch: this.ledger.epoch };
  }

  /**
   * `lost`: the lock was lost; stop() waits at most LOST_CLOSE_MS for the workers to close. A
   * BullMQ close begun while its blocking connection still reconnects (the moment Redis answers
   * again after a cut, which is when a cut-off leader finds its lock taken) never resolves
   * (taskforcesh/bullmq#4656), and this replica would never campaign again. The job handlers of
   * this term are waited for in any case: they read this term's runner and quarantines, which a
   * next term replaces.
   */
  async stop(opts: { lost?: boolean } = {}): Promise<void> {
    this.running = false;
    if (this.timer) clearInterval(this.timer);
    this.supervisor?.stop();
    const started = Date.now();
    // Intake and work stop, then the ledger closes, releasing the lock: a standby takes over. A
    // consumer still in a rebalance may take seconds to leave; the lock does not wait for it past
    // HANDOVER_MS: once released, every append and fenced enforcer call of this process is refused,
    // so an unfinished batch is not committed and the next leader handles it again.
    const intake = this.consumer?.disconnect();
    const work = Promise.all([this.worker?.close(), this.side?.stop()]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all([intake, work]), new Promise((r) => (timer = setTimeout(r, HANDOVER_MS)))]);
    clearTimeout(timer);
    await this.ledger?.close();
    this.deps.log.info({ ms: Date.now() - started }, 'containment stopped; the ledger lock is released');
    const closed = Promise.all([intake, work]);
    if (opts.lost) await Promise.race([closed, new Promise((r) => setTimeout(r, LOST_CLOSE_MS).unref())]);
    else await closed;
    await Promise.allSettled([...this.inFlight]);
    await this.queue?.close();
    // BullMQ closes only the connections it made itself.
    for (const c of this.bullConnections.splice(0)) c.disconnect();
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.inFlight.add(work);
    work.then(
      () => this.inFlight.delete(work),
      () => this.inFlight.delete(work),
    );
    return work;
  }

  private bullConnection(): Redis {
    const c = this.deps.bullConnection();
    this.bullConnections.push(c);
    return c;
  }

  isRunning(): boolean {
    return this.running;
  }

  /** Why the incidents consumer is not consuming (it crashed and is being restarted), or undefined. */
  consumerTrouble(): string | undefined {
    return this.supervisor?.trouble;
  }

  /** A person (or a signed link) of one of the approval's `groups` decides it before its deadline; the run continues or releases. */
  async decide(id: string, decision: 'approve' | 'deny', by: string, groups: readonly string[], reason: string, approvedTtlMs?: number): Promise<DecideResult> {
    const state = decision === 'approve' ? 'approved' : 'denied';
    const outcome = await this.approvals.decide(id, { state, by, reason, at: this.clock(), person: { groups }, ...(approvedTtlMs ? { approvedTtlMs } : {}) });
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
    await this.continueRun(a);
    return outcome;
  }

  /** A decided approval continues the run, unless the run has since switched to another playbook (then it is on record only). */
  private async continueRun(a: Approval): Promise<void> {
    if (await this.switcher.current(a)) return this.runner.onDecision(a);
    this.deps.log.info({ approval: a.id, incident: a.incidentId, playbook: a.playbookId }, 'approval of a playbook the incident no longer follows: recorded, the run does not act on it');
  }

  /**
   * Extends a live quarantine by `ttlMs` from now, within every bound (extension.ts): the hard
   * limit, contain.maxExtensionMs and contain.maxLifetimeMs, and the max_extension and max_lifetime
   * of each quarantine step that planned this target for a holder's run (any playbook it followed).
   */
  async extend(entity: string, ask: { ttlMs: number; ttlText: string }, who: { actor: string; reason: string }): Promise<{ refused: string } | { lease: Lease }> {
    const lease = await this.quarantines.registry.get(entity);
    if (!lease || !live(lease)) throw new Error(`no live quarantine on ${entity}`);
    const now = this.clock();
    const since = await this.lifetimeStart(entity, now);
    const bounds = mergeBounds(configBounds(this.deps.config.contain), ...(await this.playbookBounds(lease)));
    const refused = extensionRefusal({ ...ask, now, since }, bounds);
    if (refused) return { refused };
    return { lease: await this.quarantines.extend(entity, now + ask.ttlMs, who) };
  }

  /**
   * A person quarantines a target by hand (manual.ts): the same leases, TTL bounds as an extension
   * (the config's and those of the playbooks holding the target) and protection as a playbook's.
   */
  quarantineByHand(ask: ManualAsk): Promise<ManualOutcome> {
    return manualQuarantine(ask, {
      quarantines: this.quarantines,
      bounds: async (lease) => mergeBounds(configBounds(this.deps.config.contain), ...(lease ? await this.playbookBounds(lease) : [])),
      protected: this.playbooks.flatMap((p) => p.spec.safety.protected),
      lifetimeStart: async (target) => {
        const at = await this.deps.redis.get(this.lifetimeKey(target));
        return at ? Number(at) : undefined;
      },
      clock: this.clock,
    });
  }

  private async playbookBounds(lease: Lease): Promise<ExtensionBounds[]> {
    const out: ExtensionBounds[] = [];
    for (const holder of lease.holders) {
      const run = await this.switcher.run(holder);
      if (!run) continue;
      const followed: Followed[] = [
        ...(run.followed ?? []),
        { playbookId: run.playbookId, quarantines: run.steps.flatMap((s) => (s.type === 'quarantine' ? [{ step: s.id, targets: s.targets.map((t) => t.key) }] : [])) },
      ];
      for (const f of followed) {
        const spec = this.loadedPlaybook(f.playbookId)?.spec;
        for (const q of f.quarantines.filter((q) => q.targets.includes(lease.target))) {
          const step = spec?.steps.find((s) => s.id === q.step);
          if (step?.type === 'quarantine') out.push(stepBounds(f.playbookId, step, durationMs));
        }
      }
    }
    return out;
  }

  /** The loaded playbook of this identity, or (its file changed since) the loaded one of the same name. */
  private loadedPlaybook(id: string): LoadedPlaybook | undefined {
    const name = id.slice(0, id.lastIndexOf('@'));
    return this.playbooks.find((p) => p.id === id) ?? this.playbooks.find((p) => p.spec.name === name);
  }

  /**
   * When the target's quarantine was first applied (kept from its first \`applied\` change until it
   * ends). A lease applied before this was kept counts its lifetime from its first extension.
   */
  private async lifetimeStart(target: string, now: number): Promise<number> {
    await this.deps.redis.set(this.lifetimeKey(target), String(now), 'NX');
    return Number(await this.deps.redis.get(this.lifetimeKey(target)));
  }

  private lifetimeKey(target: string): string {
    return `${this.deps.config.redis.keyPrefix}:contain:lifetime:${target}`;
  }

  /** Keeps the first apply of each quarantine for its lifetime bound; forgets it when the lease ends. */
  private async trackLifetime(change: QuarantineChange): Promise<void> {
    if (live(change.lease)) {
      if (change.kind === 'applied') await this.deps.redis.set(this.lifetimeKey(change.lease.target), String(this.clock()), 'NX');
      return;
    }
    await this.deps.redis.del(this.lifetimeKey(change.lease.target));
  }

  /**
   * The one place every quarantine applied, released, expired or failed passes, once the ledger
   * holds it, whoever caused it (a playbook step, an expiry, the reconciler, a person through the
   * API). Incident lifecycle transitions hook in here.
   */
  private async onQuarantineChange(change: QuarantineChange): Promise<void> {
    this.deps.metrics?.quarantineChanges.inc({ kind: change.kind });
    await this.trackLifetime(change);
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


  /**
   * Reverts every lease past its expiry now, makes sure every live one has its expiry job, records
   * drift. Each lease on its own: one whose release fails is counted, left overdue and tried again
   * at a later reconcile with backoff (RELEASE_BACKOFF), and the others go on.
   */
  reconcile(): Promise<void> {
    // One at a time: a slow release must not let the next tick release the same lease alongside it.
    this.reconciling ??= this.reconcileOnce().finally(() => (this.reconciling = undefined));
    return this.reconciling;
  }

  private async reconcileOnce(): Promise<void> {
    const now = this.clock();
    const due = await this.quarantines.registry.dueBy(now);
    this.releaseBackoff.retain(new Set(due.map((l) => l.target)));
    for (const lease of due) {
      if (!this.releaseBackoff.ready(lease.target, now)) continue;
      try {
        await this.quarantines.release(lease.target, { actor: 'service:cordon', reason: `expired at ${new Date(lease.expiresAt).toISOString()}`, expired: true });
        this.releaseBackoff.succeeded(lease.target);
      } catch (err) {
        this.deps.metrics?.releaseFailures.inc();
        const { failures, waitMs } = this.releaseBackoff.failed(lease.target, this.clock(), (err as Error).message);
        this.deps.log.error({ target: lease.target, failures, retryInMs: waitMs, err }, 'overdue lease not released; tried again later');
      }
    }
    this.deps.metrics?.leasesOverdue.set(this.releaseBackoff.entries().length);
    for (const lease of await this.quarantines.registry.live()) {
      try {
        await this.schedule(lease);
      } catch (err) {
        this.deps.log.warn({ target: lease.target, err }, 'expiry job not scheduled; tried again at the next reconcile');
      }
      if (lease.state === 'applied') await this.checkDrift(lease.target);
    }
  }

  /** Overdue leases whose release failed, with the last error: what /readyz and the logs can name. */
  overdueLeases(): Array<{ target: string; failures: number; error: string }> {
    return this.releaseBackoff.entries().map(({ key, failures, error }) => ({ target: key, failures, error }));
  }

  /** Drift of one applied lease: recorded, then settled by contain.driftPolicy (see Quarantines.settleDrift). */
  private async checkDrift(target: string): Promise<void> {
    try {
      await this.quarantines.settleDrift(target);
    } catch (err) {
      this.deps.log.warn({ target, err }, 'drift check failed; tried again at the next reconcile');
    }
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
      for (let q = queues.shift(); q; q = queues.shift()) {
        for (const incident of q) {
          await this.runner.onIncident(incident);
          await this.switcher.onIncident(incident);
          // kafkajs heartbeats only when asked (at most once per heartbeatInterval): a long batch keeps its short session.
          await heartbeat();
        }
      }
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
        const run = await this.switcher.claim(String(job.id), incidentId, index);
        if (run) return this.runner.runStep(incidentId, index, run);
        this.deps.log.info({ job: job.id, incident: incidentId }, 'step of a playbook the incident no longer follows: not run');
        return;
      }
      case 'expire':
        await this.counted(this.quarantines.release((d as { entity: string }).entity, { actor: 'service:cordon', reason: 'lease expired', expired: true }));
        return;
      case 'release': {
        const r = d as { entity: string; incidentId: string; actor: string; reason: string };
        await this.counted(this.quarantines.release(r.entity, { incidentId: r.incidentId, actor: r.actor, reason: r.reason }));
        return;
      }
      case 'approval-timeout':
        return this.onDeadline((d as { approvalId: string }).approvalId);
    }
  }

  /** A release job that fails counts in cordon_release_failures_total; BullMQ tries it again. */
  private async counted<T>(release: Promise<T>): Promise<T> {
    try {
      return await release;
    } catch (err) {
      this.deps.metrics?.releaseFailures.inc();
      throw err;
    }
  }

  /** An approval's deadline passed: its on_timeout says what happens. */
  private async onDeadline(id: string): Promise<void> {
    const a = await this.approvals.get(id);
    if (!a || a.state !== 'pending' || a.deadline > this.clock()) return;
    if (a.onTimeout === 'escalate' && a.escalation) {
      const deadline = this.clock() + a.escalation.deadlineMs;
      const escalated = await this.approvals.escalate(id, a.escalation.approvers, deadline);
      await this.ledger.append({ actor: 'service:cordon', action: 'approval_escalated', target: a.targets[0]?.key ?? a.incidentId, after: { approvers: a.escalation.approvers, deadline }, reason: `no decision by ${new Date(a.deadline).toISOString()}: escalated to ${a.escalation.approvers.join(', ')}`, incidentId: a.incidentId, approvalId: id });
      await this.queue.add('approval-timeout', { approvalId: id }, { jobId: `timeout.${id}.${deadline}`, delay: a.escalation.deadlineMs });
      const run = escalated ? await this.runner.run(a.incidentId) : undefined;
      if (run && escalated) await this.runner.announce(run, escalated);
      return;
    }
    const approve = a.onTimeout === 'approve';
    const outcome = await this.approvals.decide(id, { state: approve ? 'approved' : 'timed_out', by: 'service:cordon', reason: `deadline passed: on_timeout ${a.onTimeout}`, at: this.clock() });
    if (outcome.result !== 'decided') return;
    await this.ledger.append({ actor: 'service:cordon', action: 'approval_timed_out', target: a.targets[0]?.key ?? a.incidentId, after: { onTimeout: a.onTimeout }, reason: `no decision by ${new Date(a.deadline).toISOString()}: ${approve ? 'approved' : 'released'} as the playbook says`, incidentId: a.incidentId, approvalId: id });
    await this.continueRun(outcome.approval);
  }
}
