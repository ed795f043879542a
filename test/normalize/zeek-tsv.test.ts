import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { Flow } from '../../src/events';
import type { Outcome, StreamContext } from '../../src/normalize/normalizer';
import { intake, normalizeRecord } from '../../src/normalize/registry';
import { zeek, zeekSchemaOnly } from '../../src/normalize/zeek';

const FIXTURE = path.resolve(__dirname, '../fixtures/zeek/conn-zed-sample.log');
const APT29 = path.resolve(__dirname, '../../../shared/datasets/otrf-apt29-zeek');

const ctx = (): StreamContext => ({ state: new Map() });
const lines = (text: string): string[] => text.split('\n').filter((l) => l.length > 0);
const over = (stream: readonly string[], format: 'zeek' | 'auto' = 'zeek'): Outcome[] => {
  const c = ctx();
  return stream.map((l) => normalizeRecord(l, format, c));
};
const reason = (o: Outcome | undefined): string => (o && o.kind !== 'events' ? o.reason : `events: ${JSON.stringify(o)}`);

/** Zeek's own header for a conn.log with the columns given (types as Zeek declares them). */
const TYPES: Record<string, string> = {
  ts: 'time',
  uid: 'string',
  'id.orig_h': 'addr',
  'id.orig_p': 'port',
  'id.resp_h': 'addr',
  'id.resp_p': 'port',
  proto: 'enum',
  duration: 'interval',
  conn_state: 'string',
  history: 'string',
};
const COLUMNS = Object.keys(TYPES);
function headerFor(columns: readonly string[] = COLUMNS, sep = '\t'): string[] {
  return [
    `#separator \\x${sep.charCodeAt(0).toString(16).padStart(2, '0')}`,
    `#set_separator${sep},`,
    `#empty_field${sep}(empty)`,
    `#unset_field${sep}-`,
    `#path${sep}conn`,
    `#fields${sep}${columns.join(sep)}`,
    `#types${sep}${columns.map((c) => TYPES[c]).join(sep)}`,
  ];
}
const row = (values: Record<string, string>, columns = COLUMNS, sep = '\t'): string =>
  columns.map((c) => values[c] ?? '-').join(sep);
const BASE = {
  ts: '1521911721.255387',
  uid: 'CabcDEF123',
  'id.orig_h': '10.0.0.5',
  'id.orig_p': '50123',
  'id.resp_h': '10.0.0.9',
  'id.resp_p': '445',
  proto: 'tcp',
  duration: '0.004266',
  conn_state: 'REJ',
  history: 'Sr',
};

describe('zeek TSV: the vendor sample (Brim zed-sample-data conn.log)', () => {
  const stream = lines(readFileSync(FIXTURE, 'utf8'));

  test('header lines are skipped, the record is the flow Zeek logged', () => {
    const out = over(stream);
    expect(out.slice(0, -1).every((o) => o.kind === 'skip')).toBe(true);
    const last = out[out.length - 1]!;
    expect(last).toEqual({
      kind: 'events',
      events: [
        {
          id: 'zeek:C8Tful1TvM3Zf5x8fl',
          time: 1521911721255,
          src: { ip: '10.164.94.120', port: 39681 },
          dst: { ip: '10.47.3.155', port: 3389 },
          protocol: 'tcp',
          dstPort: 3389,
          action: 'allowed', // RSTR: the handshake completed, then the responder reset
          observer: { type: 'zeek', name: 'zeek' },
          connState: 'RSTR',
        },
      ],
    });
  });

  test('format auto reads the same stream (the header tells Zeek TSV from other text)', () => {
    expect(over(stream, 'auto')).toEqual(over(stream));
  });

  test('before this change a TSV record was "malformed JSON"; now the reason says what is missing', () => {
    const o = normalizeRecord(stream[stream.length - 1]!, 'zeek', ctx());
    expect(reason(o)).toBe('zeek: not JSON, and no Zeek TSV #fields / #types header before it on this stream');
  });
});

describe('zeek TSV: the APT29 JSON recordings, written as TSV, give the same flows', () => {
  const files = readdirSync(APT29).filter((f) => f.endsWith('.gz')).sort();
  const json = files.flatMap((f) => lines(gunzipSync(readFileSync(path.join(APT29, f))).toString('utf8')));

  test('every record: the same outcome as its JSON form (observer aside: TSV has no @system)', () => {
    const columns = ['ts', 'uid', 'id.orig_h', 'id.orig_p', 'id.resp_h', 'id.resp_p', 'proto', 'conn_state', 'service'];
    const types = ['time', 'string', 'addr', 'port', 'addr', 'port', 'enum', 'string', 'string'];
    const tsv = [
      '#separator \\x09',
      '#fields\t' + columns.join('\t'),
      '#types\t' + types.join('\t'),
      ...json.map((l) => {
        const r = JSON.parse(l) as Record<string, unknown>;
        return columns.map((c) => String(r[c.replace('.', '_')] ?? '-')).join('\t');
      }),
    ];
    const fromTsv = over(tsv).slice(3);
    const fromJson = json.map((l) => normalizeRecord(l, 'zeek', ctx()));
    const strip = (o: Outcome) =>
      o.kind === 'events' ? { kind: o.kind, events: o.events.map((e) => ({ ...(e as Flow), observer: undefined })) } : o;
    expect(fromTsv.map(strip)).toEqual(fromJson.map(strip));
    expect(fromTsv.filter((o) => o.kind === 'events' && (o.events[0] as Flow).action === 'denied').length).toBeGreaterThan(10);
  });
});

describe('zeek TSV: unset, empty and typed columns', () => {
  const one = (values: Record<string, string>): Outcome => over([...headerFor(), row(values)]).at(-1)!;

  test('REJ is a denial; the interval column is not read, the time column to the millisecond', () => {
    const o = one(BASE);
    expect(o.kind).toBe('events');
    const f = (o as { events: Flow[] }).events[0]!;
    expect(f).toMatchObject({ action: 'denied', time: 1521911721255, policy: { id: 'zeek:REJ' }, dstPort: 445 });
  });

  test('an unset conn_state ("-") is a skip, as in JSON where the key is absent', () => {
    expect(one({ ...BASE, conn_state: '-' })).toEqual({ kind: 'skip', reason: 'zeek: no conn_state' });
  });

  test('an unset or empty column a flow needs is a reject naming it', () => {
    expect(reason(one({ ...BASE, ts: '-' }))).toMatch(/^zeek: ts: /);
    expect(reason(one({ ...BASE, proto: '(empty)' }))).toMatch(/^zeek: proto: /);
    expect(reason(one({ ...BASE, 'id.resp_p': '(empty)' }))).toMatch(/^zeek: id\.resp_p: /);
  });

  test('values the column type refuses are rejects naming the field', () => {
    expect(reason(one({ ...BASE, ts: '2018-03-24 17:15:21' }))).toMatch(/^zeek: ts: /);
    expect(reason(one({ ...BASE, 'id.orig_p': '70000' }))).toMatch(/^zeek: id\.orig_p: /);
    expect(reason(one({ ...BASE, 'id.orig_h': '10.0.0.256' }))).toMatch(/^zeek: id\.orig_h: /);
    expect(reason(one({ ...BASE, uid: 'a\\x00b' }))).toMatch(/^zeek: uid: /); // Zeek's escape of a NUL byte
  });

  test('a header with another separator (#separator \\x2c) is honoured', () => {
    const out = over([...headerFor(COLUMNS, ','), row(BASE, COLUMNS, ',')]);
    expect(out.at(-1)).toMatchObject({ kind: 'events', events: [{ action: 'denied', src: { ip: '10.0.0.5' } }] });
  });

  test('headers are per stream: another stream has none', () => {
    const a = ctx();
    for (const l of headerFor()) normalizeRecord(l, 'zeek', a);
    expect(normalizeRecord(row(BASE), 'zeek', a).kind).toBe('events');
    expect(reason(normalizeRecord(row(BASE), 'zeek', ctx()))).toMatch(/no Zeek TSV #fields/);
  });

  test('a record of another log (#path dns) is skipped', () => {
    const header = headerFor().map((l) => (l === '#path\tconn' ? '#path\tdns' : l));
    expect(over([...header, row(BASE)]).at(-1)).toEqual({ kind: 'skip', reason: 'zeek: a record of "dns", not of conn.log' });
  });
});

describe('zeek TSV: hostile headers and records are refused with the reason', () => {
  const at = (stream: string[], i = -1): string => reason(over(stream).at(i));

  test('a record with more or fewer fields than #fields', () => {
    expect(at([...headerFor(), row(BASE) + '\textra'])).toBe(`zeek: expected ${COLUMNS.length} fields (the #fields header), got ${COLUMNS.length + 1}`);
    expect(at([...headerFor(), 'only\ttwo'])).toBe(`zeek: expected ${COLUMNS.length} fields (the #fields header), got 2`);
  });

  test('#types that does not match #fields, or types a read column otherwise', () => {
    const h = headerFor();
    expect(at([...h.slice(0, -1), '#types\ttime\tstring'])).toBe(`zeek: #types: 2 types for ${COLUMNS.length} fields`);
    const wrongTs = h[h.length - 1]!.replace('#types\ttime', '#types\tstring');
    expect(at([...h.slice(0, -1), wrongTs])).toBe('zeek: #types: ts: expected time, got "string"');
    expect(at(['#types\ttime'])).toBe('zeek: #types: no #fields line before it');
  });

  test('#fields that lacks a column a flow needs, names one twice, or holds too many', () => {
    const cols = COLUMNS.filter((c) => c !== 'id.resp_p');
    expect(at(headerFor(cols))).toBe('zeek: #fields: lacks id.resp_p, so its records cannot give flows');
    expect(at(['#fields\tts\tts'])).toBe('zeek: #fields: names a field twice');
    const many = Array.from({ length: 257 }, (_, i) => `f${i}`);
    expect(at([`#fields\t${many.join('\t')}`])).toBe('zeek: #fields: expected 1..256 field names, got 257');
    // the records after a refused header are refused too: no header stands
    expect(at([...headerFor(cols), row(BASE, cols)])).toMatch(/no Zeek TSV #fields/);
  });

  test('an oversize header value, an unknown directive', () => {
    expect(at([`#unset_field\t${'x'.repeat(33)}`])).toMatch(/^zeek: #unset_field: expected 1\.\.32 characters/);
    expect(at(['#separator '])).toMatch(/^zeek: #separator: expected 1\.\.32 characters/);
    expect(at(['#bogus\tx'])).toBe('zeek: unknown TSV header line "#bogus\\tx"');
  });
});

describe('zeek TSV: the fast path gives the zod schema outcome', () => {
  const TOKENS = ['-', '(empty)', '', '0', '-1', '65536', '1.5', '1e3', '10.0.0.256', '::1', '::ffff:10.0.0.1', 'abc', 'x'.repeat(300), 'é', 'a\\x00b', '99999999999999', 'tcp', 'S0'];

  test('on every column of a record replaced by a hostile token', () => {
    const fresh = (): StreamContext => ({ state: new Map() });
    let compared = 0;
    for (const col of COLUMNS) {
      for (const t of TOKENS) {
        const stream = [...headerFor(), row({ ...BASE, [col]: t })];
        const a = fresh();
        const b = fresh();
        const fast = stream.map((l) => intake(l, zeek, a)).at(-1);
        const schema = stream.map((l) => intake(l, zeekSchemaOnly, b)).at(-1);
        expect({ col, t, o: fast }).toEqual({ col, t, o: schema });
        compared++;
      }
    }
    expect(compared).toBe(COLUMNS.length * TOKENS.length);
  });
});
