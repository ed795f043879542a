import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { entityKey, isFlow, subjectKey, type CordonEvent } from '../../src/events';
import type { Format, StreamContext } from '../../src/normalize/normalizer';
import { normalizeRecord } from '../../src/normalize/registry';
import { presetConfig } from '../../src/simulate/presets';
import { Scenario, type Expect, type SimRecord } from '../../src/simulate/scenario';

/**
 * The generator writes the vendors' real shapes: every record goes through the production
 * normalizers without a reject, as the generator intended it (denied, allowed, anomaly, skip),
 * with the format given and with `auto` detection.
 */

const DATASETS = join(__dirname, '..', '..', '..', 'shared', 'datasets');

function outcomeOf(r: SimRecord, format: Format | 'auto', ctx: StreamContext): { got: Expect | 'reject'; events: CordonEvent[]; reason?: string } {
  const o = normalizeRecord(r.text, format, ctx);
  if (o.kind === 'reject') return { got: 'reject', events: [], reason: o.reason };
  if (o.kind === 'skip') return { got: 'skip', events: [] };
  const e = o.events[0]!;
  return { got: isFlow(e) ? e.action : 'anomaly', events: o.events };
}

describe.each([
  ['small', 1],
  ['small', 2],
  ['quickstart', 3],
] as const)('%s scenario, seed %d, through the normalizers', (preset, seed) => {
  const s = new Scenario(presetConfig(preset, { seed }));
  const records = [...s.records()];

  it('every record normalizes without a reject, as intended, in each format', () => {
    const ctx: StreamContext = { state: new Map() };
    const intended: Record<string, number> = {};
    const got: Record<string, number> = {};
    const rejects: string[] = [];
    for (const r of records) {
      const o = outcomeOf(r, r.format, ctx);
      if (o.got === 'reject') rejects.push(`${r.format}: ${o.reason} :: ${r.text.slice(0, 160)}`);
      intended[`${r.format}:${r.expect}`] = (intended[`${r.format}:${r.expect}`] ?? 0) + 1;
      got[`${r.format}:${o.got}`] = (got[`${r.format}:${o.got}`] ?? 0) + 1;
      if (o.got !== r.expect && rejects.length < 20) rejects.push(`${r.format}: expected ${r.expect}, got ${o.got} :: ${r.text.slice(0, 160)}`);
    }
    expect(rejects).toEqual([]);
    expect(got).toEqual(intended);
    for (const f of ['wfp', 'hubble', 'calico', 'zeek']) {
      expect(intended[`${f}:denied`]).toBeGreaterThan(0);
      if (f !== 'calico') expect(intended[`${f}:allowed`]).toBeGreaterThan(0);
    }
    expect(intended['cordon:anomaly']).toBeGreaterThan(0);
  });

  it('auto-detects the format of every record', () => {
    const ctx: StreamContext = { state: new Map() };
    const wrong: string[] = [];
    for (const r of records) {
      const o = outcomeOf(r, 'auto', ctx);
      if (o.got !== r.expect) wrong.push(`${r.format}: expected ${r.expect}, got ${o.got} ${o.reason ?? ''}`);
    }
    expect(wrong.slice(0, 10)).toEqual([]);
  });

  it('normalized times follow the stream order, and the Kafka key is the flow source', () => {
    const ctx: StreamContext = { state: new Map() };
    let last = -Infinity;
    for (const r of records) {
      const o = outcomeOf(r, r.format, ctx);
      for (const e of o.events) {
        expect(e.time).toBe(r.time);
        expect(e.time).toBeGreaterThanOrEqual(last);
        last = e.time;
      }
    }
  });

  it('names an attacker the same way in its anomalies and in its denied flows', () => {
    const ctx: StreamContext = { state: new Map() };
    for (const a of s.truth.attacks.filter((x) => x.anomalies)) {
      const mine = records.filter((r) => r.attackId === a.id);
      const anomalyKeys = new Set<string>();
      const flowKeys = new Set<string>();
      for (const r of mine) {
        for (const e of outcomeOf(r, r.format, ctx).events) {
          if (!isFlow(e)) anomalyKeys.add(subjectKey(e));
          else if (e.action === 'denied' && (e.src.ip === a.root.ip || e.src.workload?.name === a.root.name)) flowKeys.add(entityKey(e.src));
        }
      }
      expect(anomalyKeys.size).toBeGreaterThan(0);
      for (const k of anomalyKeys) {
        if (k.startsWith('pod:')) expect(flowKeys.has(k) || a.compromised.some((c) => k === `pod:${c.namespace}/${c.name}`)).toBe(true);
        else expect(a.compromised.some((c) => k === `ip:${c.ip}`)).toBe(true);
      }
    }
  });
});

describe('vendor shapes match the recordings', () => {
  const s = new Scenario(presetConfig('small', { seed: 1, maxRecords: 8000 }));
  const records = [...s.records()];
  const first = (format: string, expect: Expect) => JSON.parse(records.find((r) => r.format === format && r.expect === expect)!.text) as Record<string, unknown>;

  const haveData = existsSync(join(DATASETS, 'otrf-lateral-movement'));
  (haveData ? it : it.skip)('WFP 5156/5157 carry the field set, order and value types of the NXLog records', () => {
    const lines = gunzipSync(readFileSync(join(DATASETS, 'otrf-lateral-movement', 'covenant_sharpsc_create_dcerpc_smb_svcctl.jsonl.gz')))
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const [eid, expect_] of [
      [5157, 'denied'],
      [5156, 'allowed'],
    ] as const) {
      const real = lines.find((l) => l.EventID === eid && 'tags' in l)!;
      const mine = first('wfp', expect_);
      expect(Object.keys(mine)).toEqual(Object.keys(real));
      for (const k of Object.keys(real)) expect(`${k}:${typeof mine[k]}`).toBe(`${k}:${typeof real[k]}`);
      expect(String(mine.Message).split('\r\n').length).toBe(String(real.Message).split('\r\n').length);
    }
    const raw = records.find((r) => r.format === 'wfp' && r.expect === 'denied')!.text;
    expect(raw).toMatch(/"Keywords":-9218868437227405312,/);
  });

  (haveData ? it : it.skip)('Zeek conn records use the recordings field names in Zeek column order', () => {
    const real = gunzipSync(readFileSync(join(DATASETS, 'otrf-apt29-zeek', 'day2__zeek__individual_zeek_logs__UTICA-A_conn.log.gz')))
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => Object.keys(JSON.parse(l) as object));
    const order = real.reduce((a, b) => (b.length > a.length ? b : a));
    for (const r of records.filter((x) => x.format === 'zeek').slice(0, 500)) {
      const keys = Object.keys(JSON.parse(r.text) as object);
      const positions = keys.map((k) => order.indexOf(k));
      expect(positions.every((p) => p >= 0)).toBe(true);
      expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    }
  });

  it('Hubble drops are policy drops with pod identities; Calico denials keep names, allows are aggregated', () => {
    const drop = first('hubble', 'denied') as { flow: Record<string, unknown>; node_name: string; time: string };
    expect(drop.flow.verdict).toBe('DROPPED');
    expect(drop.flow.drop_reason_desc).toBe('POLICY_DENIED');
    expect(drop.flow.drop_reason).toBe(133);
    expect(drop.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    const deny = first('calico', 'denied');
    expect(deny.action).toBe('deny');
    expect(deny.source_ip).not.toBeNull();
    expect(deny.source_name).not.toBe('-');
    const allow = first('calico', 'skip');
    expect(allow.action).toBe('allow');
    expect(allow.source_ip).toBeNull();
    expect(String(allow.source_name_aggr)).toMatch(/\*$/);
    expect((deny.end_time as number) - (deny.start_time as number)).toBe(300);
  });
});
