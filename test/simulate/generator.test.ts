import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parseCorrelationConfig } from '../../src/correlate/config';
import { compileAny } from '../../src/correlate/selectors';
import { ATTACK_KINDS, ScenarioConfig } from '../../src/simulate/config';
import { GroundTruth } from '../../src/simulate/groundtruth';
import { presetConfig } from '../../src/simulate/presets';
import { permits } from '../../src/simulate/policy';
import { Rng } from '../../src/simulate/random';
import { Scenario, emptyStats, type SimRecord } from '../../src/simulate/scenario';
import { writeScenario } from '../../src/simulate/writer';

function digest(records: Iterable<SimRecord>): { hash: string; count: number } {
  const h = createHash('sha256');
  let count = 0;
  for (const r of records) {
    h.update(`${r.format}|${r.key}|${r.time}|${r.text}\n`);
    count++;
  }
  return { hash: h.digest('hex'), count };
}

const small = (seed: number, extra: Record<string, unknown> = {}) => new Scenario(presetConfig('small', { seed, ...extra }));

describe('Rng', () => {
  it('is a pure function of its seed', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const xs = Array.from({ length: 1000 }, () => a.u32());
    expect(Array.from({ length: 1000 }, () => b.u32())).toEqual(xs);
    expect(new Rng(43).u32()).not.toBe(new Rng(42).u32());
  });

  it('draws within bounds and derives independent streams', () => {
    const r = new Rng(7);
    for (let i = 0; i < 10_000; i++) {
      const n = r.int(3, 9);
      expect(n).toBeGreaterThanOrEqual(3);
      expect(n).toBeLessThanOrEqual(9);
      const x = r.next();
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
    }
    expect(Rng.derive(1, 'a').u32()).not.toBe(Rng.derive(1, 'b').u32());
    expect(Rng.derive(1, 'a').u32()).toBe(Rng.derive(1, 'a').u32());
    expect(new Rng(1).uuid()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe('determinism', () => {
  it('the same seed gives byte-identical records and ground truth; another seed does not', () => {
    const a = small(11);
    const b = small(11);
    const da = digest(a.records());
    expect(digest(b.records())).toEqual(da);
    // replaying the same scenario object gives the same stream again
    expect(digest(a.records())).toEqual(da);
    expect(JSON.stringify(b.truth)).toBe(JSON.stringify(a.truth));
    const c = small(12);
    expect(digest(c.records()).hash).not.toBe(da.hash);
    expect(JSON.stringify(c.truth)).not.toBe(JSON.stringify(a.truth));
  });

  it('the async stream yields exactly the synchronous records', async () => {
    const s = new Scenario(presetConfig('quickstart', { seed: 5 }));
    const sync = digest(s.records());
    const list: SimRecord[] = [];
    for await (const r of s.stream()) list.push(r);
    expect(digest(list)).toEqual(sync);
  });
});

describe('the record stream', () => {
  const s = small(1);
  const stats = emptyStats();
  const records = [...s.records(stats)];

  it('is in event-time order and covers every format', () => {
    for (let i = 1; i < records.length; i++) expect(records[i]!.time).toBeGreaterThanOrEqual(records[i - 1]!.time);
    expect(Object.keys(stats.byFormat).sort()).toEqual(['calico', 'cordon', 'hubble', 'wfp', 'zeek']);
    expect(stats.records).toBe(records.length);
    for (const r of records) {
      expect(r.time).toBeGreaterThanOrEqual(s.truth.start);
      expect(r.time).toBeLessThan(s.truth.end + 60_000);
      expect(r.key.length).toBeGreaterThan(0);
      expect(r.text).not.toContain('\n');
    }
  });

  it('holds the benign traps', () => {
    for (const tag of ['background', 'admin', 'policy_gap', 'broadcast', 'scanner', 'monitor', 'noise', 'benign_anomaly', 'attack']) {
      expect(stats.byTag[tag]).toBeGreaterThan(0);
    }
    const bcast = records.filter((r) => r.tag === 'broadcast' && r.expect === 'denied');
    const groups = new Set(bcast.map((r) => (JSON.parse(r.text) as { DestAddress: string }).DestAddress));
    expect([...groups].some((ip) => ip.endsWith('.255'))).toBe(true);
    for (const ip of ['224.0.0.252', '224.0.0.251', '239.255.255.250']) expect(groups.has(ip)).toBe(true);
    // a policy gap retries its one pair for (nearly) the whole day
    const gapTimes = records.filter((r) => r.tag === 'policy_gap').map((r) => r.time);
    expect(Math.max(...gapTimes) - Math.min(...gapTimes)).toBeGreaterThan(20 * 3_600_000);
  });

  it('has records for every attack, inside its window', () => {
    for (const a of s.truth.attacks) {
      const mine = records.filter((r) => r.attackId === a.id);
      expect(mine.length).toBeGreaterThan(0);
      expect(mine.some((r) => r.expect === 'denied')).toBe(true);
      // Calico aggregates are stamped with their interval start
      const slack = a.formats.includes('calico') ? 5 * 60_000 : 0;
      for (const r of mine) {
        expect(r.time).toBeGreaterThanOrEqual(a.start - slack);
        expect(r.time).toBeLessThanOrEqual(a.end + 60_000);
      }
    }
    expect(records.filter((r) => r.attackId !== undefined).every((r) => r.tag === 'attack')).toBe(true);
  });

  it('honours maxRecords', () => {
    expect([...small(1, { maxRecords: 500 }).records()].length).toBe(500);
  });
});

describe('ground truth', () => {
  const s = small(3);
  const truth = s.truth;

  it('parses against its own schema and the engine accepts its configuration', () => {
    expect(() => GroundTruth.parse(JSON.parse(JSON.stringify(truth)))).not.toThrow();
    const config = parseCorrelationConfig(truth.engineConfig);
    const allow = compileAny(config.allowlist)!;
    for (const a of truth.allowlisted) {
      const e = a.entity;
      const descriptor = e.kind === 'pod' ? { kind: 'pod', id: e.name, name: e.name, namespace: e.namespace, labels: { 'app.kubernetes.io/name': 'prometheus' }, ip: e.ip } : { kind: 'ip', ip: e.ip };
      expect(allow(descriptor)).toBe(true);
    }
    for (const a of truth.attacks) expect(allow({ kind: 'ip', ip: a.root.ip })).toBe(false);
  });

  it('covers every attack kind, both paces, propagation and anomalies', () => {
    expect(new Set(truth.attacks.map((a) => a.kind))).toEqual(new Set(ATTACK_KINDS));
    expect(new Set(truth.attacks.map((a) => a.pace))).toEqual(new Set(['fast', 'slow']));
    expect(truth.attacks.some((a) => a.hops >= 2 && a.compromised.length >= 2)).toBe(true);
    expect(truth.attacks.some((a) => a.anomalies)).toBe(true);
    expect(truth.attacks.some((a) => !a.anomalies)).toBe(true);
    expect(truth.attacks.some((a) => a.formats.includes('hubble'))).toBe(true);
    expect(truth.attacks.some((a) => a.formats.includes('calico'))).toBe(true);
    expect(truth.attacks.some((a) => a.victims.some((v) => v.role === 'dc'))).toBe(true);
    // slow ones last hours with a few attempts an hour
    for (const a of truth.attacks.filter((x) => x.pace === 'slow')) expect(a.end - a.start).toBeGreaterThan(3 * 3_600_000);
  });

  it('is consistent: windows inside the scenario, roots never victims, no attack tangled with another', () => {
    const roots = new Set(truth.attacks.map((a) => a.root.key));
    expect(roots.size).toBe(truth.attacks.length);
    const compromised = new Set(truth.attacks.flatMap((a) => a.compromised.map((c) => c.key)));
    for (const a of truth.attacks) {
      expect(a.start).toBeGreaterThanOrEqual(truth.start);
      expect(a.end).toBeLessThanOrEqual(truth.end + 60_000);
      expect(a.start).toBeLessThan(a.end);
      expect(a.compromised[0]!.key).toBe(a.root.key);
      expect(a.victims.some((v) => v.key === a.root.key)).toBe(false);
      expect(a.deniedAttempts).toBeGreaterThan(0);
      expect(a.techniques.length).toBeGreaterThan(0);
      expect(a.path.length).toBeGreaterThan(0);
      for (const h of a.path) expect(h.first).toBeLessThanOrEqual(h.last);
      // no victim of this attack is the root or a pivot of another one
      const own = new Set(a.compromised.map((c) => c.key));
      for (const v of a.victims) if (!own.has(v.key)) expect(compromised.has(v.key)).toBe(false);
      // every pivot was reached through a permitted connection from the previous hop
      for (const p of a.compromised.slice(1)) expect(a.path.some((h) => h.to.key === p.key && h.foothold)).toBe(true);
    }
  });

  it('lists policy gaps the policy really denies, and allowlisted scanners and pollers', () => {
    expect(truth.policyGaps.length).toBeGreaterThanOrEqual(2);
    for (const g of truth.policyGaps) {
      const src = s.enterprise.entities.find((e) => e.key === g.src.key)!;
      const dst = s.enterprise.entities.find((e) => e.key === g.dst.key)!;
      expect(permits(src, dst, g.port, 'tcp')).toBe(false);
      expect(truth.attacks.some((a) => a.root.key === g.src.key)).toBe(false);
    }
    expect(truth.allowlisted.map((a) => a.entity.role)).toEqual(expect.arrayContaining(['scanner', 'monitor', 'pod']));
  });
});

describe('presets and config', () => {
  it('small is ~50 hosts and ~20k records with ~10 attacks', () => {
    const s = small(1);
    const hosts = s.enterprise.entities.filter((e) => e.role !== 'pod' && e.role !== 'node');
    expect(hosts.length).toBeGreaterThanOrEqual(35);
    expect(hosts.length).toBeLessThanOrEqual(60);
    const stats = emptyStats();
    for (const _ of s.records(stats)) void _;
    expect(stats.records).toBeGreaterThan(15_000);
    expect(stats.records).toBeLessThan(30_000);
    expect(s.truth.attacks.length).toBeGreaterThanOrEqual(10);
  });

  it('enterprise has thousands of entities and a configurable rate; quickstart is short', () => {
    const e = new Scenario(presetConfig('enterprise', { background: { rate: 10 } }));
    expect(e.enterprise.entities.length).toBeGreaterThan(4000);
    expect(e.config.background.rate).toBe(10);
    expect(e.truth.attacks.length).toBe(40);
    const q = new Scenario(presetConfig('quickstart'));
    expect(q.config.duration).toBe(2 * 3_600_000);
    expect(q.truth.attacks.length).toBe(4);
  });

  it('validates with zod and names the bad field', () => {
    expect(() => ScenarioConfig.parse({ duration: '3 weeks' })).toThrow(/duration/);
    expect(() => ScenarioConfig.parse({ duration: '1h', warmup: '2h' })).toThrow(/warmup/);
    expect(() => ScenarioConfig.parse({ attacks: [{ kind: 'teleport' }] })).toThrow(/kind/);
    const c = ScenarioConfig.parse({ seed: 9, duration: '90m', warmup: '10m', start: '2025-01-01T00:00:00Z' });
    expect(c.duration).toBe(90 * 60_000);
    expect(c.start).toBe(Date.parse('2025-01-01T00:00:00Z'));
    expect(c.topology.workstations).toBeGreaterThan(0);
  });

  it('plans attacks from counts per kind, deterministically', () => {
    const cfg = { seed: 4, duration: '12h', attackCounts: { winrm: 2, kubelet: 1 } };
    const a = new Scenario(cfg).truth.attacks;
    expect(a.map((x) => x.kind).sort()).toEqual(['kubelet', 'winrm', 'winrm']);
    expect(JSON.stringify(new Scenario(cfg).truth.attacks)).toBe(JSON.stringify(a));
  });
});

describe('writer', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cordon-sim-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes one JSON-lines file per format and the ground truth', async () => {
    const s = new Scenario(presetConfig('quickstart', { seed: 2 }));
    const res = await writeScenario(s, dir);
    expect(readdirSync(dir).sort()).toEqual(['calico.jsonl', 'cordon.jsonl', 'ground-truth.json', 'hubble.jsonl', 'wfp.jsonl', 'zeek.jsonl']);
    for (const [format, file] of Object.entries(res.files)) {
      const lines = readFileSync(file!, 'utf8').split('\n').filter(Boolean);
      expect(lines.length).toBe(res.stats.byFormat[format]);
      for (const l of lines.slice(0, 50)) expect(() => JSON.parse(l)).not.toThrow();
    }
    const truth = GroundTruth.parse(JSON.parse(readFileSync(res.groundTruth, 'utf8')));
    expect(truth.stats?.records).toBe(res.stats.records);
    expect(truth.attacks.map((a) => a.id)).toEqual(s.truth.attacks.map((a) => a.id));
  });

  it('gzips on request', async () => {
    const s = new Scenario(presetConfig('quickstart', { seed: 2, maxRecords: 2000 }));
    const res = await writeScenario(s, dir, { gzip: true });
    let total = 0;
    for (const file of Object.values(res.files)) {
      expect(file).toMatch(/\.jsonl\.gz$/);
      total += gunzipSync(readFileSync(file!)).toString('utf8').split('\n').filter(Boolean).length;
    }
    expect(total).toBe(2000);
  });
});
