import type { CorrelationConfigInput } from '../../src/correlate/config';
import type { Incident } from '../../src/correlate/incident';
import { replay, sortByTime } from '../../src/correlate/replay';
import type { CordonEvent } from '../../src/events';
import { isFlow } from '../../src/events';
import { Cluster, shape } from './cluster';
import { apt29Events, available, lateralEvents, lateralTruth } from './recordings';

/**
 * Live mode (one engine per partition, hand-offs between them) against `cordon replay` (one
 * engine) on the recorded attacks: the same incidents, with the same ids, roots, paths, entities
 * and scores. The recordings are where the two used to part: a Windows host's own events bind its
 * address on its partition, while the flows that name the bare address (logged by its peers) land
 * on the address's partition, and a member's or a DC's behaviour is learned wherever its flows are
 * read. Bindings and learned behaviour are broadcast; events about a bound address are redirected.
 */
const LAB: CorrelationConfigInput = { roles: { inventory: [{ selector: { name: 'WORKSTATION*' }, role: 'workstation' }] } };

const suite = available ? describe : describe.skip;

const recordings = available ? lateralTruth() : [];

suite('live mode gives the incidents replay gives, on the recorded attacks', () => {
  it.each([2, 4, 7])('OTRF lateral movement, every recording, %i partitions', (partitions) => {
    let incidents = 0;
    for (const { dataset } of recordings) {
      const events = sortByTime(lateralEvents(dataset));
      const single = replay(events, LAB).incidents;
      expect({ dataset, incidents: new Cluster(partitions, LAB).feed(events).incidents().map(shape) }).toEqual({ dataset, incidents: single.map(shape) });
      incidents += single.length;
    }
    expect(incidents).toBeGreaterThanOrEqual(25);
  });

  it.each([2, 4])('APT29, both days, %i partitions: both campaigns, every step', (partitions) => {
    const events = sortByTime(apt29Events(['day1', 'day2']));
    const single = replay(events).incidents;
    const cluster = new Cluster(partitions).feed(events);
    expect(cluster.incidents().map(shape)).toEqual(single.map(shape));
    expect(single.length).toBe(2);
    // the domain member flags that made those sessions count were learned on other partitions
    expect(cluster.engines.some((e) => e.handoffStats.bound + e.handoffStats.redirected > 0 || e.snapshot().learned!.length > 0)).toBe(true);
  });

  /**
   * Hand-offs delivered a consumer batch (100 events) late, the recording's part before the attack
   * read first: where every address the incident names was bound by then (as in any network that
   * ran before the attack), the answer is replay's.
   */
  it('OTRF, hand-offs a batch late, addresses bound before the attack', () => {
    let compared = 0;
    for (const t of recordings) {
      const events = sortByTime(lateralEvents(t.dataset));
      const cut = events.findIndex((e) => e.time >= t.firstAttack);
      if (cut <= 0) continue; // no attacker named, or nothing before the attack
      const before = events.slice(0, cut);
      const single = replay(events, LAB).incidents;
      const bound = boundAddresses(before);
      if (!single.every((i) => i.entities.every((e) => e.ip === undefined || bound.has(e.ip)))) continue;
      const cluster = new Cluster(4, LAB, 100).feed(before).feed(events.slice(before.length));
      expect({ dataset: t.dataset, incidents: cluster.incidents().map(verdict) }).toEqual({ dataset: t.dataset, incidents: single.map(verdict) });
      compared += 1;
    }
    expect(compared).toBeGreaterThanOrEqual(18); // of the 25 with a known attacker, 18 bound every address before the attack
  });
});

/** The incident as a playbook matches it; a flow a batch late may still move an edge's counters. */
function verdict(i: Incident) {
  const { byRule: _byRule, edges, ...rest } = shape(i);
  return { ...rest, edges: edges.map(([from, to, ports]) => [from, to, ports]) };
}

/** Addresses a workload was seen holding in these events. */
function boundAddresses(events: readonly CordonEvent[]): Set<string> {
  const out = new Set<string>();
  for (const e of events) {
    if (!isFlow(e)) continue;
    if (e.src.workload && e.src.ip) out.add(e.src.ip);
    if (e.dst.workload && e.dst.ip) out.add(e.dst.ip);
  }
  return out;
}
