import type { Enforcer, Observation, Snapshot, Target } from '../enforcer/enforcer';
import type { Ledger } from '../ledger/ledger';
import { isLive } from '../ledger/registry';
import { leasePayload, type Lease, type LeasePayload, type LedgerAction } from '../ledger/records';
import type { Logger } from '../logger';
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

export interface QuarantineDeps {
  ledger: Ledger;
  enforcers: ReadonlyMap<string, Enforcer>;
  /** Called whenever a live lease's expiry is set or moved, so an expiry job is due then. */
  schedule: (lease: Lease) => Promise<void>;
  /** Called once the ledger records that a target was contained, restored, or could not be contained. */
  onChange?: (change: QuarantineChange) => Promise<void>;
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
        if (await this.registry.everHeld(req.incidentId, req.target.entity)) return this.alreadyHeld(lease, req);
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
      await faultPoint('before-release');
      await this.revert(lease);
      await faultPoint('during-release');
      const state = opts.expired ? 'expired' : 'released';
      const ended = await this.record(opts.expired ? 'quarantine_expired' : 'quarantine_released', lease, { ...lease, holders: [], state }, opts.actor, opts.reason, opts.incidentId);
      await this.changed({ kind: state, lease: ended, actor: opts.actor, reason: opts.reason, endedFor: lease.holders, ...(opts.incidentId ? { incidentId: opts.incidentId } : {}) });
      return ended;
    });
  }

  /** Moves the expiry; there is no unbounded quarantine, only explicit, audited extensions. */
  extend(entity: string, expiresAt: number, opts: { actor: string; reason: string; incidentId?: string }): Promise<Lease> {
    return this.locked(entity, async () => {
      const lease = await this.registry.get(entity);
      if (!lease || !isLive(lease)) throw new Error(`no live quarantine on ${entity}`);
      const enforcer = this.enforcerOf(lease);
      await enforcer.extend?.(lease.ref as Target, expiresAt, leaseId(lease));
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
    try {
      await retry(() => enforcer.apply({ target: lease.ref as Target, labels: lease.labels, expiresAt: lease.expiresAt, leaseId: leaseId(lease) }), {
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
      await this.enforcerOf(lease).extend?.(lease.ref as Target, expiresAt, leaseId(lease));
    }
    const next = { ...lease, holders: [...lease.holders, req.incidentId], expiresAt };
    const joined = await this.record('quarantine_applied', lease, next, req.actor, `joined: ${req.reason}`, req.incidentId);
    await this.deps.schedule(joined);
    if (joined.state === 'applied') await this.changed({ kind: 'applied', lease: joined, incidentId: req.incidentId, actor: req.actor, reason: `joined: ${req.reason}`, endedFor: [] });
    return joined;
  }

  private async revert(lease: Lease): Promise<void> {
    const enforcer = this.enforcerOf(lease);
    const snapshot: Snapshot = { target: lease.ref as Target, labels: lease.priorLabels, takenAt: this.clock() };
    await retry(() => enforcer.revert(snapshot, leaseId(lease)), {
      retries: 4,
      initialMs: 100,
      retriable: (err) => (err as { retriable?: boolean }).retriable !== false,
    });
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

/** One live lease per target, so the target names it: the idempotency key the enforcers see. */
export function leaseId(lease: Pick<Lease, 'target'>): string {
  return `lease.${lease.target}`;
}
