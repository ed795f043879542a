import type { Flow } from '../events';
import type { CorrelationConfig } from './config';
import { PeriodicEdges } from './baseline';
import { PAIR_FIRST, PAIR_LAST, type EntityState, type PairTable } from './entity-state';
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

/**
 * What the sensor saw that confirms a session beyond its port number (admin_session's `detail`:
 * these bits, and the index of the process in REMOTE_EXEC_PROCESSES above them). Telemetry is
 * hostile: a confirmation only multiplies the source's own contribution by a factor of at least
 * 1, on a session that is already evidence; it never excuses a session, and never touches a
 * protected source (ordinarySession has excluded it before).
 */
export const BY_PROTOCOL = 1; // the sensor recognised the service's protocol in the payload (Zeek `service`)
export const BY_PROCESS = 2; // the accepting process on the destination is a remote-execution one
export const ESTABLISHED = 4; // Zeek `conn_state` SF: established and closed normally (said, not weighed)
const PROCESS_SHIFT = 3;

/** Zeek `service` names that mean the port's service is what was spoken. */
const SENSOR_PROTOCOLS: Partial<Record<LateralService, readonly string[]>> = {
  smb: ['smb'],
  rpc: ['dce_rpc'],
  'rpc-dynamic': ['dce_rpc'],
  rdp: ['rdp'],
  ssh: ['ssh'],
  vnc: ['rfb'],
};

/** Processes that accept remote execution: whoever reached them ran something on the destination. */
export const REMOTE_EXEC_PROCESSES: readonly (readonly [name: string, what: string])[] = [
  ['psexesvc.exe', 'the PsExec service'],
  ['wsmprovhost.exe', 'the PowerShell remoting host'],
  ['wmiprvse.exe', 'the WMI provider host'],
  ['services.exe', 'the service control manager (remote service control)'],
  ['mmc.exe', 'MMC20.Application over DCOM'],
  ['excel.exe', 'Excel.Application over DCOM'],
  ['outlook.exe', 'Outlook.Application over DCOM'],
  ['explorer.exe', 'ShellWindows / ShellBrowserWindow over DCOM'],
  ['iexplore.exe', 'InternetExplorer.Application over DCOM'],
  ['ielowutil.exe', 'an Internet Explorer DCOM object'],
];
const PROCESS_INDEX: ReadonlyMap<string, number> = new Map(REMOTE_EXEC_PROCESSES.map(([n], i) => [n, i]));

/** The confirmation bits a flow carries for a session on `service` (0: none). */
export function confirmation(f: Flow, service: LateralService): number {
  let bits = 0;
  const names = SENSOR_PROTOCOLS[service];
  if (names !== undefined && f.appProtocols !== undefined && f.appProtocols.split(',').some((p) => names.includes(p))) {
    bits |= BY_PROTOCOL;
  }
  if (f.connState === 'SF') bits |= ESTABLISHED;
  // only the accepting side's own record names the process that took the connection
  const at = f.direction === 'inbound' && f.process !== undefined ? PROCESS_INDEX.get(f.process) : undefined;
  if (at !== undefined) bits |= BY_PROCESS | (at << PROCESS_SHIFT);
  return bits;
}

/** The factor (>= 1) the confirmation bits give. */
function confirmationFactor(ctx: RuleContext, bits: number): number {
  const c = ctx.config.allowedFlows.confirmation;
  return (bits & BY_PROTOCOL ? c.protocol : 1) * (bits & BY_PROCESS ? c.process : 1);
}

/**
 * A first permitted session on a (destination, port): the service's weight times the pair rules,
 * times what the sensor confirmed (`confirmation`).
 */
export function adminSession(
  ctx: RuleContext,
  src: EntityState,
  dst: EntityState,
  service: LateralService,
  port: number,
  at: number,
  f?: Flow,
): Contribution {
  const base = ctx.config.allowedFlows.services[service];
  const bits = f === undefined ? 0 : confirmation(f, service);
  const weight = base * pairVerdict(ctx, src, dst, service).verdict.factor * confirmationFactor(ctx, bits);
  const c: Contribution = { rule: 'admin_session', weight, at, src: src.key, dst: dst.key, port, service, count: 1 };
  if (bits !== 0) c.detail = bits;
  return c;
}

/** The reasons the confirmation bits give, for the evidence. */
function confirmationReasons(ctx: RuleContext, bits: number, service: LateralService): string[] {
  const c = ctx.config.allowedFlows.confirmation;
  const out: string[] = [];
  if (bits & BY_PROTOCOL) out.push(`the sensor saw ${SERVICE_LABELS[service]} in the payload (Zeek service) (x${fmt(c.protocol)})`);
  if (bits & BY_PROCESS) {
    const [name, what] = REMOTE_EXEC_PROCESSES[bits >>> PROCESS_SHIFT] ?? ['?', 'a remote-execution process'];
    out.push(`accepted on the destination by ${name}, ${what} (WFP Application / Sysmon Image) (x${fmt(c.process)})`);
  }
  if (bits & ESTABLISHED) out.push('established and closed normally (Zeek conn_state SF)');
  return out;
}

/** Called for every new session destination once the window holds `count` of them. */
export function sessionFanOut(ctx: RuleContext, src: EntityState, count: number, at: number): Contribution | undefined {
  const need = ctx.config.allowedFlows.fanOutTargets;
  if (count < need) return undefined;
  const f = ctx.config.weights.fanOut;
  const weight = count === need ? f.base : f.perTarget;
  return { rule: 'session_fan_out', weight, at, src: src.key, detail: count, count: 1 };
}

/**
 * A visit on an edge the source reaches on a steady period (a scraper, a health check; baseline.ts
 * PeriodicEdges): once learned, its session is not evidence again when the session table has
 * forgotten it, nor a new destination for fan-out. Notes the visit. Only that edge: the source's
 * sessions to anyone else weigh as ever, and an edge's first visit is never periodic.
 */
export function periodicVisit(src: EntityState, dst: EntityState, port: number, at: number, cap: number): boolean {
  let p = src.periodic;
  if (p === null) {
    const t = src.sessions;
    const known = t === null ? -1 : t.find(dst.key, port);
    // nothing to learn until the source comes back to an edge, or its session table churns
    if (known < 0 && (t === null || t.dst.length < cap)) return false;
    p = src.periodic = new PeriodicEdges();
    return p.note(dst.key, port, at, known >= 0 ? (t as PairTable).get(known, PAIR_LAST) : undefined);
  }
  return p.note(dst.key, port, at);
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
  const reasons = [...(v ? v.verdict.reasons : []), ...confirmationReasons(ctx, c.detail ?? 0, service)];
  const why = reasons.length ? `; ${reasons.join('; ')}` : '';
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
