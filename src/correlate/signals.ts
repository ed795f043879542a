import type { Flow } from '../events';
import type { CorrelationConfig } from './config';
import { PAIR_FIRST, type EntityState, type PairTable } from './entity-state';
import { SERVICE_LABELS, SERVICE_TECHNIQUES, TECHNIQUE_DISCOVERY, type LateralService } from './ports';
import { DIRECTORY_CLIENT, SERVES_DIRECTORY, type RoleInfo } from './roles';
import type { Contribution, RuleContext } from './scoring';

/**
 * Structural signals from permitted connections (config `allowedFlows`): a remote-administration
 * session that got through, between peers that do not normally speak it, and many of them from
 * one source in a short window. Pure: they read entity state and config and change nothing.
 */

/**
 * Whether a permitted flow shows a session that got through. A host firewall's record of its own
 * outbound connection (WFP 5156 outbound, Sysmon 3 initiated) says only that the source let it
 * out; the destination may still refuse it (the OTRF "DCOM blocked" recording: permitted out of
 * WORKSTATION5, blocked into WORKSTATION6). From `hostObservers` only the destination's own
 * record (the side that holds the host identity) counts; network sensors see the outcome.
 */
export function establishes(config: CorrelationConfig, f: Flow): boolean {
  if (!config.allowedFlows.hostObservers.includes(f.observer.type)) return true;
  return f.dst.workload !== undefined && f.src.workload === undefined;
}

/** Why a permitted session is not evidence; undefined when it is. */
export type NotEvidence = 'disabled' | 'weightless' | 'admin-source' | 'protected-source' | 'server' | 'fleet' | 'unknown-target';

/** Whether a session from `src` to `dst` on `service` is business as usual, and why. */
export function ordinarySession(ctx: RuleContext, src: EntityState, dst: EntityState, service: LateralService): NotEvidence | undefined {
  const cfg = ctx.config.allowedFlows;
  if (!cfg.enabled) return 'disabled';
  if (cfg.services[service] === 0) return 'weightless';
  if (isProtected(ctx, src)) return 'protected-source';
  if (cfg.adminRoles.includes(ctx.roles.effective(src.role, src.flags).role)) return 'admin-source';
  if (serverFor(ctx, dst, service)) return 'server';
  if (dst.served?.serves(service)) return 'fleet';
  if (unknownTarget(ctx, dst)) return 'unknown-target';
  return undefined;
}

/** A protected asset (a domain controller, configured or learned): never a session's root or pivot. */
export function isProtected(ctx: RuleContext, e: EntityState): boolean {
  return (e.flags & SERVES_DIRECTORY) !== 0 || ctx.config.allowedFlows.protectedRoles.includes(ctx.roles.effective(e.role, e.flags).role);
}

/** The destination's role serves this service (a member's SMB to its domain controller). */
export function serverFor(ctx: RuleContext, dst: EntityState, service: LateralService): boolean {
  const role = ctx.roles.effective(dst.role, dst.flags).role;
  return ctx.config.allowedFlows.serverRoles.some((r) => r.role === role && r.services.includes(service));
}

/** A destination nobody described, never seen acting as a domain member: maybe a server. */
function unknownTarget(ctx: RuleContext, dst: EntityState): boolean {
  const mode = ctx.config.allowedFlows.unknownTargets;
  if (mode === 'any' || ctx.roles.effective(dst.role, dst.flags).role !== 'unknown') return false;
  return mode === 'none' || (dst.flags & DIRECTORY_CLIENT) === 0;
}

/** A first permitted session on a (destination, port): the service's weight times the pair rules. */
export function adminSession(
  ctx: RuleContext,
  src: EntityState,
  dst: EntityState,
  service: LateralService,
  port: number,
  at: number,
): Contribution {
  const base = ctx.config.allowedFlows.services[service];
  const weight = base * pairVerdict(ctx, src, dst, service).verdict.factor;
  return { rule: 'admin_session', weight, at, src: src.key, dst: dst.key, port, service, count: 1 };
}

/** Called for every new session destination once the window holds `count` of them. */
export function sessionFanOut(ctx: RuleContext, src: EntityState, count: number, at: number): Contribution | undefined {
  const need = ctx.config.allowedFlows.fanOutTargets;
  if (count < need) return undefined;
  const f = ctx.config.weights.fanOut;
  const weight = count === need ? f.base : f.perTarget;
  return { rule: 'session_fan_out', weight, at, src: src.key, detail: count, count: 1 };
}

/** Whether `dst` is among the sessions first seen since `since`. */
export function reachedSince(t: PairTable, dst: string, since: number): boolean {
  for (let i = 0; i < t.dst.length; i++) if (t.dst[i] === dst && t.get(i, PAIR_FIRST) >= since) return true;
  return false;
}

/** Distinct destinations among the sessions first seen within `windowMs` before `at`. */
export function sessionTargets(src: EntityState, at: number, windowMs: number): number {
  const t = src.sessions;
  if (t === null) return 0;
  const seen = new Set<string>();
  for (let i = 0; i < t.dst.length; i++) if (at - t.get(i, PAIR_FIRST) <= windowMs) seen.add(t.dst[i] as string);
  return seen.size;
}

function pairVerdict(ctx: RuleContext, src: EntityState, dst: EntityState, service: LateralService) {
  const s = ctx.roles.effective(src.role, src.flags);
  const d = ctx.roles.effective(dst.role, dst.flags);
  return { s, d, verdict: ctx.roles.pairVerdict({ role: s.role, kind: src.kind }, { role: d.role, kind: dst.kind }, service) };
}

const fmt = (n: number) => String(Math.round(n * 1000) / 1000);
const roleOf = (r: RoleInfo) => ` [${r.role}${r.source === 'observed' ? ', observed' : ''}]`;

export function describeSession(
  ctx: RuleContext,
  c: Contribution,
  name: (key: string | undefined) => string,
): { reason: string; techniques: readonly string[] } {
  const service = c.service as LateralService;
  const src = ctx.entity(c.src);
  const dst = ctx.entity(c.dst as string);
  const v = src && dst ? pairVerdict(ctx, src, dst, service) : undefined;
  const base = ctx.config.allowedFlows.services[service];
  const why = v && v.verdict.reasons.length ? `; ${v.verdict.reasons.join('; ')}` : '';
  const each = c.count > 1 ? `, x${c.count}` : '';
  const roles = v ? [roleOf(v.s), roleOf(v.d)] : ['', ''];
  return {
    reason:
      `permitted ${SERVICE_LABELS[service]} (${c.port}) session from ${name(c.src)}${roles[0]} to ${name(c.dst)}${roles[1]}, ` +
      `which does not serve it: base ${fmt(base)}${why} = ${fmt(c.weight / c.count)}${each}`,
    techniques: [...SERVICE_TECHNIQUES[service], ...(v ? v.verdict.techniques : [])],
  };
}

export function describeSessionFanOut(
  ctx: RuleContext,
  c: Contribution,
  name: (key: string | undefined) => string,
): { reason: string; techniques: readonly string[] } {
  const f = ctx.config.weights.fanOut;
  const minutes = Math.round(ctx.config.windows.fanOutMs / 60_000);
  return {
    reason:
      `${name(c.src)} opened remote-administration sessions to at least ${ctx.config.allowedFlows.fanOutTargets} ` +
      `distinct destinations within ${minutes} min: ${fmt(f.base)} when reached, then ${fmt(f.perTarget)} per further one ` +
      `(${c.count} in all)`,
    techniques: [TECHNIQUE_DISCOVERY],
  };
}
