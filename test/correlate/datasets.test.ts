import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { CordonEvent } from '../../src/events';
import type { Format } from '../../src/normalize/normalizer';
import { normalizeRecord } from '../../src/normalize/registry';
import type { CorrelationConfigInput } from '../../src/correlate/config';
import type { Incident } from '../../src/correlate/incident';
import { replay } from '../../src/correlate/replay';

/**
 * Acceptance on real recordings (OTRF Security-Datasets, read from ../shared/datasets, never
 * copied into the repo): normalize with the WFP / Zeek normalizers, replay, check who is blamed.
 */
const REPO = resolve(__dirname, '../..');
const DATASETS = resolve(REPO, '../shared/datasets');
const OTRF = join(DATASETS, 'otrf-lateral-movement');
const ZEEK = join(DATASETS, 'otrf-apt29-zeek');
const ATTACKER = '172.18.39.5';

/** The lab's roles by host name; the domain controller is left to be recognized by behaviour. */
const LAB: CorrelationConfigInput = { roles: { inventory: [{ selector: { name: 'WORKSTATION*' }, role: 'workstation' }] } };

function load(file: string, format: Format): CordonEvent[] {
  const ctx = { state: new Map<string, unknown>() };
  const out: CordonEvent[] = [];
  for (const line of gunzipSync(readFileSync(file)).toString('utf8').split('\n')) {
    if (!line.trim()) continue;
    const outcome = normalizeRecord(line, format, ctx);
    if (outcome.kind === 'reject') throw new Error(`${file}: ${outcome.reason}`);
    if (outcome.kind === 'events') out.push(...outcome.events);
  }
  return out;
}

interface Truth {
  dataset: string;
  victim: string;
  denied: number;
}

function groundTruth(): Truth[] {
  const [header, ...rows] = readFileSync(join(OTRF, 'ground-truth.csv'), 'utf8').trim().split(/\r?\n/);
  const cols = (header as string).split(',').map((c) => c.trim());
  return rows.map((row) => {
    const cells = row.split(',').map((c) => c.trim());
    const get = (name: string) => cells[cols.indexOf(name)] ?? '';
    // covenant_sc_query has a blank victim; its denied pair 172.18.39.5>172.18.38.5:49683 names the DC
    const pairVictim = /^[^>]+>([^:]+):/.exec(get('denied_pairs'))?.[1] ?? '';
    return { dataset: get('dataset'), victim: get('victim_ip') || pairVictim, denied: Number(get('denied_flows')) };
  });
}

const entityOf = (inc: Incident, key: string) => inc.entities.find((e) => e.key === key);
const rootIp = (inc: Incident) => entityOf(inc, inc.root)?.ip;
const names = (inc: Incident, ip: string) => inc.entities.some((e) => e.ip === ip) && inc.path.nodes.some((k) => entityOf(inc, k)?.ip === ip);

const available = existsSync(OTRF) && existsSync(ZEEK);
const suite = available ? describe : describe.skip;

suite('OTRF lateral-movement recordings (WFP 5156/5157, Sysmon 3)', () => {
  const truth = groundTruth();
  const files = readdirSync(OTRF).filter((f) => f.endsWith('.jsonl.gz')).sort();
  const events = new Map(files.map((f) => [f.replace(/\.jsonl\.gz$/, ''), load(join(OTRF, f), 'wfp')]));
  const report: string[] = [];

  afterAll(() => process.stdout.write(`\n${report.join('\n')}\n`));

  it('has the 29 recordings and their ground truth', () => {
    expect(files).toHaveLength(29);
    expect(truth.map((t) => t.dataset).sort()).toEqual([...events.keys()].sort());
    expect(truth.filter((t) => t.denied > 0)).toHaveLength(6);
  });

  it.each(groundTruth().map((t) => [t.dataset, t] as const))('%s', (dataset, t) => {
    const { incidents } = replay(events.get(dataset) as CordonEvent[], LAB);
    for (const inc of incidents) expect(rootIp(inc)).toBe(ATTACKER); // never rooted at another host
    if (t.denied > 0) {
      expect(incidents).toHaveLength(1);
      const inc = incidents[0] as Incident;
      expect(entityOf(inc, inc.root)).toMatchObject({ ip: ATTACKER, name: 'WORKSTATION5', role: 'workstation', position: 'root' });
      expect(names(inc, t.victim)).toBe(true);
      expect(inc.counters.denied).toBe(t.denied);
      expect(inc.techniques.some((x) => x.startsWith('T1021'))).toBe(true);
    } else if (t.victim) {
      // the attack rode on permitted connections only: found from the sessions (quality.test.ts)
      expect(incidents).toHaveLength(1);
      expect(names(incidents[0] as Incident, t.victim)).toBe(true);
      expect(incidents[0]!.counters.allowed).toBeGreaterThan(0);
    } else {
      expect(incidents).toEqual([]);
    }
    const line = incidents.map((i) => {
      const victims = i.entities.filter((e) => e.position === 'target').map((e) => `${e.name ?? e.ip} ${e.ip} [${e.role}]`);
      return `${i.severity} ${i.score.toFixed(1)} root ${entityOf(i, i.root)?.name} ${rootIp(i)} -> ${victims.join(', ')} (${i.techniques.join(' ')})`;
    });
    report.push(`  ${dataset.padEnd(66)} ${t.denied ? `denied ${t.denied}` : 'no denials'}: ${incidents.length} incident(s) ${line.join('; ')}`);
  });

  it('recognizes the domain controller from behaviour (Kerberos served), not from config', () => {
    const { incidents } = replay(events.get('covenant_sc_query_dcerpc_smb_svcctl') as CordonEvent[], LAB);
    const dc = incidents[0]!.entities.find((e) => e.ip === '172.18.38.5');
    expect(dc).toMatchObject({ name: 'MORDORDC', role: 'domain-controller', roleSource: 'observed' });
    expect(incidents[0]!.techniques).toContain('T1210');
  });

  it('with no configuration at all, blames only the attacker and finds the RPC-call recordings', () => {
    const found: string[] = [];
    for (const t of truth) {
      const { incidents } = replay(events.get(t.dataset) as CordonEvent[]);
      expect(incidents.length).toBeLessThanOrEqual(1);
      for (const inc of incidents) {
        expect(rootIp(inc)).toBe(ATTACKER);
        expect(names(inc, t.victim)).toBe(true);
        found.push(t.dataset);
      }
    }
    report.push(`  defaults (no inventory): incidents on ${found.length} of 29 recordings: ${found.join(', ')}`);
    // the RPC calls refused between hosts (roles unknown: no workstation-to-workstation factor) stand alone
    const rpcCalls = truth.filter((t) => t.denied > 0 && t.dataset !== 'covenant_dcom_executeexcel4macro_blocked').map((t) => t.dataset);
    expect(found).toEqual(expect.arrayContaining(rpcCalls));
  });
});

suite('OTRF APT29 Zeek conn.log (report)', () => {
  const steps = readFileSync(join(ZEEK, 'apt29_lm_groundtruth.csv'), 'utf8').trim().split(/\r?\n/).slice(1);
  const sources = new Set(steps.map((s) => (s.split(',')[4] ?? '').trim()));

  it('blames no host outside the ground-truth sources', () => {
    const files = readdirSync(ZEEK).filter((f) => f.endsWith('.gz')).sort();
    const lines: string[] = [];
    for (const day of ['day1', 'day2']) {
      const seen = new Set<string>();
      const events = files
        .filter((f) => f.startsWith(day))
        .flatMap((f) => load(join(ZEEK, f), 'zeek'))
        .filter((e) => {
          // one connection seen by two sensors: two uids, one 5-tuple and start time
          const k = 'src' in e ? `${e.time}|${e.src.ip}:${e.src.port}>${e.dst.ip}:${e.dstPort}/${e.protocol}` : e.id;
          return !seen.has(k) && seen.add(k);
        });
      const { incidents, policyGaps } = replay(events);
      for (const inc of incidents) {
        const ip = rootIp(inc) as string;
        expect(sources.has(ip)).toBe(true);
        const hops = inc.path.edges.map((e) => `${entityOf(inc, e.from)?.ip}>${entityOf(inc, e.to)?.ip}:${e.ports.join('/')} (${e.denied} denied)`);
        lines.push(`  ${day}: ${inc.severity} ${inc.score.toFixed(1)} root ${ip}: ${hops.join(', ')} [${inc.techniques.join(' ')}]`);
      }
      lines.push(`  ${day}: ${events.length} events, ${incidents.length} incident(s), ${policyGaps.length} policy gap(s)`);
    }
    process.stdout.write(`\nAPT29 Zeek (ground-truth sources ${[...sources].join(', ')}):\n${lines.join('\n')}\n`);
  });
});
