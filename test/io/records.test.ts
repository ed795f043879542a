import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { run } from '../../src/cli/main';
import type { Stream, Terminal } from '../../src/cli/terminal';
import { JsonRecordSplitter, readRecords } from '../../src/io/records';
import { normalizeRecord } from '../../src/normalize/registry';

const FIXTURES = path.resolve(__dirname, '../fixtures');
const fixture = (name: string) => path.join(FIXTURES, name);
const split = (lines: string[], maxBytes = 1 << 20): string[] => {
  const s = new JsonRecordSplitter(maxBytes);
  return [...lines.flatMap((l) => s.push(l)), ...s.end()];
};
async function all(file: string): Promise<string[]> {
  const out: string[] = [];
  for await (const r of readRecords(file)) out.push(r);
  return out;
}

describe('telemetry files as records', () => {
  test('JSON lines and text lines stay as they are, byte for byte', () => {
    const lines = [
      readFileSync(fixture('hubble/exporter-output.jsonl'), 'utf8').split('\n')[0]!,
      '2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK',
      '#fields\tts\tuid',
      '1521911721.255387\tC8Tful1TvM3Zf5x8fl\t10.164.94.120',
    ];
    expect(split(lines)).toEqual(lines);
  });

  test('a pretty-printed JSON array (Illumio PCE traffic download) gives each element as a record', async () => {
    const records = await all(fixture('illumio/traffic_query_response.json'));
    const elements = JSON.parse(readFileSync(fixture('illumio/traffic_query_response.json'), 'utf8')) as unknown[];
    expect(records).toHaveLength(elements.length);
    expect(records.map((r) => JSON.parse(r))).toEqual(elements);
    expect(records.every((r) => normalizeRecord(r, 'illumio', { state: new Map() }).kind === 'events')).toBe(true);
  });

  test.each(['calico/flow-log-no-aggregation.json', 'ocsf/vpcflowlog.json', 'ocsf/SampleOCSF_FCCX.json'])(
    'a pretty-printed JSON object (%s) is one record',
    async (name) => {
      const records = await all(fixture(name));
      expect(records).toHaveLength(1);
      expect(JSON.parse(records[0]!)).toEqual(JSON.parse(readFileSync(fixture(name), 'utf8')));
    },
  );

  test('gzip files are read the same way', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cordon-records-'));
    const file = path.join(dir, 'flows.json.gz');
    writeFileSync(file, gzipSync(readFileSync(fixture('illumio/traffic_query_response.json'))));
    expect(await all(file)).toEqual(await all(fixture('illumio/traffic_query_response.json')));
  });

  test('brackets and quotes inside strings, values on one line, scalars in an array', () => {
    expect(split(['[{"a":"}\\"]["},', '{"b":[1,{"c":"]"}]}, 7, "x", null]'])).toEqual(['{"a":"}\\"]["}', '{"b":[1,{"c":"]"}]}', '7', '"x"', 'null']);
    expect(split(['{"a":1}{"b":2}'])).toEqual(['{"a":1}', '{"b":2}']);
    expect(split(['{', '  "a": "x"', '}', 'text after'])).toEqual(['{\n  "a": "x"\n}', 'text after']);
  });

  test('hostile input stays bounded: an oversize value is cut for the intake to refuse, the next one is whole', () => {
    const out = split(['[{"a":"' + 'x'.repeat(100) + '"},', '{"b":1}]'], 32);
    expect(out).toHaveLength(2);
    expect(out[0]!.length).toBe(33);
    expect(out[1]).toBe('{"b":1}');
    const o = normalizeRecord(out[0]!, 'auto', { state: new Map() }, { maxBytes: 32 });
    expect(o.kind === 'reject' && o.reason).toMatch(/32/);
  });

  test('a value left open at the end of the file is a record, refused as malformed JSON', () => {
    const out = split(['[', '{"a": 1,', '"b": ']);
    expect(out).toEqual(['{"a": 1,\n"b":']);
    const o = normalizeRecord(out[0]!, 'calico', { state: new Map() });
    expect(o.kind === 'reject' && o.reason).toMatch(/^calico: malformed JSON/);
  });
});

describe('cordon replay reads JSON arrays and pretty-printed JSON', () => {
  function captured(): Stream & { text: string } {
    const s = { text: '', isTTY: false, write: (t: string) => void (s.text += t) };
    return s;
  }

  test('the Illumio download replays as its six flows (they were rejected as "a JSON array")', async () => {
    const term: Terminal & { out: ReturnType<typeof captured>; err: ReturnType<typeof captured> } = { out: captured(), err: captured(), env: {} };
    const code = await run(['node', 'cordon', 'replay', '--format', 'auto', '--json', '--no-progress', fixture('illumio/traffic_query_response.json')], term);
    expect(code).toBe(0);
    expect(term.err.text).toMatch(/^replayed 6 events from 1 file\(s\): .*; 0 record\(s\) skipped, 0 rejected\n$/);
  });
});
