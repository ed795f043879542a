import { isTargetGone, type Enforcer, type Target } from '../enforcer/enforcer';
import type { Kafka } from '../kafka';
import { verifiedRecords } from './audit';
import { GENESIS, type ChainHead } from './chain';
import { LEASE_STATES, type Lease, type LeaseState } from './records';
import { heldFields, isLive, leaseAfter, type QuarantineRegistry, type StoredHead } from './registry';

/**
 * Rebuilding the quarantine registry from the ledger alone (Redis lost or distrusted), and catching
 * a lagging registry up with the records it missed. Both verify the chain as they read it: a broken
 * ledger is never replayed into the registry.
 */

export interface RebuildResult {
  /** Records replayed. */
  records: number;
  /** Leases in the rebuilt registry, and how many are in each state. */
  leases: number;
  byState: Record<LeaseState, number>;
  /** Applied leases, soonest expiry first: the caller must re-schedule their expiry. */
  reschedule: Lease[];
  /**
   * Pending leases, soonest expiry first: an apply was recorded as intended but not its outcome
   * (the writer stopped in between). The caller must observe the target and record what it finds.
   */
  unresolved: Lease[];
  /** The last record replayed (seq 0 for an empty ledger). */
  head: ChainHead & { offset: string };
}

export interface ReplayTarget {
  kafka: Kafka;
  topic: string;
  registry: QuarantineRegistry;
  /** The writer lock's token: every registry write is fenced by it. */
  token: string;
  /** Asked before the swap when the rebuilt registry would drop live leases; throwing refuses the rebuild. */
  dropGuard?: DropGuard;
}

/**
 * A lease live (pending or applied) in the registry now that the rebuilt one would drop: absent
 * from the ledger, or ended there. `rebuilt` is the lease the ledger gives (undefined: none).
 */
export interface Dropped {
  current: Lease;
  rebuilt: Lease | undefined;
}
export type DropGuard = (dropped: Dropped[]) => Promise<void>;

/** The live leases of `current` that `rebuilt` does not keep live, by target. */
export function droppedLeases(current: Iterable<Lease>, rebuilt: ReadonlyMap<string, Lease>): Dropped[] {
  const dropped: Dropped[] = [];
  for (const lease of current) {
    if (!isLive(lease)) continue;
    const after = rebuilt.get(lease.target);
    if (!after || !isLive(after)) dropped.push({ current: lease, rebuilt: after });
  }
  return dropped.sort((a, b) => (a.current.target < b.current.target ? -1 : 1));
}

/**
 * Replays the whole ledger into a fresh registry and swaps it in atomically (leases, expiry
 * schedule and head in one step). Throws LedgerBrokenError, leaving the registry untouched, when
 * the chain does not verify.
 */
export async function rebuild({ kafka, topic, registry, token, dropGuard }: ReplayTarget): Promise<RebuildResult> {
  const leases = new Map<string, Lease>();
  const held = new Map<string, number>();
  let head: ChainHead & { offset: string } = { ...GENESIS, offset: '-1' };
  let records = 0;
  for await (const { record, offset } of verifiedRecords(kafka, topic, 'rebuild')) {
    records++;
    const lease = leaseAfter(record);
    if (lease) leases.set(lease.target, lease);
    for (const field of heldFields(lease)) if (!held.has(field)) held.set(field, record.seq);
    head = { seq: record.seq, hash: record.hash, offset };
  }
  if (dropGuard) {
    const dropped = droppedLeases(await registry.live(), leases);
    if (dropped.length > 0) await dropGuard(dropped);
  }
  await registry.replace(token, leases.values(), head, held);
  return summarize(records, leases.values(), head);
}

/**
 * Applies the records after `from` (the registry's own head) up to the end of the ledger. Returns
 * the number applied. Throws LedgerBrokenError when the records after `from` do not continue it:
 * the registry then belongs to another chain, and only a rebuild fixes it.
 */
export async function catchUp({ kafka, topic, registry, token }: ReplayTarget, from: StoredHead): Promise<number> {
  let applied = 0;
  for await (const { record, offset } of verifiedRecords(kafka, topic, 'catch-up', from)) {
    const outcome = await registry.apply(token, record, offset);
    if (outcome === 'lagging') throw new Error(`catch-up: the registry head moved below seq ${record.seq - 1} while catching up`);
    if (outcome === 'applied') applied++;
  }
  return applied;
}

export function summarize(records: number, leases: Iterable<Lease>, head: ChainHead & { offset: string }): RebuildResult {
  const byState = Object.fromEntries(LEASE_STATES.map((s) => [s, 0])) as Record<LeaseState, number>;
  const reschedule: Lease[] = [];
  const unresolved: Lease[] = [];
  let count = 0;
  for (const lease of leases) {
    count++;
    byState[lease.state]++;
    if (lease.state === 'applied') reschedule.push(lease);
    if (lease.state === 'pending') unresolved.push(lease);
  }
  const soonest = (a: Lease, b: Lease) => a.expiresAt - b.expiresAt || (a.target < b.target ? -1 : 1);
  return { records, leases: count, byState, reschedule: reschedule.sort(soonest), unresolved: unresolved.sort(soonest), head };
}

/** A rebuild that would drop a quarantine the enforcer still applies, or one it cannot check. */
export class RebuildRefusedError extends Error {
  override name = 'RebuildRefusedError';
  constructor(readonly targets: string[], message: string) {
    super(message);
  }
}

function ledgerSays(d: Dropped): string {
  return d.rebuilt ? `the ledger says ${d.rebuilt.state} (seq ${d.rebuilt.ledgerSeq})` : 'the ledger has no lease for it';
}

/**
 * Reconciles each lease the rebuild would drop against its enforcer's live state (`observe`):
 * a target still contained, or one whose enforcer is not configured or does not answer, refuses
 * the rebuild naming it. A target the layer no longer has (TargetGoneError) or reports not
 * contained may be dropped.
 */
export function enforcerDropGuard(enforcers: ReadonlyMap<string, Enforcer>): DropGuard {
  return async (dropped) => {
    const problems: Array<{ target: string; why: string }> = [];
    for (const d of dropped) {
      const why = await stillApplied(d, enforcers);
      if (why) problems.push({ target: d.current.target, why });
    }
    if (problems.length === 0) return;
    throw new RebuildRefusedError(
      problems.map((p) => p.target),
      `the rebuilt registry would drop ${problems.length} quarantine(s) still in place: ${problems.map((p) => `${p.target} (${p.why})`).join('; ')}; ` +
        'run cordon audit verify: the ledger may have lost its tail or been rewritten',
    );
  };
}

async function stillApplied(d: Dropped, enforcers: ReadonlyMap<string, Enforcer>): Promise<string | undefined> {
  const name = d.current.enforcer;
  const enforcer = enforcers.get(name);
  if (!enforcer) return `applied on ${name}, which is not configured here, so it cannot be checked; ${ledgerSays(d)}`;
  try {
    const seen = await enforcer.observe(d.current.ref as Target);
    return seen.contained ? `still quarantined on ${name}; ${ledgerSays(d)}` : undefined;
  } catch (err) {
    if (isTargetGone(err)) return undefined;
    return `${name} could not be asked whether it is still quarantined: ${(err as Error).message}; ${ledgerSays(d)}`;
  }
}
