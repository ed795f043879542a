import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { hubble, hubbleSchemaOnly } from '../../src/normalize/hubble';
import type { Normalizer, Outcome, StreamContext } from '../../src/normalize/normalizer';
import { intake } from '../../src/normalize/registry';
import { vpcflow, vpcflowSchemaOnly } from '../../src/normalize/vpcflow';
import { wfp, wfpSchemaOnly } from '../../src/normalize/wfp';
import { zeek, zeekSchemaOnly } from '../../src/normalize/zeek';
import { hubbleDeniedFlow } from '../../bench/telemetry';

/**
 * The fast path (src/normalize/fast.ts) and the zod schemas it stands behind must give the same
 * outcome on every record: the same events, or the same reject with the same reason. Every real
 * record of the shared recordings and the fixtures, and hostile variants of a sample of them: each
 * leaf replaced by a value at or beyond a schema bound, or removed.
 */
const SHARED = path.resolve(__dirname, '../../../shared/datasets');
const FIXTURES = path.resolve(__dirname, '../fixtures');

const lines = (text: string): string[] => text.split('\n').filter((l) => l.trim().length > 0);
const gz = (file: string): string[] => lines(gunzipSync(readFileSync(file)).toString('utf8'));
const inDir = (dir: string, ext: string): string[] =>
  readdirSync(dir)
    .filter((f) => f.endsWith(ext))
    .sort()
    .map((f) => path.join(dir, f));

const fresh = (): StreamContext => ({ state: new Map() });

/** Both implementations over one stream, each with its own stream context; the outcomes in order. */
function bothOver(stream: readonly string[], fast: Normalizer, schema: Normalizer): { fast: Outcome[]; schema: Outcome[] } {
  const a = fresh();
  const b = fresh();
  return { fast: stream.map((t) => intake(t, fast, a)), schema: stream.map((t) => intake(t, schema, b)) };
}

/** Values at and beyond the bounds of events.ts (Name, Port, EventTime, Labels) and of the IP schema. */
const HOSTILE: readonly unknown[] = [
  '',
  'a'.repeat(256),
  'a'.repeat(257),
  'x\u0000y',
  'x\u200by',
  'x\u202ey',
  'héllo',
  '日本',
  ' padded ',
  '::1',
  '::ffff:10.0.0.1',
  'fe80::1%eth0',
  '10.0.0.256',
  '010.0.0.1',
  '10.0.0',
  '445',
  ' 445',
  '1e3',
  '-1',
  '65536',
  '2024-06-10T06:13:20Z',
  '2024-06-10 06:13:20',
  '2024-13-40T99:99:99Z',
  'not a time',
  0,
  -1,
  1.5,
  65535,
  65536,
  1e300,
  -0,
  true,
  false,
  null,
  {},
  [],
  ['10.0.0.1'],
  { a: 'b' },
];

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every path to a leaf (or empty container) of a JSON value. */
function leafPaths(value: Json, prefix: (string | number)[] = []): (string | number)[][] {
  if (value === null || typeof value !== 'object') return [prefix];
  const entries: [string | number, Json][] = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  if (entries.length === 0) return [prefix];
  return entries.flatMap(([k, v]) => leafPaths(v, [...prefix, k]));
}

function withLeaf(root: Json, at: (string | number)[], replacement: unknown | typeof REMOVE): Json {
  const copy = structuredClone(root) as Record<string | number, Json>;
  let node = copy;
  for (const k of at.slice(0, -1)) node = node[k] as Record<string | number, Json>;
  const last = at[at.length - 1]!;
  if (replacement === REMOVE) {
    if (Array.isArray(node)) node.splice(last as number, 1);
    else delete node[last];
  } else node[last] = replacement as Json;
  return copy;
}
const REMOVE = Symbol('remove');

function jsonVariants(text: string): string[] {
  const root = JSON.parse(text) as Json;
  return leafPaths(root)
    .filter((p) => p.length > 0)
    .flatMap((p) => [...HOSTILE, REMOVE].map((v) => JSON.stringify(withLeaf(root, p, v))));
}

/** A few records of each distinct shape, so variants stay affordable. */
function sampleByShape(records: readonly string[], perShape: number, shapeOf: (text: string) => string): string[] {
  const seen = new Map<string, number>();
  return records.filter((r) => {
    const s = shapeOf(r);
    const n = seen.get(s) ?? 0;
    seen.set(s, n + 1);
    return n < perShape;
  });
}
const keysOf = (text: string): string => Object.keys(JSON.parse(text) as object).sort().join(',');

interface JsonFormat {
  name: string;
  fast: Normalizer;
  schema: Normalizer;
  records: () => string[];
}

const WFP_RECORDS = () => inDir(path.join(SHARED, 'otrf-lateral-movement'), '.jsonl.gz').flatMap(gz);
const ZEEK_RECORDS = () => inDir(path.join(SHARED, 'otrf-apt29-zeek'), '.log.gz').flatMap(gz);
const HUBBLE_RECORDS = () => [
  ...lines(readFileSync(path.join(FIXTURES, 'hubble/exporter-output.jsonl'), 'utf8')),
  ...Array.from({ length: 50 }, (_, i) => hubbleDeniedFlow(i, Date.UTC(2024, 2, 1))),
];

const JSON_FORMATS: JsonFormat[] = [
  { name: 'wfp', fast: wfp, schema: wfpSchemaOnly, records: WFP_RECORDS },
  { name: 'zeek', fast: zeek, schema: zeekSchemaOnly, records: ZEEK_RECORDS },
  { name: 'hubble', fast: hubble, schema: hubbleSchemaOnly, records: HUBBLE_RECORDS },
];

describe.each(JSON_FORMATS)('fast path of $name equals its zod schema', ({ fast, schema, records }) => {
  const all = records();

  it('on every real record: same events, same rejects, same reasons', () => {
    expect(all.length).toBeGreaterThan(10);
    const out = bothOver(all, fast, schema);
    expect(out.fast.filter((o) => o.kind === 'events').length).toBeGreaterThan(0);
    expect(out.fast).toEqual(out.schema);
  });

  it('on hostile variants of every field: same verdict and same reason', () => {
    const variants = sampleByShape(all, 2, keysOf).flatMap(jsonVariants);
    expect(variants.length).toBeGreaterThan(500);
    const out = bothOver(variants, fast, schema);
    const rejected = out.schema.filter((o) => o.kind === 'reject').length;
    expect(rejected).toBeGreaterThan(variants.length / 10); // the variants do reach the schema's bounds
    for (let i = 0; i < variants.length; i++) {
      if (JSON.stringify(out.fast[i]) !== JSON.stringify(out.schema[i])) {
        expect({ record: variants[i], outcome: out.fast[i] }).toEqual({ record: variants[i], outcome: out.schema[i] });
      }
    }
  });
});

describe('fast path of vpcflow equals its zod schema', () => {
  const streams = inDir(path.join(FIXTURES, 'vpcflow'), '.txt').map((f) => lines(readFileSync(f, 'utf8')));
  const TOKENS = ['-', '', '0', '-1', '65536', '1.5', '10.0.0.256', '::1', 'abc', '2147483648', '99999999999', 'ACCEPT', 'REJECT', 'OK', 'NODATA', 'SKIPDATA', 'x'.repeat(300), 'é'];

  it('on every fixture stream, headers included', () => {
    for (const stream of streams) {
      const out = bothOver(stream, vpcflow, vpcflowSchemaOnly);
      expect(out.fast).toEqual(out.schema);
    }
  });

  it('on every field of every record replaced by a hostile token, and with one field fewer or more', () => {
    let compared = 0;
    for (const stream of streams) {
      const [first, ...rest] = stream;
      const header = /^[a-z]/.test(first!) ? [first!] : [];
      const body = header.length ? rest : stream;
      for (const line of body.slice(0, 3)) {
        const fields = line.split(' ');
        const variants = [
          ...fields.flatMap((_, i) => TOKENS.map((t) => fields.map((f, j) => (j === i ? t : f)).join(' '))),
          fields.slice(0, -1).join(' '),
          [...fields, 'extra'].join(' '),
        ];
        for (const v of variants) {
          const out = bothOver([...header, v], vpcflow, vpcflowSchemaOnly);
          expect({ record: v, outcome: out.fast }).toEqual({ record: v, outcome: out.schema });
          compared++;
        }
      }
    }
    expect(compared).toBeGreaterThan(200);
  });
});
