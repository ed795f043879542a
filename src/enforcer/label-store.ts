import type Redis from 'ioredis';
import type { ApplyRequest, Capabilities, Enforcer, Fence, Observation, Snapshot, Target } from './enforcer';
import { EnforcerError, FencedCallError } from './enforcer';
import { guardProtected } from './protection';

/**
 * An enforcement layer that is only a label store in Redis: targets' labels live in a hash, and
 * every real change is counted. It contains nothing on the network; it is the fast enforcer of the
 * containment benchmark and crash tests (it survives the process, so a test can count how many
 * times a target was really quarantined), and a stand-in for a layer not wired up yet.
 */
/**
 * Sets (or, for a null value, deletes) labels and counts the change, in one step that first checks
 * the fence: the writer lock must still hold the caller's token, or nothing is written.
 * KEYS: labels, changes, lock. ARGV: token ('' = unfenced), change kind, now, labels JSON.
 * Returns 1 when something changed, 0 when nothing did, -1 when fenced.
 */
const WRITE = `
if ARGV[1] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[1] then return -1 end
local changed = false
for k, v in pairs(cjson.decode(ARGV[4])) do
  local now = redis.call('HGET', KEYS[1], k)
  if v == cjson.null then
    if now then redis.call('HDEL', KEYS[1], k); changed = true end
  elseif now ~= v then
    redis.call('HSET', KEYS[1], k, v); changed = true
  end
end
if not changed then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
redis.call('HSET', KEYS[2], ARGV[2] .. 'At', ARGV[3])
return 1
`;

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

  async setLabels(target: Target, labels: Record<string, string>): Promise<void> {
    await this.redis.del(this.key(target));
    if (Object.keys(labels).length > 0) await this.redis.hset(this.key(target), labels);
  }

  async apply(req: ApplyRequest): Promise<Snapshot> {
    if (!req.target.entity) throw new EnforcerError('target has no entity', false);
    const before = await this.redis.hgetall(this.key(req.target));
    guardProtected(this.name, req, { labels: before });
    const prior = Object.fromEntries(Object.keys(req.labels).map((k) => [k, before[k] ?? null]));
    await this.write(req.target, 'applied', req.labels, req.fence);
    return { target: req.target, labels: prior, takenAt: Date.now() };
  }

  async revert(snapshot: Snapshot, _leaseId?: string, fence?: Fence): Promise<void> {
    await this.write(snapshot.target, 'reverted', snapshot.labels, fence);
  }

  private async write(target: Target, change: 'applied' | 'reverted', labels: Record<string, string | null>, fence: Fence | undefined): Promise<void> {
    const outcome = await this.redis.eval(WRITE, 3, this.key(target), this.changesKey(target), fence?.lockKey ?? '', fence?.token ?? '', change, Date.now(), JSON.stringify(labels));
    if (outcome === -1) throw new FencedCallError(`labelstore ${change === 'applied' ? 'apply' : 'revert'} on ${target.entity} refused: the ledger writer lock no longer holds ${fence?.token} (a newer writer took over)`);
  }

  async observe(target: Target): Promise<Observation> {
    const labels = await this.redis.hgetall(this.key(target));
    return { target, labels, contained: labels['cordon.io/quarantine'] === 'true' };
  }
}
