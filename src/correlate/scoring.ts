import type { Anomaly, AnomalyKind } from '../events';
import type { CorrelationConfig } from './config';
import type { EntityState } from './entity-state';
import type { Rule } from './evidence';
import {
  SERVICE_LABELS,
  SERVICE_TECHNIQUES,
  TECHNIQUE_DISCOVERY,
  TECHNIQUE_EXPLOIT_REMOTE,
  type LateralService,
  type ServiceClass,
} from './ports';
import type { RoleResolver } from './roles';
import { describeSession, describeSessionFanOut } from './signals';

/**
 * The rules, one function each: given what happened, how much risk it adds. Pure: they read
 * entity state and config and change nothing. A contribution is compact (numbers and the
 * interned entity keys); `describe` renders its reason and techniques when it becomes evidence
 * of an incident, so nothing is formatted for the many events that never do.
 */
export interface Contribution {
  rule: Rule;
  weight: number;
  at: number;
  src: string;
  dst?: string;
  port?: number;
  service?: ServiceClass;
  anomaly?: AnomalyKind;
  /** Rule-specific number for the reason: the fan-out count, the anomaly score. */
  detail?: number;
  /** Events folded into this record. */
  count: number;
}

export interface RuleContext {
  readonly config: CorrelationConfig;
  readonly roles: RoleResolver;
  entity(key: string): EntityState | undefined;
}

const fmt = (n: number) => String(Math.round(n * 1000) / 1000);

/** A denied attempt on a remote-administration service: base weight by service, times who-to-whom. */
export function adminPort(
  ctx: RuleContext,
  src: EntityState,
  dst: EntityState,
  service: LateralService,
  port: number,
  at: number,
): Contribution {
  const base = ctx.config.weights.services[service];
  const weight = base * pairFactor(ctx, src, dst, service);
  return { rule: 'admin_port', weight, at, src: src.key, dst: dst.key, port, service, count: 1 };
}

function pairVerdict(ctx: RuleContext, src: EntityState, dst: EntityState, service: ServiceClass) {
  const s = ctx.roles.effective(src.role, src.flags);
  const d = ctx.roles.effective(dst.role, dst.flags);
  return { s, d, verdict: ctx.roles.pairVerdict({ role: s.role, kind: src.kind }, { role: d.role, kind: dst.kind }, service) };
}

function pairFactor(ctx: RuleContext, src: EntityState, dst: EntityState, service: ServiceClass): number {
  return pairVerdict(ctx, src, dst, service).verdict.factor;
}

export function deniedOther(config: CorrelationConfig, src: EntityState, at: number): Contribution {
  return { rule: 'denied_other', weight: config.weights.services.other, at, src: src.key, count: 1 };
}

/** The ordinary denials folded into an entity before its incident, as one record. */
export function minorRecord(root: EntityState): Contribution {
  const s = root.sus;
  return { rule: 'denied_other', weight: s.minorWeight, at: s.since, src: root.key, count: s.minorCount };
}

/** Called for every new pair once the fan-out window holds `count` new pairs. */
export function fanOut(config: CorrelationConfig, src: EntityState, count: number, at: number): Contribution | undefined {
  const f = config.weights.fanOut;
  if (count < f.minTargets) return undefined;
  const weight = count === f.minTargets ? f.base : f.perTarget;
  return { rule: 'fan_out', weight, at, src: src.key, detail: count, count: 1 };
}

export function rpcChain(config: CorrelationConfig, src: EntityState, dst: EntityState, port: number, at: number): Contribution {
  return { rule: 'rpc_chain', weight: config.weights.rpcChain, at, src: src.key, dst: dst.key, port, count: 1 };
}

export function propagation(config: CorrelationConfig, pivot: EntityState, at: number): Contribution {
  return { rule: 'propagation', weight: config.weights.propagation, at, src: pivot.key, count: 1 };
}

export function targetRole(config: CorrelationConfig, attacker: string, target: EntityState, at: number): Contribution {
  return { rule: 'target_role', weight: config.weights.targetRole, at, src: attacker, dst: target.key, count: 1 };
}

export function anomaly(config: CorrelationConfig, subject: EntityState, a: Anomaly): Contribution {
  const weight = config.weights.anomalies[a.kind] * a.score;
  return { rule: 'anomaly', weight, at: a.time, src: subject.key, anomaly: a.kind, detail: a.score, count: 1 };
}

/** The reason an analyst reads, and the ATT&CK techniques the evidence implies. */
export function describe(ctx: RuleContext, c: Contribution): { reason: string; techniques: readonly string[] } {
  const name = (key: string | undefined) => {
    const s = key === undefined ? undefined : ctx.entity(key);
    return s ? (s.name ?? s.ip ?? s.key) : (key ?? '?');
  };
  const cfg = ctx.config;
  const each = c.count > 1 ? `, x${c.count}` : '';
  switch (c.rule) {
    case 'admin_port': {
      const service = c.service as LateralService;
      const src = ctx.entity(c.src);
      const dst = ctx.entity(c.dst as string);
      const v = src && dst ? pairVerdict(ctx, src, dst, service) : undefined;
      const base = cfg.weights.services[service];
      const why = v && v.verdict.reasons.length ? `; ${v.verdict.reasons.join('; ')}` : '';
      const roles = v ? [` [${v.s.role}]`, ` [${v.d.role}]`] : ['', ''];
      return {
        reason:
          `denied ${SERVICE_LABELS[service]} (${c.port}) from ${name(c.src)}${roles[0]} to ${name(c.dst)}${roles[1]}: ` +
          `base ${fmt(base)}${why} = ${fmt(c.weight / c.count)}${each}`,
        techniques: [...SERVICE_TECHNIQUES[service], ...(v ? v.verdict.techniques : [])],
      };
    }
    case 'denied_other':
      return {
        reason: `denied connections on ordinary ports from ${name(c.src)}: ${fmt(cfg.weights.services.other)} each`,
        techniques: [],
      };
    case 'fan_out': {
      const f = cfg.weights.fanOut;
      const minutes = Math.round(cfg.windows.fanOutMs / 60_000);
      return {
        reason:
          `${name(c.src)} was denied on at least ${f.minTargets} distinct destination/port pairs within ${minutes} min ` +
          `(discovery): ${fmt(f.base)} when reached, then ${fmt(f.perTarget)} per further pair (${c.count} in all)`,
        techniques: [TECHNIQUE_DISCOVERY],
      };
    }
    case 'rpc_chain':
      return {
        reason:
          `${name(c.src)} asked the endpoint mapper (135) of ${name(c.dst)}, then its call on dynamic port ${c.port} ` +
          `was blocked: a deliberate remote RPC call (${fmt(cfg.weights.rpcChain)})`,
        techniques: [],
      };
    case 'propagation': {
      const pivot = ctx.entity(c.src)?.sus;
      const how = pivot?.foothold ? 'reached by a permitted connection from' : 'a target of';
      return {
        reason:
          `${name(c.src)}, ${how} ${name(pivot?.upstream ?? undefined)}, now attempts remote ` +
          `administration itself (${fmt(cfg.weights.propagation)})`,
        techniques: [],
      };
    }
    case 'target_role':
      return {
        reason:
          `${name(c.dst)}, attacked by ${name(c.src)}, serves Kerberos/LDAP: a domain controller ` +
          `(${fmt(cfg.weights.targetRole)})`,
        techniques: [TECHNIQUE_EXPLOIT_REMOTE],
      };
    case 'admin_session':
      return describeSession(ctx, c, name);
    case 'session_fan_out':
      return describeSessionFanOut(ctx, c, name);
    case 'anomaly': {
      const kind = c.anomaly as AnomalyKind;
      const base = cfg.weights.anomalies[kind];
      return {
        reason: `${kind} on ${name(c.src)} (score ${fmt(c.detail ?? 0)}): ${fmt(base)} x score = ${fmt(c.weight)}${each}`,
        techniques: [],
      };
    }
  }
}

/** Same subject, same rule: records fold together (counts add, weights add). */
export function sameSubject(a: Contribution, b: Contribution): boolean {
  return a.rule === b.rule && a.src === b.src && a.dst === b.dst && a.port === b.port && a.anomaly === b.anomaly;
}
