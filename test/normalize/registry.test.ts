import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { FORMATS, type Format, type Outcome, type StreamContext } from '../../src/normalize/normalizer';
import { DEFAULT_MAX_RECORD_BYTES, detectFormat, normalizeRecord, normalizerFor } from '../../src/normalize/registry';
import { parseJson } from '../../src/validation';

const SHARED = path.resolve(__dirname, '../../../shared/datasets');
const FIXTURES = path.resolve(__dirname, '../fixtures');
const firstLine = (file: string, pred: (l: string) => boolean = () => true): string =>
  gunzipSync(readFileSync(file)).toString('utf8').split('\n').find((l) => l.length > 0 && pred(l))!;
const fixtureLines = (file: string) => readFileSync(path.join(FIXTURES, file), 'utf8').split('\n').filter((l) => l.length > 0);

/** One real record of each format (sources: see the per-format tests). */
const SAMPLES: Record<Format, string> = {
  wfp: firstLine(path.join(SHARED, 'otrf-lateral-movement/covenant_sc_query_dcerpc_smb_svcctl.jsonl.gz'), (l) => l.includes('"EventID":5157')),
  zeek: firstLine(path.join(SHARED, 'otrf-apt29-zeek/day1__zeek__individual_zeek_logs__SCRANTON_conn.log.gz')),
  hubble: fixtureLines('hubble/exporter-output.jsonl')[1]!,
  calico: fixtureLines('calico/flows-log-deny.jsonl')[0]!,
  vpcflow: fixtureLines('vpcflow/default-format.txt')[1]!,
  illumio: JSON.stringify((JSON.parse(readFileSync(path.join(FIXTURES, 'illumio/traffic_query_response.json'), 'utf8')) as unknown[])[0]),
  ocsf: fixtureLines('ocsf/security-lake-vpc-flow.jsonl')[0]!,
  cordon: JSON.stringify({
    id: 'sensor:1',
    time: '2024-06-10T06:13:20Z',
    src: { ip: '10.0.1.5' },
    dst: { ip: '10.0.2.7' },
    protocol: 'tcp',
    dstPort: 445,
    action: 'denied',
    observer: { type: 'sensor', name: 'n1' },
  }),
};

const ctx = (): StreamContext => ({ state: new Map() });
const auto = (text: string, c: StreamContext = ctx()): Outcome => normalizeRecord(text, 'auto', c);

function rejectReason(o: Outcome): string {
  if (o.kind !== 'reject') throw new Error(`expected a reject, got ${JSON.stringify(o).slice(0, 300)}`);
  return o.reason;
}

const PROTOTYPE_KEYS = Object.getOwnPropertyNames(Object.prototype).sort();

describe('registry: formats and detection', () => {
  it('has a normalizer for every format, under its own name', () => {
    for (const f of FORMATS) expect(normalizerFor(f).format).toBe(f);
  });

  test.each(FORMATS.map((f) => [f] as const))('auto-detects one real %s record and normalizes it as that format', (format) => {
    const text = SAMPLES[format];
    const parsed = parseJson(text);
    const record = format === 'vpcflow' ? { text } : { text, json: parsed.ok ? parsed.value : undefined };
    expect(detectFormat(record)).toBe(format);
    const viaAuto = auto(text);
    expect(viaAuto.kind).toBe('events');
    expect(viaAuto).toEqual(normalizeRecord(text, format, ctx()));
  });

  it('auto-detects a VPC flow log header and reads the following records by it', () => {
    const c = ctx();
    const [header, ...records] = fixtureLines('vpcflow/custom-traffic-path.txt');
    expect(auto(header!, c).kind).toBe('skip');
    const o = auto(records[0]!, c);
    expect(o.kind === 'events' && o.events[0]).toMatchObject({ dst: { workload: { kind: 'vm', id: 'i-0c50d5961bcb2d47b' } } });
  });
});

describe('registry: what is refused before or instead of a normalizer', () => {
  it('an unknown or undetectable format', () => {
    expect(rejectReason(auto('{"hello":"world","n":1}'))).toBe('unknown format: a JSON object no normalizer recognizes (keys: "hello", "n")');
    expect(rejectReason(auto('hello world'))).toMatch(/^unknown format: text no normalizer recognizes/);
    expect(rejectReason(auto('[{"flow":{}}]'))).toBe('unknown format: a JSON array (send one record per message)');
    expect(rejectReason(auto('42'))).toMatch(/^unknown format/);
    expect(rejectReason(normalizeRecord('{}', 'syslog' as Format, ctx()))).toMatch(/^unknown format: "syslog" is not one of wfp, /);
    expect(rejectReason(normalizeRecord('{}', 'constructor' as Format, ctx()))).toMatch(/^unknown format/);
  });

  it('oversize text, before parsing; the limit is configurable', () => {
    const big = `{"pad":"${'x'.repeat(DEFAULT_MAX_RECORD_BYTES)}"}`;
    expect(rejectReason(auto(big))).toMatch(/^too large/);
    expect(rejectReason(normalizeRecord(SAMPLES.hubble, 'hubble', ctx(), { maxBytes: 100 }))).toMatch(/^too large/);
    // Under the limit in characters, over it in UTF-8 bytes (3 bytes per character).
    const wide = '€'.repeat(Math.floor(DEFAULT_MAX_RECORD_BYTES / 2));
    expect(rejectReason(auto(wide))).toMatch(/^too large: \d+ bytes, the limit is 1048576$/);
    // Oversize malformed JSON is refused for its size: the parser never saw it.
    expect(rejectReason(auto(`{${'"a":1,'.repeat(200_000)}`))).toMatch(/^too large/);
  });

  it('binary garbage and invalid UTF-8', () => {
    const garbage = randomBytes(4096).toString('utf8');
    expect(rejectReason(auto(garbage))).toMatch(/^not text: /);
    const invalid = Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]).toString('utf8');
    expect(rejectReason(normalizeRecord(invalid, 'cordon', ctx()))).toBe(
      'not text: invalid UTF-8 or binary data (replacement character U+FFFD at offset 6)',
    );
  });

  it('a NUL character', () => {
    expect(rejectReason(auto(SAMPLES.cordon.replace('sensor:1', 'sensor\u00001')))).toMatch(/^not text: NUL character at offset \d+$/);
  });

  it('malformed and truncated JSON', () => {
    expect(rejectReason(auto('{"flow": }'))).toMatch(/^malformed JSON: /);
    expect(rejectReason(auto(SAMPLES.hubble.slice(0, 120)))).toMatch(/^malformed JSON: /);
    expect(rejectReason(normalizeRecord(SAMPLES.calico.slice(0, -1), 'calico', ctx()))).toMatch(/^calico: malformed JSON: /);
  });

  it('prototype-pollution keys, however written; Object.prototype is untouched afterwards', () => {
    const attempts = [
      '{"__proto__":{"polluted":true}}',
      '{"flow":{"verdict":"DROPPED","source":{"__proto__":{"polluted":true}}}}',
      '{"constructor":{"prototype":{"polluted":true}}}',
      '{"\\u005f_proto__":{"polluted":true}}',
      '{"__pro\\u0074o__":{"polluted":true}}',
      '{"a":1, "__proto__" :{"polluted":true}}',
    ];
    for (const text of attempts) {
      expect(rejectReason(auto(text))).toMatch(/forbidden key "(__proto__|constructor)" \(prototype pollution\)/);
      expect(rejectReason(normalizeRecord(text, 'hubble', ctx()))).toMatch(/^hubble: forbidden key/);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(PROTOTYPE_KEYS);
  });

  it('names with a bidi override or zero-width characters, with a readable reason', () => {
    const rlo = JSON.parse(SAMPLES.cordon) as Record<string, any>;
    rlo.observer.name = 'node\u202e1';
    expect(rejectReason(auto(JSON.stringify(rlo)))).toBe(
      'cordon: observer.name: contains control, zero-width or bidirectional-override characters',
    );
    // Every invisible / bidi control, not only U+202E: ALM, LRM, ZWJ, LS, LRI, BOM, tag characters...
    for (const c of ['\u061c', '\u200e', '\u200d', '\u2028', '\u2066', '\u00ad', '\ufeff', '\u{E0041}']) {
      rlo.observer.name = `node${c}1`;
      expect(rejectReason(auto(JSON.stringify(rlo)))).toContain('cordon: observer.name: contains control');
    }
    const zw = JSON.parse(SAMPLES.hubble) as Record<string, any>;
    zw.flow.source.pod_name = 'x\u200bwing';
    expect(rejectReason(auto(JSON.stringify(zw)))).toBe(
      'hubble: flow.source.pod_name: contains control, zero-width or bidirectional-override characters',
    );
  });

  it('never echoes unbounded input in a reason', () => {
    const long = `{"${'k'.repeat(5000)}":1}`;
    expect(rejectReason(auto(long)).length).toBeLessThan(200);
    expect(rejectReason(auto('z'.repeat(5000))).length).toBeLessThan(200);
    // A hostile record key ends up in the field path: bounded, its bidi overrides escaped.
    const hub = JSON.parse(SAMPLES.hubble) as Record<string, any>;
    hub.flow.source.labels = [`k8s:${'x\u202e'.repeat(400)}=1`];
    const reason = rejectReason(auto(JSON.stringify(hub)));
    expect(reason.length).toBeLessThan(400);
    expect(reason).not.toMatch(/\u202e/);
    expect(reason).toContain('flow.source.labels.k8s.x\\u202ex');
    expect(reason).toContain('invalid key: Too big');
  });
});
