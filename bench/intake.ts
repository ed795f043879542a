/**
 * `npm run bench:intake`: per-record CPU cost of intake, in-process, for the Hubble, WFP, VPC flow
 * log and Zeek paths. For each set of records, per record:
 *   - JSON.parse alone;
 *   - intake beyond the parse (`intake` of src/normalize/registry.ts: size and encoding checks,
 *     the depth and forbidden-key guards of parseJson, the normalizer), as the JSON.parse time
 *     subtracted from the whole, with the zod-only normalizer ("before") and the fast path
 *     ("after"), measured in the same run;
 *   - of which the guards (parseJson minus JSON.parse).
 * Target: ≤ 4 µs per record beyond the JSON parse.
 *
 * CPU time of this process (process.cpuUsage), not wall clock: other processes may share the
 * cores. Warm-up rounds first, then the median of the timed rounds; the methods take turns
 * within each round so drift hits them alike.
 *
 * Records: the OTRF recordings in ../shared/datasets (WFP, Zeek), read in place; Hubble and VPC
 * flow logs have none there, so the repo's fixtures (test/fixtures) and the 1 KB Hubble denial of
 * the ingest benchmark (bench/telemetry.ts) stand in.
 *   BENCH_ROUNDS (9), BENCH_WARMUP (3), BENCH_RECORDS_PER_ROUND (20000), CORDON_DATASETS.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { hubble, hubbleSchemaOnly } from '../src/normalize/hubble';
import type { Normalizer, StreamContext } from '../src/normalize/normalizer';
import { intake } from '../src/normalize/registry';
import { vpcflow, vpcflowSchemaOnly } from '../src/normalize/vpcflow';
import { wfp, wfpSchemaOnly } from '../src/normalize/wfp';
import { zeek, zeekSchemaOnly } from '../src/normalize/zeek';
import { parseJson } from '../src/validation';
import { hubbleDeniedFlow } from './telemetry';

const TARGET_US = 4;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 3);
const PER_ROUND = Number(process.env.BENCH_RECORDS_PER_ROUND ?? 20_000);
const ROOT = path.resolve(__dirname, '../..');
const DATASETS = process.env.CORDON_DATASETS ?? path.resolve(ROOT, '../shared/datasets');
const FIXTURES = path.join(ROOT, 'test/fixtures');

/** Records of one stream, in order (a VPC header applies to the lines after it). */
type Stream = readonly string[];

interface RecordSet {
  name: string;
  streams: Stream[];
}

interface Format {
  name: string;
  json: boolean;
  before: Normalizer;
  after: Normalizer;
  sets: RecordSet[];
}

const lines = (text: string): string[] => text.split('\n').filter((l) => l.trim().length > 0);
const gz = (file: string): string[] => lines(gunzipSync(readFileSync(file)).toString('utf8'));
const files = (dir: string, ext: string): string[] =>
  readdirSync(dir)
    .filter((f) => f.endsWith(ext))
    .sort()
    .map((f) => path.join(dir, f));

function wfpSets(): RecordSet[] {
  const all = files(path.join(DATASETS, 'otrf-lateral-movement'), '.jsonl.gz').flatMap(gz);
  const kind = (l: string): string => {
    const j = JSON.parse(l) as { EventID?: unknown; SourceName?: unknown };
    return j.SourceName === 'Microsoft-Windows-Sysmon' ? `Sysmon ${j.EventID}` : `Security ${j.EventID}`;
  };
  const by = (k: string): RecordSet => ({ name: `OTRF ${k}`, streams: [all.filter((l) => kind(l) === k)] });
  return [{ name: 'OTRF lateral movement, all', streams: [all] }, by('Security 5156'), by('Security 5157'), by('Sysmon 3')];
}

function zeekSets(): RecordSet[] {
  const all = files(path.join(DATASETS, 'otrf-apt29-zeek'), '.log.gz').flatMap(gz);
  return [{ name: 'OTRF APT29 conn.log, all', streams: [all] }];
}

function hubbleSets(): RecordSet[] {
  const start = Date.UTC(2024, 2, 1);
  return [
    { name: '1 KB policy denial (bench:ingest)', streams: [Array.from({ length: 1000 }, (_, i) => hubbleDeniedFlow(i, start))] },
    { name: 'fixtures (test/fixtures/hubble)', streams: [lines(readFileSync(path.join(FIXTURES, 'hubble/exporter-output.jsonl'), 'utf8'))] },
  ];
}

function vpcSets(): RecordSet[] {
  const streams = files(path.join(FIXTURES, 'vpcflow'), '.txt').map((f) => lines(readFileSync(f, 'utf8')));
  return [{ name: 'fixtures (test/fixtures/vpcflow)', streams }];
}

const count = (s: RecordSet): number => s.streams.reduce((n, st) => n + st.length, 0);
const bytes = (s: RecordSet): number => s.streams.reduce((n, st) => n + st.reduce((m, l) => m + Buffer.byteLength(l), 0), 0);

let sink = 0;

/** CPU µs per record of `each` over the set, repeated to about PER_ROUND records. */
function cpuPerRecord(set: RecordSet, each: (text: string, ctx: StreamContext) => number): number {
  const n = count(set);
  const reps = Math.max(1, Math.round(PER_ROUND / n));
  const t0 = process.cpuUsage();
  for (let r = 0; r < reps; r++) {
    for (const stream of set.streams) {
      const ctx: StreamContext = { state: new Map() };
      for (const text of stream) sink += each(text, ctx);
    }
  }
  const t = process.cpuUsage(t0);
  return (t.user + t.system) / (reps * n);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

interface Row {
  set: string;
  records: number;
  bytes: number;
  parse: number;
  guards: number;
  before: number;
  after: number;
}

function measure(format: Format, set: RecordSet): Row {
  const kinds = (n: Normalizer) => (text: string, ctx: StreamContext) => intake(text, n, ctx).kind.length;
  const methods: Record<string, (text: string, ctx: StreamContext) => number> = {
    parse: format.json ? (text) => (JSON.parse(text) === null ? 0 : 1) : () => 0,
    parseJson: format.json ? (text) => (parseJson(text).ok ? 1 : 0) : () => 0,
    before: kinds(format.before),
    after: kinds(format.after),
  };
  const samples: Record<string, number[]> = { parse: [], parseJson: [], before: [], after: [] };
  for (let round = 0; round < WARMUP + ROUNDS; round++) {
    for (const [name, fn] of Object.entries(methods)) {
      const us = cpuPerRecord(set, fn);
      if (round >= WARMUP) samples[name]!.push(us);
    }
  }
  const parse = format.json ? median(samples.parse!) : 0;
  return {
    set: set.name,
    records: count(set),
    bytes: Math.round(bytes(set) / count(set)),
    parse,
    guards: format.json ? Math.max(0, median(samples.parseJson!) - parse) : 0,
    before: median(samples.before!) - parse,
    after: median(samples.after!) - parse,
  };
}

const us = (x: number): string => x.toFixed(2);

function table(format: Format, rows: Row[]): string {
  const head = ['set', 'records', 'bytes', 'JSON.parse µs', 'zod: beyond parse µs', 'fast: beyond parse µs', 'of which guards µs', 'speed-up', `target ≤ ${TARGET_US} µs`];
  const body = rows.map((r) => [
    r.set,
    String(r.records),
    String(r.bytes),
    format.json ? us(r.parse) : 'n/a (text)',
    us(r.before),
    us(r.after),
    format.json ? us(r.guards) : 'n/a',
    `${(r.before / r.after).toFixed(1)}x`,
    r.after <= TARGET_US ? 'met' : 'NOT met',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

function main(): void {
  const formats: Format[] = [
    { name: 'hubble', json: true, before: hubbleSchemaOnly, after: hubble, sets: hubbleSets() },
    { name: 'wfp', json: true, before: wfpSchemaOnly, after: wfp, sets: wfpSets() },
    { name: 'vpcflow', json: false, before: vpcflowSchemaOnly, after: vpcflow, sets: vpcSets() },
    { name: 'zeek', json: true, before: zeekSchemaOnly, after: zeek, sets: zeekSets() },
  ];
  console.log(
    `bench:intake  node ${process.version}  ${ROUNDS} rounds (median) after ${WARMUP} warm-up, ~${PER_ROUND} records a round; CPU time (process.cpuUsage)`,
  );
  for (const format of formats) {
    const rows = format.sets.map((set) => measure(format, set));
    console.log(`\n${format.name}\n${table(format, rows)}`);
  }
  if (sink === 42) console.log(''); // keeps the results alive
}

main();
