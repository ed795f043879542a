import type { RoleSource } from './roles';

/**
 * Which workload holds an address, as the partition that owns the workload learned it. One
 * process learns it from the workload's own events (entity-table.ts binds the address); with one
 * engine per partition those events land on the workload's partition only, while flows naming
 * the bare address land anywhere. The owner broadcasts each binding (a `bind` hand-off) and every
 * engine keeps them here, so an address means the same workload on every partition, as in replay.
 *
 * Behaviour learned about an address (a domain member asking for tickets, a DC serving them) is
 * shared the same way (a `learned` hand-off), since flows to an address are read on many partitions.
 *
 * Bounded (the oldest go first) and expiring after `ttlMs` of event time; kept whole in every
 * partition's snapshot, since any partition may need any binding.
 */
export interface Holder {
  key: string;
  name?: string;
  /** The configured role (label, inventory, kind); behaviour is applied when it is read. */
  role: string;
  roleSource: RoleSource;
  /** Behaviour flags (roles.ts) and ALLOWLISTED, as the owner knows them. */
  flags: number;
  at: number;
}

export type EncodedDirectory = [ip: string, key: string, at: number, role: string, source: RoleSource, flags: number, name?: string][];
export type EncodedLearned = [ip: string, flags: number, at: number][];

export class Directory {
  private readonly byIp = new Map<string, Holder>();
  /** Behaviour flags (roles.ts) learned about an address wherever its flows were read: they only add up. */
  private readonly learned = new Map<string, { flags: number; at: number }>();

  constructor(
    private readonly cap: number,
    private readonly ttlMs: number,
  ) {}

  get size(): number {
    return this.byIp.size;
  }

  /** Remember a binding; an older one than what is known changes nothing. True when it changed. */
  bind(ip: string, h: Holder): boolean {
    const known = this.byIp.get(ip);
    if (known && known.at > h.at) return false;
    this.byIp.delete(ip);
    this.byIp.set(ip, { ...h });
    if (this.byIp.size > this.cap) this.byIp.delete(this.byIp.keys().next().value as string);
    return true;
  }

  /** The workload holding `ip` at `t`, if a binding no older than the TTL says so. */
  holderOf(ip: string, t: number): Holder | undefined {
    const h = this.byIp.get(ip);
    return h !== undefined && t - h.at <= this.ttlMs ? h : undefined;
  }

  /** What was learned of an address; true when it adds a flag. */
  learn(ip: string, flags: number, at: number): boolean {
    const known = this.learned.get(ip);
    const merged = (known?.flags ?? 0) | flags;
    this.learned.delete(ip);
    this.learned.set(ip, { flags: merged, at: Math.max(at, known?.at ?? 0) });
    if (this.learned.size > this.cap) this.learned.delete(this.learned.keys().next().value as string);
    return merged !== (known?.flags ?? 0);
  }

  flagsOf(ip: string): number {
    return this.learned.get(ip)?.flags ?? 0;
  }

  expire(now: number): void {
    for (const [ip, h] of this.byIp) if (now - h.at > this.ttlMs) this.byIp.delete(ip);
    for (const [ip, l] of this.learned) if (now - l.at > this.ttlMs) this.learned.delete(ip);
  }

  encode(): EncodedDirectory {
    const out: EncodedDirectory = [];
    for (const [ip, h] of this.byIp) out.push(h.name === undefined ? [ip, h.key, h.at, h.role, h.roleSource, h.flags] : [ip, h.key, h.at, h.role, h.roleSource, h.flags, h.name]);
    return out;
  }

  encodeLearned(): EncodedLearned {
    return [...this.learned].map(([ip, l]) => [ip, l.flags, l.at]);
  }

  load(e: EncodedDirectory, learned: EncodedLearned = []): void {
    for (const [ip, key, at, role, roleSource, flags, name] of e) this.bind(ip, { key, at, role, roleSource, flags, ...(name === undefined ? {} : { name }) });
    for (const [ip, flags, at] of learned) this.learn(ip, flags, at);
  }
}
