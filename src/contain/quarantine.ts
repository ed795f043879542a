import { isTargetGone, type ApplyRequest, type Enforcer, type Fence, type Observation, type Snapshot, type Target } from '../enforcer/enforcer';
import { RevertDriftError, type LabelDrift } from '../enforcer/webhook';
import type { Ledger } from '../ledger/ledger';
import { isLive } from '../ledger/registry';
import { leasePayload, type Lease, type LeasePayload, type LedgerAction } from '../ledger/records';
import type { Logger } from '../logger';
import type { EntitySelector } from '../playbook/selector';
import { retry } from '../retry';
import { faultPoint } from './faults';

/** A request to contain one target on behalf of one incident. */
export interface ContainRequest {
  target: Target;
  enforcer: string;
  labels: Record<string, string>;
  ttlMs: number;
  incidentId: string;
  actor: string;
  reason: string;
  /** Passed to the enforcer (ApplyRequest): who approved it, the playbook's protected selectors, cut_connections. */
  approvedBy?: string;
  protected?: readonly EntitySelector[];
  cutConnections?: boolean;
}

/**
 * A quarantine that took effect or ended for an incident, once the ledger says so. `lease.state`
 * says whether the target is still contained: a `released` change of one holder leaves it applied
 * while other incidents hold it.
 */
export interface QuarantineChange {
  kind: 'applied' | 'released' | 'expired' | 'failed';
  lease: Lease;
  /** The incident on whose behalf it happened (absent for expiry and releases of every holder). */
  incidentId?: string;
  /** The incidents whose hold on the target ended with this change. */
  endedFor: string[];
  actor: string;
  reason: string;
}

/**
 * What happens to a live quarantine whose labels were changed outside Cordon (someone took the
 * quarantine label off, or relabelled the workload): `reapply` puts Cordon's labels back for the
 * rest of the lease; `release` ends the lease there, leaving the changed labels as they are.
 */
export const DRIFT_POLICIES = ['reapply', 'release'] as const;
export type DriftPolicy = (typeof DRIFT_POLICIES)[number];

/** What a drift check did (settleDrift). */
export type DriftSettlement = 'none' | 'known' | 'gone' | 'reapplied' | 'released' | 'reapply-failed';

/** How reverting left the target: the lease's `outcome` when it ends. */
type RevertEnd = { outcome: 'restored' } | { outcome: 'gone'; why: string } | { outcome: 'drifted'; drift: LabelDrift[]; why: string };

export interface QuarantineDeps {
  ledger: Ledger;
  enforcers: ReadonlyMap<string, Enforcer>;
  /** Called whenever a live lease's expiry is set or moved, so an expiry job is due then. */
  schedule: (lease: Lease) => Promise<void>;
  /** Called once the ledger records that a target was contained, restored, or could not be contained. */
  onChange?: (change: QuarantineChange) => Promise<void>;
  /** contain.driftPolicy; `reapply` when absent. */
  driftPolicy?: DriftPolicy;
  log: Logger;
  clock?: () => number;
}

/**
 * Quarantine leases: the only code that decides when the enforcer is called, and what the ledger
 * says about it. Every change is written so that a crash at any point leaves a state the retried
 * job (or the reconciler) completes without applying or releasing twice:
 *   contain: ledger `pending` lease with the prior labels  ->  enforcer.apply  ->  ledger `applied`
 *   release: enforcer.revert (idempotent)  ->  ledger `released` / `expired`
 * Changes to one target are serialized in this process; across processes the ledger's single
 * writer lock serializes them.
 */
export class Quarantines {
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly clock: () => number;
  /** Per target, the drift last recorded and not settled (a re-apply that failed): recorded once. */
  private readonly drifted = new Map<string, string>();

  constructor(private readonly deps: QuarantineDeps) {
    this.clock = deps.clock ?? Date.now;
  }

  get registry() {
    return this.deps.ledger.registry;
  }

  /**
   * Contains the target for the incident; joins (and may lengthen) a lease another incident holds.
   * An incident contains a target at most once: when its hold already ended (released, expired),
   * a retried or replayed request leaves the target alone and returns the ended lease.
   */
  contain(req: ContainRequest): Promise<Lease> {
    return this.locked(req.target.entity, async () => {
      let lease = await this.registry.get(req.target.entity);
      const live = lease !== undefined && isLive(lease);
      if (!(live && lease!.holders.includes(req.incidentId))) {
        // A target the enforcer refused (failed, e.g. protected) may be contained once a person approves it.
        const retryApproved = lease?.state === 'failed' && req.approvedBy !== undefined;
        if (!retryApproved && (await this.registry.everHeld(req.incidentId, req.target.entity))) return this.alreadyHeld(lease, req);
        if (live) return this.join(lease!, req);
        lease = await this.begin(req, lease);
      }
      if (lease!.state === 'pending') lease = await this.complete(lease!, req);
      await this.deps.schedule(lease!);
      return lease!;
    });
  }

  /**
   * One holder lets go. The lease ends (the target is restored) only when no holder is left;
   * `expired` ends it for every holder, and only once its expiry has passed.
   */
  release(entity: string, opts: { incidentId?: string; actor: string; reason: string; expired?: boolean }): Promise<Lease | undefined> {
    return this.locked(entity, async () => {
      const lease = await this.registry.get(entity);
      if (!lease || !isLive(lease)) return lease;
      if (opts.expired && lease.expiresAt > this.clock()) return lease;
      if (!opts.expired && opts.incidentId !== undefined && !lease.holders.includes(opts.incidentId)) return lease;
      const holders = opts.expired || opts.incidentId === undefined ? [] : lease.holders.filter((h) => h !== opts.incidentId);
      if (holders.length > 0) {
        const reason = `${opts.reason}; still held by ${holders.join(', ')}`;
        const held = await this.record('quarantine_released', lease, { ...lease, holders }, opts.actor, reason, opts.incidentId);
        await this.changed({ kind: 'released', lease: held, actor: opts.actor, reason, endedFor: lease.holders.filter((h) => !holders.includes(h)), ...(opts.incidentId ? { incidentId: opts.incidentId } : {}) });
        return held;
      }
      return this.end(lease, { ...opts, expired: opts.expired === true });
    });
  }

  /**
   * Ends the lease for every holder: reverts, then records how the target was left. A target that
   * is gone, or whose labels were changed outside Cordon, still ends the lease (`outcome` gone or
   * drifted, and the reason says so): a release never fails for what it cannot restore.
   */
  private async end(lease: Lease, opts: { incidentId?: string; actor: string; reason: string; expired: boolean; drift?: LabelDrift[] }): Promise<Lease> {
    await faultPoint('before-release');
    await this.markReleasing(lease, opts);
    let result = await this.revert(lease);
    await faultPoint('during-release');
    // Ended because of a drift (drift policy release): the drift found is the outcome, whatever revert had left to do.
    if (opts.drift && result.outcome === 'restored') result = { outcome: 'drifted', drift: opts.drift, why: 'the changed labels were left as found' };
    const state = opts.expired ? 'expired' : 'released';
    const reason = result.outcome === 'restored' ? opts.reason : `${opts.reason}; ${result.why}`;
    const after: Lease = { ...lease, holders: [], state, outcome: result.outcome, ...(result.outcome === 'drifted' && { drift: result.drift.slice(0, 64).map(boundedDrift) }) };
    const ended = await this.record(opts.expired ? 'quarantine_expired' : 'quarantine_released', lease, after, opts.actor, reason, opts.incidentId);
    this.drifted.delete(lease.target);
    await this.registry.clearReleasing(lease.target);
    await this.changed({ kind: state, lease: ended, actor: opts.actor, reason, endedFor: lease.holders, ...(opts.incidentId ? { incidentId: opts.incidentId } : {}) });
    return ended;
  }

  /**
   * The reconciler's drift check of one applied lease, under the target's lock. A target that is
   * gone ends the lease as gone. Quarantine labels changed outside Cordon are recorded
   * (`drift_detected`) and handled by the drift policy: re-applied (a `quarantine_applied` record)
   * or released (the lease ends, outcome drifted). A drift whose re-apply failed is recorded once
   * and tried again on every check.
   */
  settleDrift(entity: string): Promise<DriftSettlement> {
    return this.locked(entity, async () => {
      const lease = await this.registry.get(entity);
      if (lease?.state !== 'applied') return 'none';
      const interrupted = await this.interruptedRelease(lease);
      if (interrupted) {
        await this.end(lease, { ...interrupted, reason: `${interrupted.reason} (finished after an interruption)` });
        return 'released';
      }
      const enforcer = this.enforcerOf(lease);
      let seen: Observation;
      try {
        seen = await enforcer.observe(lease.ref as Target);
      } catch (err) {
        if (!isTargetGone(err)) throw err;
        await this.end(lease, { actor: 'service:cordon', reason: `${lease.target} no longer exists (${(err as Error).message})`, expired: false });
        return 'gone';
      }
      const wrong = Object.entries(lease.labels).filter(([k, v]) => seen.labels[k] !== v && !(enforcer.capabilities.labels === false && seen.contained));
      if (wrong.length === 0) {
        this.drifted.delete(entity);
        return 'none';
      }
      const signature = wrong.map(([k]) => `${k}=${seen.labels[k] ?? '(absent)'}`).join(',');
      const drift = wrong.map(([key, expected]) => ({ key, expected, actual: seen.labels[key] ?? null, prior: lease.priorLabels[key] ?? null }));
      const known = this.drifted.get(entity) === signature;
      if (!known) {
        this.drifted.set(entity, signature);
        this.deps.log.warn({ target: entity, expected: lease.labels, seen: seen.labels }, 'quarantine drift: changed outside Cordon');
        await this.deps.ledger.append({
          actor: 'service:cordon',
          action: 'drift_detected',
          target: entity,
          before: lease.labels,
          after: seen.labels,
          reason: `quarantine labels changed outside Cordon: ${signature} (held for ${lease.holders.join(', ')})`,
          ...(lease.holders[0] ? { incidentId: lease.holders[0] } : {}),
        });
      }
      const policy = this.deps.driftPolicy ?? 'reapply';
      if (policy === 'release') {
        await this.end(lease, { actor: 'service:cordon', reason: `drift policy release: quarantine labels changed outside Cordon (${signature})`, expired: false, drift });
        return 'released';
      }
      try {
        await enforcer.apply({ target: lease.ref as Target, labels: lease.labels, expiresAt: lease.expiresAt, leaseId: leaseId(lease), fence: await this.fence() });
      } catch (err) {
        this.deps.log.warn({ target: entity, err: (err as Error).message }, 'drift policy reapply: could not re-apply; tried again at the next check');
        return known ? 'known' : 'reapply-failed';
      }
      this.drifted.delete(entity);
      const reason = `drift policy reapply: quarantine labels put back after a change outside Cordon (${signature})`;
      await this.record('quarantine_applied', lease, lease, 'service:cordon', reason, lease.holders[0]);
      return 'reapplied';
    });
  }

  private async markReleasing(lease: Lease, opts: { incidentId?: string; actor: string; reason: string; expired: boolean }): Promise<void> {
    const { actor, reason, expired, incidentId } = opts;
    await this.registry.markReleasing(lease.target, { ledgerSeq: lease.ledgerSeq, actor, reason, expired, ...(incidentId !== undefined && { incidentId }) });
  }

  /** The release of this very lease that a crash cut off between revert and record, if any. */
  private async interruptedRelease(lease: Lease): Promise<{ incidentId?: string; actor: string; reason: string; expired: boolean } | undefined> {
    const intent = await this.registry.releasing(lease.target);
    if (!intent || intent.ledgerSeq !== lease.ledgerSeq) return undefined;
    const { ledgerSeq: _seq, ...opts } = intent;
    return opts;
  }

  /** Moves the expiry; there is no unbounded quarantine, only explicit, audited extensions. */
  extend(entity: string, expiresAt: number, opts: { actor: string; reason: string; incidentId?: string }): Promise<Lease> {
    return this.locked(entity, async () => {
      const lease = await this.registry.get(entity);
      if (!lease || !isLive(lease)) throw new Error(`no live quarantine on ${entity}`);
      const enforcer = this.enforcerOf(lease);
      await enforcer.extend?.(lease.ref as Target, expiresAt, leaseId(lease), await this.fence());
      const next = await this.record('quarantine_extended', lease, { ...lease, expiresAt }, opts.actor, opts.reason, opts.incidentId);
      await this.deps.schedule(next);
      return next;
    });
  }

  /** The target as the enforcement layer sees it now, against what the lease says it should be. */
  async observe(lease: Lease) {
    return this.enforcerOf(lease).observe(lease.ref as Target);
  }

  /**
   * An applied lease and its target as the layer sees it, observed under the target's lock so no
   * contain or release of this process is halfway through it (drift checks).
   */
  observeApplied(entity: string): Promise<{ lease: Lease; seen: Observation } | undefined> {
    return this.locked(entity, async () => {
      const lease = await this.registry.get(entity);
      if (lease?.state !== 'applied') return undefined;
      return { lease, seen: await this.observe(lease) };
    });
  }

  /** Any target as the named enforcement layer sees it now (enrich steps). */
  async observeTarget(enforcer: string, target: Target): Promise<Observation> {
    return this.enforcer(enforcer).observe(target);
  }

  /** The names of the configured enforcement layers. */
  enforcerNames(): string[] {
    return [...this.deps.enforcers.keys()];
  }

  private alreadyHeld(lease: Lease | undefined, req: ContainRequest): Lease {
    this.deps.log.info({ target: req.target.entity, incident: req.incidentId, state: lease?.state }, 'not contained again: this incident already held the target');
    return lease!;
  }

  private async begin(req: ContainRequest, previous: Lease | undefined): Promise<Lease> {
    const enforcer = this.enforcer(req.enforcer);
    const now = await enforcer.observe(req.target);
    const priorLabels = Object.fromEntries(Object.keys(req.labels).map((k) => [k, now.labels[k] ?? null]));
    const pending: LeasePayload = {
      target: req.target.entity,
      labels: req.labels,
      priorLabels,
      holders: [req.incidentId],
      expiresAt: this.clock() + req.ttlMs,
      state: 'pending',
      enforcer: req.enforcer,
      ref: req.target,
    };
    return this.record('quarantine_applied', previous ?? null, pending, req.actor, `pending: ${req.reason}`, req.incidentId);
  }

  private async complete(lease: Lease, req: ContainRequest): Promise<Lease> {
    const enforcer = this.enforcerOf(lease);
    await faultPoint('before-apply');
    const fence = await this.fence();
    try {
      await retry(() => enforcer.apply({ ...applyRequest(lease, req), fence }), {
        retries: 4,
        initialMs: 100,
        retriable: (err) => (err as { retriable?: boolean }).retriable !== false,
      });
    } catch (err) {
      const reason = `${enforcer.name} could not apply: ${(err as Error).message}`;
      const failed = await this.record('quarantine_failed', lease, { ...lease, holders: [], state: 'failed' }, req.actor, reason, req.incidentId);
      await this.changed({ kind: 'failed', lease: failed, incidentId: req.incidentId, actor: req.actor, reason, endedFor: [] });
      throw err;
    }
    await faultPoint('after-apply');
    const applied = await this.record('quarantine_applied', lease, { ...lease, state: 'applied' }, req.actor, req.reason, req.incidentId);
    await this.changed({ kind: 'applied', lease: applied, incidentId: req.incidentId, actor: req.actor, reason: req.reason, endedFor: [] });
    return applied;
  }

  /** Confirms this process is still the ledger writer; every enforcer call carries the fence it returns. */
  private fence(): Promise<Fence> {
    return this.deps.ledger.fence();
  }

  /** A hook failure is logged, never undoes or repeats what the ledger already holds. */
  private async changed(change: QuarantineChange): Promise<void> {
    try {
      await this.deps.onChange?.(change);
    } catch (err) {
      this.deps.log.error({ err, target: change.lease.target, kind: change.kind }, 'quarantine change hook failed');
    }
  }

  private async join(lease: Lease, req: ContainRequest): Promise<Lease> {
    const expiresAt = Math.max(lease.expiresAt, this.clock() + req.ttlMs);
    if (expiresAt > lease.expiresAt && lease.state === 'applied') {
      await this.enforcerOf(lease).extend?.(lease.ref as Target, expiresAt, leaseId(lease), await this.fence());
    }
    const next = { ...lease, holders: [...lease.holders, req.incidentId], expiresAt };
    const joined = await this.record('quarantine_applied', lease, next, req.actor, `joined: ${req.reason}`, req.incidentId);
    await this.deps.schedule(joined);
    if (joined.state === 'applied') await this.changed({ kind: 'applied', lease: joined, incidentId: req.incidentId, actor: req.actor, reason: `joined: ${req.reason}`, endedFor: [] });
    return joined;
  }

  /** Reverts the lease; a gone target or drifted labels are outcomes, any other failure throws. */
  private async revert(lease: Lease): Promise<RevertEnd> {
    const enforcer = this.enforcerOf(lease);
    // `extra.applied`: the labels Cordon set, for layers that keep no record of them on the target.
    const snapshot: Snapshot = { target: lease.ref as Target, labels: lease.priorLabels, extra: { applied: { ...lease.labels } }, takenAt: this.clock() };
    const fence = await this.fence();
    try {
      await retry(() => enforcer.revert(snapshot, leaseId(lease), fence), {
        retries: 4,
        initialMs: 100,
        retriable: (err) => (err as { retriable?: boolean }).retriable !== false,
      });
      return { outcome: 'restored' };
    } catch (err) {
      if (isTargetGone(err)) return { outcome: 'gone', why: `target gone, nothing to restore: ${(err as Error).message}` };
      if (err instanceof RevertDriftError) return { outcome: 'drifted', drift: err.result.drifted, why: `left as found: ${(err as Error).message}` };
      throw err;
    }
  }

  private async record(
    action: LedgerAction,
    before: Lease | LeasePayload | null,
    after: Lease | LeasePayload,
    actor: string,
    reason: string,
    incidentId?: string,
  ): Promise<Lease> {
    const record = await this.deps.ledger.append({
      actor,
      action,
      target: after.target,
      before: before ? leasePayload(before) : null,
      after: leasePayload(after),
      reason,
      ...(incidentId ? { incidentId } : {}),
    });
    return { ...leasePayload(after), ledgerSeq: record.seq };
  }

  private enforcerOf(lease: Lease): Enforcer {
    return this.enforcer(lease.enforcer);
  }

  private enforcer(name: string): Enforcer {
    const e = this.deps.enforcers.get(name);
    if (!e) throw new Error(`no enforcer named ${name} is configured`);
    return e;
  }

  private locked<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    const next = previous.then(work, work);
    const tail = next.catch(() => undefined);
    this.locks.set(key, tail);
    void tail.then(() => {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    });
    return next;
  }
}

/** A drift as the ledger keeps it: the layer's values are bounded (a webhook receiver may say anything). */
function boundedDrift(d: LabelDrift): LabelDrift {
  const cut = (v: string | null) => (v === null ? null : v.slice(0, 256));
  return { key: d.key.slice(0, 317), expected: cut(d.expected), actual: cut(d.actual), prior: cut(d.prior) };
}

function applyRequest(lease: Lease, req: ContainRequest): ApplyRequest {
  return {
    target: lease.ref as Target,
    labels: lease.labels,
    expiresAt: lease.expiresAt,
    leaseId: leaseId(lease),
    ...(req.approvedBy !== undefined && { approvedBy: req.approvedBy }),
    ...(req.protected !== undefined && { protected: req.protected }),
    ...(req.cutConnections !== undefined && { cutConnections: req.cutConnections }),
  };
}

/** One live lease per target, so the target names it: the idempotency key the enforcers see. */
export function leaseId(lease: Pick<Lease, 'target'>): string {
  return `lease.${lease.target}`;
}
