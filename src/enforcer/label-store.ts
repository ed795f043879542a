import type Redis from 'ioredis';
import type { ApplyRequest, Capabilities, Enforcer, Observation, Snapshot, Target } from './enforcer';
import { EnforcerError } from './enforcer';
import { guardProtected } from './protection';

/**
 * An enforcement layer that is only a label store in Redis: targets' labels live in a hash, and
 * every real change is counted. It contains nothing on the network; it is the fast enforcer of the
 * containment benchmark and crash tests (it survives the process, so a test can count how many
 * times a target was really quarantined), and a stand-in for a layer not wired up yet.
 */
export class LabelStoreEnforcer implements Enforcer {
  readonly name = 'labelstore';
  readonly capabilities: Capabilities = { labels: true, kernelExpiry: false, connectionCut: false };

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(target: Target): string {
    return `${this.prefix}:labelstore:${target.entity}`;
  }

  private changesKey(target: Target): string {
    return `${this.prefix}:labelstore:changes:${target.entity}`;
  }

  /**
   * How many times labels were really changed on the target (applies and reverts that did
   * something), and when the last of each happened (epoch ms): when the target was really
   * contained and restored, whatever the ledger says and whenever it says it.
   */
  async changes(target: Target): Promise<{ applied: number; reverted: number; appliedAt?: number; revertedAt?: number }> {
    const [a, r, aAt, rAt] = await this.redis.hmget(this.changesKey(target), 'applied', 'reverted', 'appliedAt', 'revertedAt');
    return { applied: Number(a ?? 0), reverted: Number(r ?? 0), ...(aAt ? { appliedAt: Number(aAt) } : {}), ...(rAt ? { revertedAt: Number(rAt) } : {}) };
  }

  private async counted(target: Target, change: 'applied' | 'reverted'): Promise<void> {
    await this.redis.multi().hincrby(this.changesKey(target), change, 1).hset(this.changesKey(target), `${change}At`, Date.now()).exec();
  }

  async setLabels(target: Target, labels: Record<string, string>): Promise<void> {
    await this.redis.del(this.key(target));
    if (Object.keys(labels).length > 0) await this.redis.hset(this.key(target), labels);
  }

  async apply(req: ApplyRequest): Promise<Snapshot> {
    if (!req.target.entity) throw new EnforcerError('target has no entity', false);
    const before = await this.redis.hgetall(this.key(req.target));
    guardProtected(this.name, req, { labels: before });
    const prior = Object.fromEntries(Object.keys(req.labels).map((k) => [k, before[k] ?? null]));
    const changed = Object.entries(req.labels).some(([k, v]) => before[k] !== v);
    if (changed) {
      await this.redis.hset(this.key(req.target), req.labels);
      await this.counted(req.target, 'applied');
    }
    return { target: req.target, labels: prior, takenAt: Date.now() };
  }

  async revert(snapshot: Snapshot): Promise<void> {
    const now = await this.redis.hgetall(this.key(snapshot.target));
    let changed = false;
    for (const [k, v] of Object.entries(snapshot.labels)) {
      if (v === null && k in now) {
        await this.redis.hdel(this.key(snapshot.target), k);
        changed = true;
      } else if (v !== null && now[k] !== v) {
        await this.redis.hset(this.key(snapshot.target), k, v);
        changed = true;
      }
    }
    if (changed) await this.counted(snapshot.target, 'reverted');
  }

  async observe(target: Target): Promise<Observation> {
    const labels = await this.redis.hgetall(this.key(target));
    return { target, labels, contained: labels['cordon.io/quarantine'] === 'true' };
  }
}
