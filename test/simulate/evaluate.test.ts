import type { Incident } from '../../src/correlate/incident';
import { evaluate } from '../../src/simulate/evaluate';
import type { AttackTruth, EntityRef, GroundTruth } from '../../src/simulate/groundtruth';

const H = 3_600_000;
const ref = (short: string, ip: string, role = 'workstation'): EntityRef => ({
  key: `host/${short.toLowerCase()}.corp.example`,
  ip,
  name: `${short}.corp.example`,
  short,
  kind: 'host',
  role,
  observer: 'wfp',
});
const A = ref('WS0001', '10.10.1.20');
const B = ref('APP01', '10.20.1.21', 'server');
const C = ref('WS0002', '10.10.1.21');
const SCAN = ref('vulnscan01', '10.40.0.10', 'scanner');
const GAP = ref('FS01', '10.20.1.20', 'server');

function attack(id: string, root: EntityRef, pivots: EntityRef[], start: number, end: number): AttackTruth {
  return {
    id,
    kind: 'winrm',
    pace: 'fast',
    hops: pivots.length + 1,
    anomalies: false,
    root,
    compromised: [root, ...pivots],
    victims: [...pivots, C],
    path: [],
    start,
    end,
    techniques: ['T1021.006'],
    deniedAttempts: 4,
    allowedAttempts: 1,
    formats: ['wfp'],
  };
}

const truth: GroundTruth = {
  scenario: 't',
  seed: 1,
  start: 0,
  end: 24 * H,
  attacks: [attack('atk-1', A, [B], 2 * H, 3 * H), attack('atk-2', ref('WS0003', '10.10.1.22'), [], 10 * H, 11 * H)],
  policyGaps: [{ src: GAP, dst: B, port: 5985, proto: 'tcp', why: 'missing rule' }],
  allowlisted: [{ entity: SCAN, purpose: 'authorised vulnerability scanner' }],
  engineConfig: { allowlist: [], roles: { inventory: [], trustedLabelSources: [] } },
};

function incident(id: string, root: string, entity: { name?: string; ip?: string }, first: number, last: number, techniques: string[] = []): Incident {
  return {
    id,
    status: 'open',
    severity: 'medium',
    score: 10,
    confidence: 0.6,
    root,
    entities: [{ key: root, kind: 'host', role: 'workstation', roleSource: 'inventory', position: 'root', ...entity }],
    path: { nodes: [root], edges: [], edgesDropped: 0 },
    techniques,
    evidence: { items: [], total: 0, dropped: 0, byRule: {} },
    counters: { denied: 1, allowed: 0, anomalies: 0, entitiesDropped: 0 },
    windowStart: first,
    firstSeen: first,
    lastSeen: last,
    version: 1,
    summary: 's',
  };
}

describe('evaluate', () => {
  it('matches incidents by root identity (workload key or address) and time overlap', () => {
    const e = evaluate(truth, [
      incident('i1', 'host:ws0001.corp.example', { name: 'WS0001', ip: '10.10.1.20' }, 2 * H + 60_000, 3 * H, ['T1021.006', 'T1046']),
      incident('i2', 'ip:10.10.1.22', {}, 10 * H, 10.5 * H),
    ]);
    expect(e.recall).toBe(1);
    expect(e.precision).toBe(1);
    expect(e.perAttack[0]!.techniquesFound).toEqual(['T1021.006']);
  });

  it('counts a pivot-rooted incident as a fragment (precision, not recall) and explains misses', () => {
    const e = evaluate(truth, [incident('i1', 'host:app01.corp.example', { ip: '10.20.1.21' }, 2.5 * H, 3 * H)]);
    expect(e.recall).toBe(0);
    expect(e.precision).toBe(1);
    expect(e.fragments.map((f) => f.id)).toEqual(['i1']);
    expect(e.misses[0]!.reason).toMatch(/no incident involves WS0001/);
  });

  it('names false positives: allowlisted scanner, policy gap, wrong window, benign', () => {
    const e = evaluate(truth, [
      incident('scan', 'ip:10.40.0.10', {}, 1 * H, 1.2 * H),
      incident('gap', 'host:fs01.corp.example', { ip: '10.20.1.20' }, 5 * H, 6 * H),
      incident('late', 'host:ws0001.corp.example', { ip: '10.10.1.20' }, 20 * H, 20.1 * H),
      incident('benign', 'ip:10.10.1.99', {}, 7 * H, 7.1 * H),
    ]);
    expect(e.precision).toBe(0);
    const why = Object.fromEntries(e.falsePositives.map((f) => [f.id, f.reason]));
    expect(why.scan).toMatch(/^allowlisted authorised vulnerability scanner/);
    expect(why.gap).toMatch(/^policy-gap source FS01/);
    expect(why.late).toMatch(/outside its window/);
    expect(why.benign).toMatch(/^benign entity/);
    expect(e.policyGaps[0]!.incidents).toEqual(['gap']);
    expect(e.misses.map((m) => m.id)).toEqual(['atk-1', 'atk-2']);
    expect(e.misses[0]!.reason).toMatch(/outside the attack window/);
  });

  it('is 1/1 with nothing to find and nothing found', () => {
    const e = evaluate({ ...truth, attacks: [] }, []);
    expect([e.recall, e.precision]).toEqual([1, 1]);
  });
});
