import { z } from 'zod';
import { Labels } from '../events';

/**
 * The ledger's contracts (DESIGN.md section 2): the record, the entry a caller appends, and the
 * payload shapes of the actions whose payloads other code reads back (the quarantine registry is
 * derived from the `quarantine_*` payloads alone). Records read back from Kafka are external input
 * and are parsed with these schemas; appends are checked with the same rules, so the ledger never
 * holds a record it would later reject.
 */

// C0/C1 controls, zero-width and bidi marks, line/paragraph separators, BOM.
const CONTROL_OR_INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** An identifier in a record (target, incident id, approval id, lease holder): bounded and printable. */
export const Key = z
  .string()
  .min(1)
  .max(1024)
  .refine((s) => !CONTROL_OR_INVISIBLE.test(s), { message: 'contains control, zero-width or bidirectional-override characters' });

export const Hash = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lower-case hex digits (SHA-256)');

const NAME = '[A-Za-z0-9][A-Za-z0-9._-]{0,127}';
/** `service:<name>` | `user:<id>` | `playbook:<name>@<version>`. */
export const Actor = z
  .string()
  .max(512)
  .regex(
    new RegExp(`^(service:${NAME}|user:[^\\s\\u0000-\\u001f\\u007f]{1,256}|playbook:${NAME}@[A-Za-z0-9][A-Za-z0-9._+-]{0,127})$`),
    'expected service:<name>, user:<id> or playbook:<name>@<version>',
  );
export type Actor = z.infer<typeof Actor>;

export const LEDGER_ACTIONS = [
  'incident_raised',
  'incident_updated',
  'playbook_started',
  'playbook_step',
  'playbook_changed',
  'approval_requested',
  'approval_given',
  'approval_refused',
  'approval_timed_out',
  'approval_escalated',
  'quarantine_applied',
  'quarantine_extended',
  'quarantine_released',
  'quarantine_expired',
  'quarantine_failed',
  'drift_detected',
  'dry_run',
  'circuit_breaker_opened',
  'circuit_breaker_closed',
  'rebuild',
] as const;
export const LedgerAction = z.enum(LEDGER_ACTIONS);
export type LedgerAction = z.infer<typeof LedgerAction>;

// ── Quarantine lease payloads ──────────────────────────────────────────────────────────────

export const LEASE_STATES = ['pending', 'applied', 'failed', 'released', 'expired'] as const;
export const LeaseState = z.enum(LEASE_STATES);
export type LeaseState = z.infer<typeof LeaseState>;
/** States in which the target is (or is about to be) contained: the lease is in the expiry schedule. */
export const LIVE_STATES: ReadonlySet<LeaseState> = new Set(['pending', 'applied']);

const PriorLabelKey = z
  .string()
  .min(1)
  .max(317)
  .refine((k) => !FORBIDDEN_KEYS.has(k), { message: 'is a forbidden key (prototype pollution)' });

const leaseShape = {
  /** The entity key of the contained workload (events.ts entityKey); equals the record's target. */
  target: Key,
  /** The quarantine labels Cordon set. */
  labels: Labels,
  /** The target's labels before Cordon touched them; null = the label was absent (revert deletes it). */
  priorLabels: z.record(PriorLabelKey, z.string().max(256).nullable()),
  /** Incident ids holding the lease (reference counted): the lease ends when the last one lets go. */
  holders: z.array(Key).max(10_000).refine((h) => new Set(h).size === h.length, { message: 'holders must be unique' }),
  /** Absolute expiry, epoch ms. There is no "forever": an extension is another audited record. */
  expiresAt: z.number().int().positive(),
  state: LeaseState,
  /** The enforcement layer that applied it (`nftables`, `kubernetes`, ...): revert goes there. */
  enforcer: z.string().min(1).max(64),
  /** The target as that layer knows it (address, namespace and name, layer reference). */
  ref: z.strictObject({
    entity: Key,
    kind: z.enum(['pod', 'vm', 'host', 'service', 'node', 'external', 'ip']),
    name: z.string().max(256).optional(),
    namespace: z.string().max(256).optional(),
    ip: z.string().max(64).optional(),
    ref: z.string().max(1024).optional(),
  }),
  /**
   * How the end of the lease left the target (released and expired leases): `restored` (Cordon's
   * labels taken off, the prior ones put back), `gone` (the target no longer exists at the layer),
   * `drifted` (labels changed outside Cordon were left as found; `drift` lists them).
   */
  outcome: z.enum(['restored', 'gone', 'drifted']).optional(),
  drift: z
    .array(z.strictObject({ key: z.string().max(317), expected: z.string().max(256).nullable(), actual: z.string().max(256).nullable(), prior: z.string().max(256).nullable() }))
    .max(64)
    .optional(),
};

function liveNeedsHolder(lease: { state: LeaseState; holders: string[] }): boolean {
  return !LIVE_STATES.has(lease.state) || lease.holders.length > 0;
}
const LIVE_HOLDER = { message: 'a pending or applied lease needs at least one holder', path: ['holders'] };

/**
 * The lease as a `quarantine_*` record carries it in `before` / `after`: the whole lease as it is
 * before / after the action, without `ledgerSeq` (the record's own seq supplies it).
 */
export const LeasePayload = z.strictObject(leaseShape).refine(liveNeedsHolder, LIVE_HOLDER);
export type LeasePayload = z.infer<typeof LeasePayload>;

/** The lease as the registry (Redis) keeps it: the payload plus the seq of the record that last changed it. */
export const Lease = z
  .strictObject({ ...leaseShape, ledgerSeq: z.number().int().positive() })
  .refine(liveNeedsHolder, LIVE_HOLDER);
export type Lease = z.infer<typeof Lease>;

/** A lease without `ledgerSeq`, ready to be a record payload. */
export function leasePayload(lease: LeasePayload | Lease): LeasePayload {
  const { target, labels, priorLabels, holders, expiresAt, state, enforcer, ref, outcome, drift } = lease;
  return { target, labels, priorLabels, holders, expiresAt, state, enforcer, ref, ...(outcome !== undefined && { outcome }), ...(drift !== undefined && { drift }) };
}

export type QuarantineAction = Extract<LedgerAction, `quarantine_${string}`>;

/**
 * What `after.state` may be for each quarantine action. Released may leave the lease pending or
 * applied: one holder let go while others still hold it (two incidents share one lease).
 */
export const LEASE_STATES_AFTER: Record<QuarantineAction, readonly LeaseState[]> = {
  quarantine_applied: ['pending', 'applied'],
  quarantine_extended: ['pending', 'applied'],
  quarantine_released: ['released', 'pending', 'applied'],
  quarantine_expired: ['expired'],
  quarantine_failed: ['failed'],
};

export function isQuarantineAction(action: LedgerAction): action is QuarantineAction {
  return action in LEASE_STATES_AFTER;
}

/** `rebuild.after`: what a rebuild of the registry from the ledger found. */
export const RebuildPayload = z.strictObject({
  records: z.number().int().nonnegative(),
  leases: z.number().int().nonnegative(),
  byState: z.strictObject(Object.fromEntries(LEASE_STATES.map((s) => [s, z.number().int().nonnegative()])) as Record<LeaseState, z.ZodNumber>),
  reschedule: z.number().int().nonnegative(),
});
export type RebuildPayload = z.infer<typeof RebuildPayload>;

/**
 * `playbook_changed.after`: a later version of the incident chose another playbook, and the run
 * switched to it. `carried` names each step identity of the new playbook not run again (already
 * done for this incident), `superseded` the inquiries of the old playbook that were closed.
 */
/** At most this many carried identities are listed in a playbook_changed record. */
export const CARRIED_IN_RECORD = 256;
export const PlaybookChangedPayload = z.strictObject({
  from: Key,
  to: Key,
  generation: z.number().int().min(1),
  severity: z.string().min(1).max(32),
  version: z.number().int().nonnegative().optional(),
  matched: z.array(z.string().max(1024)).max(64),
  steps: z.array(Key).max(64),
  carried: z.array(z.strictObject({ step: Key, identity: Key, why: z.string().min(1).max(1024) })).max(CARRIED_IN_RECORD),
  /** How many more identities were carried over than `carried` lists (an incident with many targets). */
  carriedLeftOut: z.number().int().positive().optional(),
});
export type PlaybookChangedPayload = z.infer<typeof PlaybookChangedPayload>;

// ── Records and entries ────────────────────────────────────────────────────────────────────

/** Epoch ms, not before the year 2000. */
const At = z.number().int().min(946_684_800_000, 'expected epoch milliseconds after the year 2000');

const entryShape = {
  actor: Actor,
  action: LedgerAction,
  /** What the action is about: an entity key for quarantines, an incident id for incidents, ... */
  target: Key,
  /** State before and after the action (any JSON; null when there is none). */
  before: z.json(),
  after: z.json(),
  /** Why: the rule, the approver's comment, the error. Required: every decision says why. */
  reason: z.string().min(1).max(8192),
  incidentId: Key.optional(),
  approvalId: Key.optional(),
};

interface PayloadFields {
  action: LedgerAction;
  target: string;
  before: unknown;
  after: unknown;
  incidentId?: string | undefined;
  approvalId?: string | undefined;
}

/** The per-action rules shared by entries (on append) and records (on read back). */
function checkPayload(v: PayloadFields, ctx: z.RefinementCtx): void {
  const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
  if (v.action.startsWith('incident_') && v.incidentId === undefined) issue(['incidentId'], `is required for ${v.action}`);
  if (v.action.startsWith('approval_') && v.approvalId === undefined) issue(['approvalId'], `is required for ${v.action}`);
  if (isQuarantineAction(v.action)) {
    for (const side of ['before', 'after'] as const) {
      if (side === 'before' && v.before === null) continue;
      const parsed = LeasePayload.safeParse(v[side]);
      if (!parsed.success) {
        for (const i of parsed.error.issues) issue([side, ...i.path.map((p) => (typeof p === 'symbol' ? String(p) : p))], i.message);
        continue;
      }
      if (parsed.data.target !== v.target) issue([side, 'target'], `must equal the record's target "${v.target}"`);
      const allowed = LEASE_STATES_AFTER[v.action];
      if (side === 'after' && !allowed.includes(parsed.data.state)) {
        issue(['after', 'state'], `${v.action} leaves a lease ${allowed.join(' or ')}, not ${parsed.data.state}`);
      }
    }
  }
  if (v.action === 'playbook_changed') {
    if (v.incidentId === undefined) issue(['incidentId'], 'is required for playbook_changed');
    const parsed = PlaybookChangedPayload.safeParse(v.after);
    if (!parsed.success) for (const i of parsed.error.issues) issue(['after', ...i.path.map((p) => (typeof p === 'symbol' ? String(p) : p))], i.message);
  }
  if (v.action === 'rebuild') {
    const parsed = RebuildPayload.safeParse(v.after);
    if (!parsed.success) for (const i of parsed.error.issues) issue(['after', ...i.path.map((p) => (typeof p === 'symbol' ? String(p) : p))], i.message);
  }
}

/** What a caller appends: the ledger adds seq, prevHash, hash and at. */
export const LedgerEntry = z
  .strictObject({ ...entryShape, before: entryShape.before.default(null), after: entryShape.after.default(null) })
  .superRefine(checkPayload);
export type LedgerEntry = z.input<typeof LedgerEntry>;

/** One ledger record, as stored (canonical JSON) in the ledger topic. */
export const LedgerRecord = z
  .strictObject({
    seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    prevHash: Hash,
    hash: Hash,
    at: At,
    ...entryShape,
  })
  .superRefine(checkPayload);
export type LedgerRecord = z.infer<typeof LedgerRecord>;
