import type { CordonEvent } from '../../src/events';
import { parseCorrelationConfig } from '../../src/correlate/config';
import { MIN, T0, denied, host, keyOf, run } from './builder';

/**
 * A workload's labels are written by whoever deploys it, the attacker included: they lower its
 * suspicion (a role label, the label selectors of the inventory and the allowlist) only when the
 * config trusts the source that reported them (roles.trustedLabelSources).
 */

const victims = [1, 2, 3, 4].map((i) => host(`ws${i + 1}`, `10.1.0.${i + 1}`));
/** A workstation that reaches four peers on SMB and RPC: an incident when nothing vouches for it. */
function sweep(attacker: ReturnType<typeof host>): CordonEvent[] {
  return victims.flatMap((v, i) => [denied(attacker, v, 445, T0 + i * MIN), denied(attacker, v, 135, T0 + i * MIN + 1000)]);
}
const NOBODY = { trustedLabelSources: [] as string[] };
const scoreOf = (events: CordonEvent[], roles: object, allowlist: object[] = []) => {
  const r = run(events, { roles, allowlist } as never);
  return { incidents: r.incidents, score: r.incidents[0]?.score ?? 0 };
};

describe('labels from an untrusted source never lower suspicion', () => {
  const plain = host('ws1', '10.1.0.1');
  const selfScanner = host('ws1', '10.1.0.1', 'scanner');

  it('a workload labelling itself cordon.io/role=scanner scores as if unlabelled; trusted, the label counts', () => {
    const unlabelled = scoreOf(sweep(plain), NOBODY);
    const claimed = scoreOf(sweep(selfScanner), NOBODY);
    const trusted = scoreOf(sweep(selfScanner), { trustedLabelSources: ['test'] });
    expect(unlabelled.incidents).toHaveLength(1);
    expect(claimed.incidents).toHaveLength(1);
    expect(claimed.incidents[0]!.root).toBe(keyOf(selfScanner));
    expect(claimed.score).toBe(unlabelled.score);
    expect(trusted.score).toBeLessThan(claimed.score);
  });

  it('an allowlist selector on labels does not match labels an untrusted source reports', () => {
    const vouched = { ...plain, workload: { ...plain.workload!, labels: { team: 'secops' } } };
    const allowlist = [{ labels: { team: 'secops' } }];
    expect(scoreOf(sweep(vouched), NOBODY, allowlist).incidents).toHaveLength(1);
    expect(scoreOf(sweep(vouched), { trustedLabelSources: ['test'] }, allowlist).incidents).toEqual([]);
  });

  it('an inventory entry selecting by label gives its role only from a trusted source', () => {
    const vouched = { ...plain, workload: { ...plain.workload!, labels: { product: 'nessus' } } };
    const inventory = [{ selector: { labels: { product: 'nessus' } }, role: 'scanner' }];
    const untrusted = scoreOf(sweep(vouched), { ...NOBODY, inventory });
    expect(untrusted.score).toBe(scoreOf(sweep(plain), NOBODY).score);
    expect(scoreOf(sweep(vouched), { trustedLabelSources: ['test'], inventory }).score).toBeLessThan(untrusted.score);
  });

  it('trusts no source by default; the list is validated', () => {
    expect(parseCorrelationConfig().roles.trustedLabelSources).toEqual([]);
    expect(() => parseCorrelationConfig({ roles: { trustedLabelSources: [''] } } as never)).toThrow(/trustedLabelSources/);
  });
});
