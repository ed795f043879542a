import type { EntitySelector } from '../playbook/selector';

/**
 * The one interface every enforcement layer implements (nftables, Kubernetes, Illumio, webhook).
 * The enforcer is the only code that touches the enforcement layer. Every call is idempotent:
 * applying labels a target already has, or reverting a snapshot already restored, changes nothing.
 */

/** What is being contained: the workload as the enforcement layer knows it. */
export interface Target {
  /** Cordon's entity key (events.ts entityKey), e.g. `pod:payments/api-7f9c` or `ip:10.0.0.5`. */
  entity: string;
  kind: 'pod' | 'vm' | 'host' | 'service' | 'node' | 'external' | 'ip';
  name?: string;
  namespace?: string;
  ip?: string;
  /** Layer-specific reference, e.g. an Illumio workload href or a cloud instance id. */
  ref?: string;
}

/** The labels a target had before Cordon touched it, exactly: restored on revert. */
export interface Snapshot {
  target: Target;
  /** Label values before apply; `null` means the label was absent (revert deletes it). */
  labels: Record<string, string | null>;
  /** Layer-specific state needed to revert (e.g. a resourceVersion, an nftables element handle). */
  extra?: Record<string, unknown>;
  takenAt: number;
}

/** What the layer reports about a target now, for drift detection. */
export interface Observation {
  target: Target;
  labels: Record<string, string>;
  /** Whether the target is contained right now as far as the layer can tell. */
  contained: boolean;
  /** Seconds left on a kernel- or layer-side expiry, when the layer keeps one. */
  expiresInSec?: number;
}

export interface Capabilities {
  /** Sets labels on the target (Kubernetes, Illumio) rather than only addresses. */
  labels: boolean;
  /** The layer itself ends the quarantine at expiry even if Cordon is down (nftables timeouts). */
  kernelExpiry: boolean;
  /** Existing connections of the target are cut on apply (conntrack). */
  connectionCut: boolean;
}

export interface ApplyRequest {
  target: Target;
  /** The quarantine labels to set, e.g. `{ 'cordon.io/quarantine': 'true' }`. */
  labels: Record<string, string>;
  /** Absolute expiry (epoch ms); layers with kernel-side expiry set it there too. */
  expiresAt: number;
  /** Idempotency key: the lease id. */
  leaseId: string;
  /**
   * Who approved quarantining this target, when a person did. A target that matches a protected
   * selector, as the layer sees it now, is refused (`EnforcerError` code `protected`) without it.
   */
  approvedBy?: string;
  /** The playbook's protected selectors; each enforcer adds the built-in ones (DEFAULT_PROTECTED). */
  protected?: readonly EntitySelector[];
  /** Cut the target's established connections too, where the layer can (`capabilities.connectionCut`). */
  cutConnections?: boolean;
  /** The ledger writer's fencing token: a layer that can refuses the call when a newer writer holds the lock. */
  fence?: Fence;
}

/**
 * The fencing token of the ledger writer that makes a call (lock.ts): its token and epoch, and the
 * Redis key of the lock. A layer in Redis checks the lock still holds the token in the same step; a
 * layer with per-object writes records the epoch on the object and refuses a lower one.
 */
export interface Fence {
  token: string;
  epoch: number;
  lockKey: string;
}


/** A failure the caller records on the lease; `retriable` false means retrying will not help. */
export class EnforcerError extends Error {
  override name = 'EnforcerError';
  constructor(
    message: string,
    readonly retriable: boolean,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** A call from a writer that is no longer the ledger writer (a paused or partitioned old leader): refused, never retried. */
export class FencedCallError extends EnforcerError {
  override name = 'FencedCallError';
  constructor(message: string) {
    super(message, false, 'fenced');
  }
}

/**
 * The target no longer exists at the layer (a deleted pod, a deleted Illumio workload). Not
 * retriable; a release that meets it ends the lease as `gone` (nothing is left to restore).
 */
export class TargetGoneError extends EnforcerError {
  override name = 'TargetGoneError';
  constructor(message: string) {
    super(message, false, 'gone');
  }
}

export function isTargetGone(err: unknown): boolean {
  return err instanceof EnforcerError && err.code === 'gone';
}

export interface Enforcer {
  /** `<layer>` as in `nftables`, `kubernetes`, `illumio`, `webhook`. */
  readonly name: string;
  readonly capabilities: Capabilities;
  /** Applies the labels; returns what the target had before. Never half-applies: on failure, nothing changed. */
  apply(request: ApplyRequest): Promise<Snapshot>;
  /** Restores the snapshot exactly (labels Cordon added are removed, changed ones put back). */
  revert(snapshot: Snapshot, leaseId: string, fence?: Fence): Promise<void>;
  /** The target's current state, for drift detection. */
  observe(target: Target): Promise<Observation>;
  /** Moves a kernel-/layer-side expiry (lease extended); a no-op for layers without one. */
  extend?(target: Target, expiresAt: number, leaseId: string, fence?: Fence): Promise<void>;
}
