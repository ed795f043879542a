import { z } from 'zod';
import { isIP } from 'node:net';
import { EnforcerError, isTargetGone, type Target } from '../enforcer/enforcer';
import { protectingSelector } from '../enforcer/protection';
import type { Lease } from '../ledger/records';
import { isLive } from '../ledger/registry';
import { DEFAULT_QUARANTINE_LABELS } from '../playbook/model';
import { describeSelector, type EntitySelector } from '../playbook/selector';
import { extensionRefusal, type ExtensionBounds } from './extension';
import type { Quarantines } from './quarantine';
import { jobSafe } from './runner';

/**
 * A quarantine a person starts by hand (POST /api/quarantines, `cordon quarantine`). It is a lease
 * like any other, through Quarantines.contain: pending -> apply -> applied in the ledger, an expiry
 * job, reference counted with the incidents that hold the same target, released by the release
 * route or at its expiry. Its holder is `manual.<who>.<when>` in place of an incident id.
 *
 * A SOC's rules: the TTL is bounded as an extension is (the hard limit, contain.maxExtensionMs and
 * maxLifetimeMs, and the bounds of the playbooks already holding the target); a protected target
 * (the built-in selectors, every loaded playbook's safety.protected, as the layer shows the target
 * now) is refused, with no override: only a playbook's protected_approval contains one; a target
 * holds at most one manual hold at a time (extend it instead).
 */

export const MANUAL_HOLDER = 'manual.';

export interface ManualAsk {
  entity: string;
  ttlMs: number;
  /** The ttl as the person wrote it, for refusals. */
  ttlText: string;
  /** The enforcement layer; may be left out when only one is configured. */
  enforcer?: string | undefined;
  /** `user:<token name>`. */
  actor: string;
  reason: string;
}

export type ManualOutcome =
  | { result: 'contained'; lease: Lease; holder: string }
  /** The request cannot be carried out as asked (400): the detail names the field. */
  | { result: 'invalid'; detail: string }
  /** The target's state refuses it (409): protected, or already held by hand. */
  | { result: 'refused'; detail: string }
  /** The layer does not know the target (404). */
  | { result: 'missing'; detail: string }
  /** The layer could not apply it (502); the ledger has the failure. */
  | { result: 'failed'; detail: string };

export interface ManualDeps {
  quarantines: Quarantines;
  /** Every bound on the TTL: the config's, and those of the playbooks of a live lease's holders. */
  bounds: (live: Lease | undefined) => Promise<ExtensionBounds>;
  /** The protected selectors beyond the built-in ones (every loaded playbook's safety.protected). */
  protected: readonly EntitySelector[];
  /** When a live target's quarantine was first applied, if known. */
  lifetimeStart: (entity: string) => Promise<number | undefined>;
  clock: () => number;
}

const KINDS = ['pod', 'vm', 'host', 'service', 'node', 'external', 'ip'] as const;

/** The enforcement target an entity key names (`pod:ns/name`, `ip:10.0.0.5`, `vm:web-1`), or why it names none. */
export function parseEntity(key: string): Target | string {
  const m = /^([a-z]+):(.+)$/.exec(key);
  if (!m || !(KINDS as readonly string[]).includes(m[1]!)) return `expected an entity key <kind>:<id>, kind one of ${KINDS.join(', ')} (e.g. pod:prod/web-1, ip:10.0.0.5)`;
  const kind = m[1] as Target['kind'];
  const rest = m[2]!;
  if (kind === 'ip') return isIP(rest) ? { entity: key, kind, ip: rest } : `${rest} is not an IP address`;
  if (kind === 'pod') {
    const pod = /^([^/]+)\/([^/]+)$/.exec(rest);
    return pod ? { entity: key, kind, namespace: pod[1]!, name: pod[2]! } : 'a pod is pod:<namespace>/<name>';
  }
  return { entity: key, kind, name: rest };
}

/** An entity key at an edge (HTTP body or path), refused with parseEntity's reason when it names no target. */
export function entityKeySchema(description: string) {
  return z
    .string()
    .min(3)
    .max(317)
    .superRefine((key, ctx) => {
      const target = parseEntity(key);
      if (typeof target === 'string') ctx.addIssue({ code: 'custom', message: target });
    })
    .describe(description);
}

export async function manualQuarantine(ask: ManualAsk, deps: ManualDeps): Promise<ManualOutcome> {
  const target = parseEntity(ask.entity);
  if (typeof target === 'string') return { result: 'invalid', detail: `body.entity: ${target}` };
  const enforcer = chooseEnforcer(ask.enforcer, deps.quarantines.enforcerNames());
  if (!enforcer.ok) return { result: 'invalid', detail: `body.enforcer: ${enforcer.why}` };

  const current = await deps.quarantines.registry.get(ask.entity);
  const live = current && isLive(current) ? current : undefined;
  const byHand = live?.holders.find((h) => h.startsWith(MANUAL_HOLDER));
  if (live && byHand && live.state === 'applied') {
    return { result: 'refused', detail: `${ask.entity} is already quarantined by hand (${byHand}) until ${new Date(live.expiresAt).toISOString()}: extend it instead` };
  }
  const now = deps.clock();
  const since = live ? ((await deps.lifetimeStart(ask.entity)) ?? now) : now;
  const tooLong = extensionRefusal({ ttlMs: ask.ttlMs, ttlText: ask.ttlText, now, since }, await deps.bounds(live));
  if (tooLong) return { result: 'invalid', detail: tooLong };

  const layer = live?.enforcer ?? enforcer.name;
  const protection = await protectedNow(deps, layer, target);
  if (protection.result !== 'ok') return protection;

  // A pending manual hold is one a crash cut short: the same holder completes it.
  const holder = byHand ?? `${MANUAL_HOLDER}${jobSafe(ask.actor.replace(/^user:/, ''))}.${now.toString(36)}`;
  try {
    const lease = await deps.quarantines.contain({
      target,
      enforcer: layer,
      labels: { ...DEFAULT_QUARANTINE_LABELS },
      ttlMs: ask.ttlMs,
      incidentId: holder,
      actor: ask.actor,
      reason: ask.reason,
      protected: deps.protected,
    });
    return { result: 'contained', lease, holder };
  } catch (err) {
    if (err instanceof EnforcerError && err.code === 'protected') return { result: 'refused', detail: `${err.message}; a manual quarantine has no override` };
    if (isTargetGone(err)) return { result: 'missing', detail: (err as Error).message };
    return { result: 'failed', detail: `${layer} could not apply the quarantine: ${(err as Error).message}` };
  }
}

function chooseEnforcer(asked: string | undefined, names: readonly string[]): { ok: true; name: string } | { ok: false; why: string } {
  const known = names.length ? names.join(', ') : 'none';
  if (asked === undefined) return names.length === 1 ? { ok: true, name: names[0]! } : { ok: false, why: `say which enforcement layer (configured: ${known})` };
  return names.includes(asked) ? { ok: true, name: asked } : { ok: false, why: `no enforcer named ${asked} is configured (configured: ${known})` };
}

/** The target as its layer shows it now, against the protected selectors: a refusal, or ok. */
async function protectedNow(deps: ManualDeps, layer: string, target: Target): Promise<{ result: 'ok' } | ManualOutcome> {
  let labels: Record<string, string>;
  try {
    labels = (await deps.quarantines.observeTarget(layer, target)).labels;
  } catch (err) {
    if (isTargetGone(err)) return { result: 'missing', detail: `${layer} does not know ${target.entity}: ${(err as Error).message}` };
    return { result: 'failed', detail: `${layer} could not be asked about ${target.entity}: ${(err as Error).message}` };
  }
  const selector = protectingSelector(target, { labels }, deps.protected);
  if (!selector) return { result: 'ok' };
  return {
    result: 'refused',
    detail: `${target.entity} is protected (${describeSelector(selector)}): it is never quarantined by hand, with no override; only a playbook's safety.protected_approval, decided by an approver, contains it`,
  };
}
