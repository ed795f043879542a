import { z } from 'zod';
import type { Logger } from '../logger';
import { retry, type RetryOptions } from '../retry';
import { EnforcerError, type ApplyRequest, type Capabilities, type Enforcer, type Observation, type Snapshot, type Target } from './enforcer';
import { NftablesExec } from './nftables-exec';
import { guardProtected } from './protection';
import {
  CHAINS,
  DEFAULT_PRIORITY,
  DEFAULT_TABLE,
  MAX_TIMEOUT_SEC,
  QUARANTINE_LABEL,
  SET_V4,
  SET_V6,
  counterName,
  declareSets,
  ensureRuleset,
  isSafeComment,
  missingRules,
  parseAddress,
  parseListing,
  removeElement,
  replaceElement,
  timeoutSeconds,
  leaseComment,
  validatePriority,
  validateTable,
  type Chain,
  type QuarantineAddress,
  type RulesetSpec,
  type SetElement,
} from './nftables-ruleset';

/**
 * The host enforcer (the default one): a quarantined target is its address in an nftables set
 * whose rules drop its traffic in both directions, in the forward, input and output hooks. The
 * element carries the lease's expiry as its timeout, so the kernel releases the address at the
 * end of the lease even if Cordon is dead, and the lease id as its comment. Existing connections
 * of the address are cut by deleting their conntrack entries.
 *
 * Every change is one `nft -f -` transaction (all or nothing), retried with backoff while the
 * failure is retriable. Calls on the same address are serialized within one enforcer.
 */

/** The enforcer's settings as they appear in configuration (validated at the edge). */
export const NftablesConfig = z.object({
  table: z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,31}$/, 'expected a plain nft identifier').default(DEFAULT_TABLE),
  nftPath: z.string().min(1).default('nft'),
  conntrackPath: z.string().min(1).default('conntrack'),
  ipPath: z.string().min(1).default('ip'),
  /** Enforce inside this network namespace (`ip netns exec NAME ...`), e.g. a router namespace. */
  netns: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'expected a network namespace name').optional(),
  priority: z.number().int().min(-400).max(400).default(DEFAULT_PRIORITY),
  commandTimeoutMs: z.number().int().min(100).max(120_000).default(5_000),
});
export type NftablesConfig = z.infer<typeof NftablesConfig>;

export interface NftablesEnforcerOptions extends Partial<NftablesConfig> {
  retry?: Partial<Omit<RetryOptions, 'retriable'>>;
  log?: Logger;
  /** Injected for tests. */
  now?: () => number;
}

/** An element that was in the set before Cordon's lease, put back on revert. */
export type PriorElement = { comment?: string; /** epoch ms; absent: the element had no timeout. */ expiresAt?: number };

/** Snapshot.extra of this enforcer: where the element lives, and what was there before. */
export type NftablesSnapshotExtra = {
  family: 'inet';
  table: string;
  set: typeof SET_V4 | typeof SET_V6;
  address: string;
  prior: PriorElement | null;
};

export type NftablesObservation = Observation & {
  /** The element's comment when there is an element: the lease id (see leaseComment). */
  comment?: string;
  /** What is missing from Cordon's table for the quarantine to hold (empty when intact). */
  missing: string[];
};

const SnapshotExtra = z.object({
  table: z.string(),
  set: z.enum([SET_V4, SET_V6]),
  address: z.string(),
  prior: z.object({ comment: z.string().optional(), expiresAt: z.number().optional() }).nullable().default(null),
});

const RETRY_DEFAULTS: Partial<RetryOptions> = { retries: 4, initialMs: 100, maxMs: 2_000 };

export class NftablesEnforcer implements Enforcer {
  readonly name = 'nftables';
  readonly capabilities: Capabilities = { labels: false, kernelExpiry: true, connectionCut: true };

  private readonly spec: RulesetSpec;
  private readonly exec: NftablesExec;
  private readonly retryOptions: Partial<RetryOptions>;
  private readonly log?: Logger;
  private readonly now: () => number;
  private readonly locks = new Map<string, Promise<void>>();

  constructor(options: NftablesEnforcerOptions = {}) {
    this.spec = { table: validateTable(options.table ?? DEFAULT_TABLE), priority: validatePriority(options.priority ?? DEFAULT_PRIORITY) };
    this.exec = new NftablesExec({
      nftPath: options.nftPath ?? 'nft',
      conntrackPath: options.conntrackPath ?? 'conntrack',
      ipPath: options.ipPath ?? 'ip',
      netns: options.netns,
      timeoutMs: options.commandTimeoutMs ?? 5_000,
    });
    this.retryOptions = { ...RETRY_DEFAULTS, ...options.retry };
    this.log = options.log?.child({ enforcer: this.name, table: this.spec.table, netns: options.netns });
    this.now = options.now ?? Date.now;
  }

  get table(): string {
    return this.spec.table;
  }

  /** The commands that create (or repair) Cordon's table, as sent before every change. */
  ruleset(): string[] {
    return ensureRuleset(this.spec);
  }

  async apply(request: ApplyRequest): Promise<Snapshot> {
    const addr = parseAddress(request.target.ip);
    const comment = leaseComment(request.leaseId);
    timeoutSeconds(request.expiresAt, this.now()); // an expired or absurd lease fails before any I/O
    // A host firewall knows an address, no labels or roles: address and name selectors are what it can check.
    guardProtected(this.name, request, { labels: {}, ip: addr.address });
    return this.locked(addr.address, async () => {
      const { before, timeoutSec } = await this.put(addr, comment, request.expiresAt, request.cutConnections !== false);
      // This lease's own element (a replay of apply) is not a prior state.
      const prior = before && before.comment !== comment ? this.priorOf(before) : null;
      const extra: NftablesSnapshotExtra = { family: 'inet', table: this.spec.table, set: addr.set, address: addr.address, prior };
      this.log?.info({ address: addr.address, leaseId: request.leaseId, timeoutSec, prior }, 'nftables: quarantined');
      return { target: request.target, labels: { [QUARANTINE_LABEL]: prior ? 'true' : null }, extra, takenAt: this.now() };
    });
  }

  async extend(target: Target, expiresAt: number, leaseId: string): Promise<void> {
    const addr = parseAddress(target.ip);
    const comment = leaseComment(leaseId);
    timeoutSeconds(expiresAt, this.now());
    await this.locked(addr.address, async () => {
      // Connections were cut (or deliberately kept) at apply; new ones have been dropped since.
      const { timeoutSec } = await this.put(addr, comment, expiresAt, false);
      this.log?.info({ address: addr.address, leaseId, timeoutSec }, 'nftables: quarantine extended');
    });
  }

  async revert(snapshot: Snapshot, leaseId: string): Promise<void> {
    const { table, addr, prior } = this.whereFrom(snapshot);
    const comment = leaseComment(leaseId);
    await this.locked(addr.address, () =>
      this.attempt('revert', async () => {
        const current = await this.readElement(table, addr);
        if (current && current.comment !== comment) {
          // Not (or no longer) this lease's element: another lease or an operator holds the address.
          if (current.comment !== prior?.comment) {
            this.log?.warn({ address: addr.address, leaseId, holder: current.comment ?? null }, 'nftables: address held by someone else, left in place');
          }
          return;
        }
        const restore = prior ? this.restorable(prior) : undefined;
        if (!current && !restore) return; // already gone (released, or expired in the kernel)
        await this.exec.transaction([
          ...declareSets(table),
          ...(restore ? replaceElement(table, addr, restore) : removeElement(table, addr)),
        ]);
        this.log?.info({ address: addr.address, leaseId, restored: restore ?? null }, 'nftables: quarantine released');
      }),
    );
  }

  async observe(target: Target): Promise<NftablesObservation> {
    const addr = parseAddress(target.ip);
    return this.attempt('observe', async () => {
      let json: string;
      try {
        json = await this.exec.nft(['-j', 'list', 'table', 'inet', this.spec.table]);
      } catch (err) {
        if (err instanceof EnforcerError && err.code === 'absent') return { target, labels: {}, contained: false, missing: [`table inet ${this.spec.table}`] };
        throw err;
      }
      const listing = parseListing(json);
      const element = listing.sets.get(addr.set)?.find((e) => e.address === addr.address);
      const missing = missingRules(listing);
      const contained = element !== undefined && missing.length === 0;
      const labels: Record<string, string> = contained ? { [QUARANTINE_LABEL]: 'true' } : {};
      return {
        target,
        labels,
        contained,
        ...(element?.expiresSec !== undefined ? { expiresInSec: element.expiresSec } : {}),
        ...(element?.comment !== undefined ? { comment: element.comment } : {}),
        missing,
      };
    });
  }

  /** Packets and bytes dropped so far, per chain (zero before the table exists). */
  async counters(): Promise<Record<Chain, { packets: number; bytes: number }>> {
    const out = Object.fromEntries(CHAINS.map((c) => [c, { packets: 0, bytes: 0 }])) as Record<Chain, { packets: number; bytes: number }>;
    return this.attempt('counters', async () => {
      let json: string;
      try {
        json = await this.exec.nft(['-j', 'list', 'counters', 'table', 'inet', this.spec.table]);
      } catch (err) {
        if (err instanceof EnforcerError && err.code === 'absent') return out;
        throw err;
      }
      const listing = parseListing(json);
      for (const chain of CHAINS) out[chain] = listing.counters.get(counterName(chain)) ?? out[chain];
      return out;
    });
  }

  /**
   * Puts the address in the set for this lease until `expiresAt` (ensuring the table in the same
   * transaction), then cuts its connections unless `cut` is false. If the cut fails, the element is put back the way it
   * was, so a failed call leaves nothing half-applied. Returns the element found before.
   */
  private async put(addr: QuarantineAddress, comment: string, expiresAt: number, cut = true): Promise<{ before?: SetElement; timeoutSec: number }> {
    const table = this.spec.table;
    const { before, timeoutSec } = await this.attempt('apply', async () => {
      const found = await this.readElement(table, addr);
      const seconds = timeoutSeconds(expiresAt, this.now());
      await this.exec.transaction([...ensureRuleset(this.spec), ...replaceElement(table, addr, { timeoutSec: seconds, comment })]);
      return { before: found, timeoutSec: seconds };
    });
    if (!cut) return { before, timeoutSec };
    try {
      const deleted = await this.attempt('conntrack', () => this.cutConnections(addr));
      this.log?.debug({ address: addr.address, deleted }, 'nftables: conntrack entries deleted');
    } catch (err) {
      const restore = before ? this.restorable(this.priorOf(before)) : undefined;
      try {
        await this.attempt('rollback', () =>
          this.exec.transaction([...declareSets(table), ...(restore ? replaceElement(table, addr, restore) : removeElement(table, addr))]),
        );
      } catch (rollbackErr) {
        const e = err as Error;
        throw new EnforcerError(
          `${e.message}; rolling the element back failed too (the kernel still removes it at expiry): ${(rollbackErr as Error).message}`,
          err instanceof EnforcerError ? err.retriable : true,
          'rollback_failed',
        );
      }
      throw err;
    }
    return { before, timeoutSec };
  }

  /** Deletes every conntrack entry with the address on either side, before or after NAT. */
  private async cutConnections(addr: QuarantineAddress): Promise<number> {
    const family = addr.version === 4 ? 'ipv4' : 'ipv6';
    let deleted = 0;
    // Orig source, orig destination, reply source (the target behind DNAT), reply destination
    // (behind SNAT). One after another: two runs racing for the same entry could fail on ENOENT.
    for (const flag of ['-s', '-d', '-r', '-q']) deleted += await this.exec.conntrackDelete(['-f', family, flag, addr.address]);
    return deleted;
  }

  /** The element for the address, or undefined when neither it nor the table/set exists. */
  private async readElement(table: string, addr: QuarantineAddress): Promise<SetElement | undefined> {
    let json: string;
    try {
      json = await this.exec.nft(['-j', 'list', 'set', 'inet', table, addr.set]);
    } catch (err) {
      if (err instanceof EnforcerError && err.code === 'absent') return undefined;
      throw err;
    }
    return parseListing(json).sets.get(addr.set)?.find((e) => e.address === addr.address);
  }

  private priorOf(element: SetElement): PriorElement {
    return {
      ...(element.comment !== undefined ? { comment: element.comment } : {}),
      // nft prints whole seconds, truncated: add one so a restored element never ends early.
      ...(element.expiresSec !== undefined ? { expiresAt: this.now() + (element.expiresSec + 1) * 1000 } : {}),
    };
  }

  /** How to put a prior element back now; undefined when it would have expired by now anyway. */
  private restorable(prior: PriorElement): { timeoutSec?: number; comment?: string } | undefined {
    const comment = prior.comment !== undefined && isSafeComment(prior.comment) ? prior.comment : undefined;
    if (prior.expiresAt === undefined) return { comment };
    const seconds = Math.ceil((prior.expiresAt - this.now()) / 1000);
    if (seconds < 1) return undefined;
    return { timeoutSec: Math.min(seconds, MAX_TIMEOUT_SEC), comment };
  }

  private whereFrom(snapshot: Snapshot): { table: string; addr: QuarantineAddress; prior: PriorElement | null } {
    // A snapshot Cordon rebuilt from the ledger carries only `extra.applied`: no element was recorded.
    if (snapshot.extra === undefined || !('address' in snapshot.extra)) return { table: this.spec.table, addr: parseAddress(snapshot.target.ip), prior: null };
    const extra = SnapshotExtra.safeParse(snapshot.extra);
    if (!extra.success) throw new EnforcerError(`not an nftables snapshot: ${extra.error.message}`, false, 'invalid_snapshot');
    const addr = parseAddress(extra.data.address);
    if (addr.set !== extra.data.set) throw new EnforcerError(`snapshot names set ${extra.data.set} for ${addr.address}`, false, 'invalid_snapshot');
    const prior = extra.data.prior ? { ...extra.data.prior } : null;
    return { table: validateTable(extra.data.table), addr, prior };
  }

  private attempt<T>(op: string, call: () => Promise<T>): Promise<T> {
    return retry(() => call(), {
      ...this.retryOptions,
      retriable: (err) => !(err instanceof EnforcerError) || err.retriable,
      onRetry: (err, attempt, delayMs) => {
        this.log?.warn({ op, attempt, delayMs, err: (err as Error).message }, 'nftables: retrying');
        this.retryOptions.onRetry?.(err, attempt, delayMs);
      },
    });
  }

  /** Runs calls on one address one after another (read-then-write must not interleave). */
  private locked<T>(key: string, call: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    const run = previous.then(call);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(key, tail);
    void tail.then(() => {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    });
    return run;
  }
}
