import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { CordonEvent } from '../../src/events';
import type { Incident } from '../../src/correlate/incident';
import type { Format } from '../../src/normalize/normalizer';
import { normalizeRecord } from '../../src/normalize/registry';

/** The OTRF recordings, read in place from ../shared/datasets (never copied into the repo). */
export const DATASETS = resolve(__dirname, '../../../shared/datasets');
export const OTRF = join(DATASETS, 'otrf-lateral-movement');
export const ZEEK = join(DATASETS, 'otrf-apt29-zeek');
export const available = existsSync(OTRF) && existsSync(ZEEK);

export function load(file: string, format: Format): CordonEvent[] {
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

function csv(file: string): Record<string, string>[] {
  const [header, ...rows] = readFileSync(file, 'utf8').trim().split(/\r?\n/);
  const cols = (header as string).split(',').map((c) => c.trim());
  return rows.map((row) => {
    const cells = row.split(',').map((c) => c.trim());
    return Object.fromEntries(cols.map((c, i) => [c, cells[i] ?? '']));
  });
}

export interface LateralTruth {
  dataset: string;
  attacker: string;
  victim: string;
  denied: number;
  /** Event time of the first attacker-to-victim flow (NaN when none). */
  firstAttack: number;
  /** Sources of the denied pairs (`src>dst:port`). */
  deniedSources: string[];
}

/** ground-truth.csv of the lateral-movement recordings. */
export function lateralTruth(): LateralTruth[] {
  return csv(join(OTRF, 'ground-truth.csv')).map((r) => ({
    dataset: r.dataset as string,
    attacker: r.attacker_ip as string,
    victim: r.victim_ip as string,
    denied: Number(r.denied_flows),
    firstAttack: Date.parse(r.first_attacker_flow as string),
    deniedSources: (r.denied_pairs as string).split(/[ ;|]/).flatMap((p) => /^([^>]+)>/.exec(p)?.[1] ?? []),
  }));
}

export function lateralEvents(dataset: string): CordonEvent[] {
  return load(join(OTRF, `${dataset}.jsonl.gz`), 'wfp');
}

export interface Apt29Step {
  scenario: string;
  step: string;
  src: string;
  dst: string;
  ports: number[];
}

export function apt29Steps(): Apt29Step[] {
  return csv(join(ZEEK, 'apt29_lm_groundtruth.csv')).map((r) => ({
    scenario: r.scenario as string,
    step: r.step as string,
    src: r.src_ip as string,
    dst: r.dst_ip as string,
    ports: (r.dport as string).split('|').map(Number),
  }));
}

/** The Zeek conn.logs of the given days, one connection seen by two sensors kept once. */
export function apt29Events(days: readonly string[]): CordonEvent[] {
  const files = readdirSync(ZEEK).filter((f) => f.endsWith('.gz') && days.some((d) => f.startsWith(d))).sort();
  const seen = new Set<string>();
  return files
    .flatMap((f) => load(join(ZEEK, f), 'zeek'))
    .filter((e) => {
      const k = 'src' in e ? `${e.time}|${e.src.ip}:${e.src.port}>${e.dst.ip}:${e.dstPort}/${e.protocol}` : e.id;
      return !seen.has(k) && seen.add(k);
    });
}

export const entityOf = (inc: Incident, key: string) => inc.entities.find((e) => e.key === key);
export const rootIp = (inc: Incident) => entityOf(inc, inc.root)?.ip;
/** The incident's edges as `src>dst` addresses with their ports. */
export function edgesOf(inc: Incident): { from: string; to: string; ports: number[] }[] {
  return inc.path.edges.map((e) => ({ from: entityOf(inc, e.from)?.ip ?? e.from, to: entityOf(inc, e.to)?.ip ?? e.to, ports: e.ports }));
}
