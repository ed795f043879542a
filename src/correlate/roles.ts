import type { CorrelationConfig, PairRule } from './config';
import type { ServiceClass } from './ports';
import { compileSelector, type EntityDescriptor, type Matcher } from './selectors';

/**
 * Roles say who an entity is (workstation, server, domain-controller, scanner, monitoring, node,
 * ...). Precedence, first hit wins: the workload's own role label, the configured inventory,
 * observed behaviour, the workload kind, else `unknown`. The configured part is computed from a
 * workload's labels and name when the entity is described (see the engine's refresh); behaviour
 * is applied when the role is read, so a DC learned a second ago counts at once.
 */
export type RoleSource = 'label' | 'inventory' | 'observed' | 'kind' | 'default';
export interface RoleInfo {
  readonly role: string;
  readonly source: RoleSource;
}

/** Behaviour flags kept per entity. */
export const SERVES_DIRECTORY = 1; // accepted Kerberos/LDAP/GC connections: likely a domain controller
export const DIRECTORY_CLIENT = 2; // asked a directory server for Kerberos/LDAP/GC: a domain member

export const DOMAIN_CONTROLLER = 'domain-controller';
export const UNKNOWN: RoleInfo = { role: 'unknown', source: 'default' };
const OBSERVED_DC: RoleInfo = { role: DOMAIN_CONTROLLER, source: 'observed' };
const NODE: RoleInfo = { role: 'node', source: 'kind' };

export interface PairVerdict {
  readonly factor: number;
  readonly reasons: readonly string[];
  readonly techniques: readonly string[];
}
const NEUTRAL: PairVerdict = { factor: 1, reasons: [], techniques: [] };

interface Party {
  readonly role: string;
  readonly kind: string;
}

export class RoleResolver {
  private readonly inventory: { match: Matcher; info: RoleInfo }[];
  private readonly directoryPorts: ReadonlySet<number>;
  private readonly byLabel = new Map<string, RoleInfo>();

  constructor(private readonly config: CorrelationConfig) {
    this.inventory = config.roles.inventory.map((e) => ({
      match: compileSelector(e.selector),
      info: { role: e.role, source: 'inventory' as const },
    }));
    this.directoryPorts = new Set(config.roles.directoryPorts);
  }

  /** The role configuration gives an entity: its role label, the inventory, its kind. */
  configured(entity: EntityDescriptor): RoleInfo {
    const label = entity.labels?.[this.config.roles.labelKey];
    if (label) return this.labelled(label);
    for (const entry of this.inventory) if (entry.match(entity)) return entry.info;
    if (entity.kind === 'node') return NODE;
    return UNKNOWN;
  }

  /** The role in effect: configuration first, then observed behaviour, then the kind. */
  effective(configured: RoleInfo, flags: number): RoleInfo {
    if (configured.source === 'label' || configured.source === 'inventory') return configured;
    if (this.config.roles.observe && flags & SERVES_DIRECTORY) return OBSERVED_DC;
    return configured;
  }

  /** Label roles are interned: entities share one RoleInfo per role name. */
  private labelled(role: string): RoleInfo {
    let info = this.byLabel.get(role);
    if (info === undefined) {
      info = { role, source: 'label' };
      if (this.byLabel.size < 1024) this.byLabel.set(role, info);
    }
    return info;
  }

  /** The RoleInfo a snapshot names (shared where one exists). */
  revive(role: string, source: RoleSource): RoleInfo {
    if (source === 'label') return this.labelled(role);
    const known = [UNKNOWN, NODE, OBSERVED_DC, ...this.inventory.map((e) => e.info)];
    const hit = known.find((r) => r.role === role && r.source === source);
    return hit ?? { role, source };
  }

  /** Behaviour flags that accepting a connection on `port` reveals about the destination. */
  observedFlags(port: number): number {
    return this.directoryPorts.has(port) ? SERVES_DIRECTORY : 0;
  }

  /** The product of every pair rule that matches, with each rule's reason. */
  pairVerdict(src: Party, dst: Party, service: ServiceClass): PairVerdict {
    let verdict = NEUTRAL;
    for (const rule of this.config.pairRules) {
      if (!ruleMatches(rule, src, dst, service)) continue;
      verdict = {
        factor: verdict.factor * rule.factor,
        reasons: [...verdict.reasons, `${rule.reason} (x${rule.factor})`],
        techniques: rule.technique ? [...verdict.techniques, rule.technique] : verdict.techniques,
      };
    }
    return verdict;
  }
}

function ruleMatches(rule: PairRule, src: Party, dst: Party, service: ServiceClass): boolean {
  if (rule.srcRole !== undefined && rule.srcRole !== src.role) return false;
  if (rule.dstRole !== undefined && rule.dstRole !== dst.role) return false;
  if (rule.srcKind !== undefined && rule.srcKind !== src.kind) return false;
  if (rule.dstKind !== undefined && rule.dstKind !== dst.kind) return false;
  if (rule.services !== undefined && !rule.services.includes(service)) return false;
  return true;
}
