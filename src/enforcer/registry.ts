import type Redis from 'ioredis';
import type { Config } from '../config';
import { withInjectedFaults } from '../contain/faults';
import type { Logger } from '../logger';
import type { Enforcer } from './enforcer';
import { IllumioEnforcer } from './illumio';
import { KubernetesEnforcer } from './kubernetes';
import { LabelStoreEnforcer } from './label-store';
import { NftablesEnforcer } from './nftables';
import { WebhookEnforcer } from './webhook';

/** The enforcement layers the config turns on, by the name playbooks use (`enforcer: kubernetes`). */
export function enforcersFrom(config: Config, redis: Redis, log: Logger): Map<string, Enforcer> {
  const e = config.contain.enforcers;
  const list: Enforcer[] = [];
  if (e.labelstore) list.push(new LabelStoreEnforcer(redis, config.redis.keyPrefix));
  if (e.nftables.enabled) list.push(new NftablesEnforcer({ table: e.nftables.table, ...(e.nftables.netns ? { netns: e.nftables.netns } : {}) }));
  if (e.kubernetes) list.push(new KubernetesEnforcer(e.kubernetes, { logger: log.child({ enforcer: 'kubernetes' }) }));
  if (e.illumio) list.push(new IllumioEnforcer(e.illumio, { logger: log.child({ enforcer: 'illumio' }) }));
  if (e.webhook) list.push(new WebhookEnforcer(e.webhook, { logger: log.child({ enforcer: 'webhook' }) }));
  return withInjectedFaults(new Map(list.map((x) => [x.name, x])));
}

/**
 * Start-up work of the layers that have some (the Illumio quarantine label is looked up, and
 * created if allowed). A layer that cannot be reached now is not fatal: its first apply tries again.
 */
export async function prepareEnforcers(enforcers: ReadonlyMap<string, Enforcer>, log: Logger): Promise<void> {
  for (const [name, enforcer] of enforcers) {
    const prepare = (enforcer as { prepare?: () => Promise<unknown> }).prepare;
    if (typeof prepare !== 'function') continue;
    try {
      await prepare.call(enforcer);
      log.info({ enforcer: name }, 'enforcer ready');
    } catch (err) {
      log.warn({ enforcer: name, err: (err as Error).message }, 'enforcer not ready at start-up; its first quarantine will try again');
    }
  }
}
