import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { AllowedFlow, DeniedFlow, type Flow } from '../../src/events';
import type { Outcome, StreamContext } from '../../src/normalize/normalizer';
import { intake, normalizeRecord } from '../../src/normalize/registry';
import { wfp, wfpSchemaOnly } from '../../src/normalize/wfp';

const FIXTURES = path.resolve(__dirname, '../fixtures/wfp');
const OTRF = path.resolve(__dirname, '../../../shared/datasets/otrf-lateral-movement');
const lines = (file: string): string[] => readFileSync(path.join(FIXTURES, file), 'utf8').split('\n').filter(Boolean);

const [AGENT_5156, AGENT_5157, AGENT_5152] = lines('elastic-agent-security-wfp.jsonl') as [string, string, string];
const COLLECTED = lines('winlogbeat-sysmon-3-collected.jsonl');
const INGESTED = lines('winlogbeat-sysmon-3-ingested.jsonl');

const ctx = (): StreamContext => ({ state: new Map() });
const norm = (text: string): Outcome => normalizeRecord(text, 'wfp', ctx());
function only(o: Outcome): Flow {
  if (o.kind !== 'events') throw new Error(`expected events, got ${o.kind}: ${o.reason}`);
  expect(o.events).toHaveLength(1);
  return o.events[0] as Flow;
}
const reason = (o: Outcome): string => (o.kind === 'reject' ? o.reason : `not a reject: ${JSON.stringify(o)}`);

type Json = Record<string, any>;
const edit = (text: string, change: (r: Json) => void): string => {
  const r = JSON.parse(text) as Json;
  change(r);
  return JSON.stringify(r);
};

const HOST = { kind: 'host', id: 'computer1.contoso.com', name: 'COMPUTER1', labels: {} };
const T_2023 = Date.parse('2023-01-17T22:18:03.557Z');

describe('Elastic Agent (System integration) Security events: WFP 5156, 5157 and 5152', () => {
  test('5156: an allowed outbound connection, the host on the source side, time from winlog.time_created', () => {
    const f = only(norm(AGENT_5156));
    expect(AllowedFlow.safeParse(f).success).toBe(true);
    expect(f).toEqual({
      id: 'wfp:computer1.contoso.com:7959006',
      time: T_2023,
      src: { ip: '10.47.0.151', port: 49691, workload: HOST },
      dst: { ip: '10.47.0.110', port: 389 },
      protocol: 'tcp',
      dstPort: 389,
      action: 'allowed',
      observer: { type: 'wfp', name: 'computer1.contoso.com' },
      direction: 'outbound',
      process: 'dsregcmd.exe',
    });
  });

  test('5157: a denial, policy the WFP filter; the inbound side is a broadcast address, so no host identity', () => {
    const f = only(norm(AGENT_5157));
    expect(DeniedFlow.safeParse(f).success).toBe(true);
    expect(f).toMatchObject({
      action: 'denied',
      src: { ip: '10.47.0.110', port: 137 },
      dst: { ip: '10.47.0.255', port: 137 },
      protocol: 'udp',
      policy: { id: 'wfp:filter/71720', name: 'WFP filter (run-time id 71720)' },
    });
    expect(f.dst.workload).toBeUndefined();
  });

  test('5152 "packet blocked" is a denial (it was skipped as "not network telemetry")', () => {
    const f = only(norm(AGENT_5152));
    expect(DeniedFlow.safeParse(f).success).toBe(true);
    expect(f).toMatchObject({
      action: 'denied',
      src: { ip: '10.47.0.122', port: 58231 }, // ::ffff:10.47.0.122, IPv4-mapped
      dst: { ip: '255.255.255.255', port: 1947 },
      dstPort: 1947,
      protocol: 'udp',
      policy: { id: 'wfp:filter/122003' },
    });
  });

  test('5156 after the System integration\'s ingest pipeline (as stored in Elasticsearch) gives the same flow', () => {
    const [stored] = lines('elastic-agent-security-5156-ingested.jsonl');
    expect(norm(stored!)).toEqual(norm(AGENT_5156));
  });

  test('format auto detects the layout', () => {
    for (const t of [AGENT_5156, AGENT_5157, AGENT_5152, ...COLLECTED, ...INGESTED]) {
      expect(normalizeRecord(t, 'auto', ctx())).toEqual(norm(t));
    }
  });
});

describe('Winlogbeat Sysmon 3, as collected and after Elastic\'s ingest pipeline (ECS)', () => {
  test('collected (winlog.event_data): the initiating host is the source, IPv6 canonical', () => {
    const [v6, , tcp] = COLLECTED.map((t) => only(norm(t)));
    const host = { kind: 'host', id: 'vagrant-2012-r2', name: 'vagrant-2012-r2', labels: {} };
    expect(v6).toMatchObject({
      id: 'wfp:vagrant-2012-r2:sysmon:8',
      time: Date.parse('2019-03-18T16:57:49.089Z'),
      src: { ip: 'a00:20f::18a2:6e00:e0:ffff', port: 62141, workload: host },
      dst: { ip: 'a00:203:3000:3000:3000:3000:3000:3300', port: 53 },
      protocol: 'udp',
      observer: { type: 'sysmon', name: 'vagrant-2012-r2' },
    });
    expect(tcp).toMatchObject({ src: { ip: '10.0.2.15', port: 1138, workload: host }, dst: { ip: '40.77.226.250' }, dstPort: 443, protocol: 'tcp' });
  });

  test('ingested (source.*, destination.*, network.*): the same flows as collected', () => {
    const pick = (f: Flow) => ({ id: f.id, src: f.src, dst: f.dst, protocol: f.protocol, dstPort: f.dstPort, action: f.action });
    const collected = COLLECTED.slice(0, 2).map((t) => pick(only(norm(t))));
    const ingested = INGESTED.map((t) => pick(only(norm(t))));
    expect(ingested).toEqual(collected);
    expect(only(norm(INGESTED[0]!)).time).toBe(Date.parse('2019-03-18T16:57:47.847Z'));
  });

  test('reject reasons name the record\'s own fields', () => {
    expect(reason(norm(edit(INGESTED[0]!, (r) => (r.source.port = 'x'))))).toMatch(/^wfp: source\.port: /);
    expect(reason(norm(edit(INGESTED[1]!, (r) => (r.network.direction = 'sideways'))))).toMatch(/^wfp: network\.direction: /);
    expect(reason(norm(edit(COLLECTED[0]!, (r) => (r.winlog.event_data.DestinationPort = '70000'))))).toMatch(
      /^wfp: winlog\.event_data\.DestinationPort: /,
    );
    expect(only(norm(edit(AGENT_5156, (r) => delete r.winlog.computer_name))).observer.name).toBe('computer1.contoso.com'); // host.name
    const nameless = edit(AGENT_5156, (r) => { delete r.winlog.computer_name; delete r.host; });
    expect(reason(norm(nameless))).toMatch(/^wfp: winlog\.computer_name: /);
    expect(reason(norm(edit(AGENT_5156, (r) => { delete r.winlog.computer_name; r.host.name = ''; })))).toMatch(/^wfp: host\.name: /);
    expect(reason(norm(edit(AGENT_5156, (r) => (r.winlog.event_id = 'abc'))))).toBe('wfp: winlog.event_id: expected an event id number, got "abc"');
    expect(reason(norm(edit(AGENT_5156, (r) => (r.winlog.record_id = 'x1'))))).toMatch(/^wfp: winlog\.record_id: /);
  });
});

/**
 * Winlogbeat 6 wrote the same event data under other names, which Elastic's "Legacy Winlogbeat
 * alias fields" page maps to 7's (computer_name -> winlog.computer_name, event_id ->
 * winlog.event_id, record_number -> winlog.record_id, source_name -> winlog.provider_name,
 * log_name -> winlog.channel; event_data at the top). The 6 shape here is the Agent record
 * renamed that way by the test, record_number as the keyword string 6 wrote.
 */
function asWinlogbeat6(text: string): string {
  const r = JSON.parse(text) as Json;
  const w = r.winlog;
  return JSON.stringify({
    '@timestamp': w.time_created,
    computer_name: w.computer_name,
    event_id: Number(w.event_id),
    record_number: String(w.record_id),
    source_name: w.provider_name,
    log_name: w.channel,
    event_data: w.event_data,
    type: 'wineventlog',
  });
}

describe('Winlogbeat 6 layout', () => {
  test('gives the same flows as the 7+ layout of the same events', () => {
    for (const t of [AGENT_5156, AGENT_5157, AGENT_5152]) {
      expect(normalizeRecord(asWinlogbeat6(t), 'auto', ctx())).toEqual(norm(t));
    }
  });

  test('reasons name the 6 fields', () => {
    const bad = edit(asWinlogbeat6(AGENT_5156), (r) => (r.event_data.SourcePort = '-1'));
    expect(reason(norm(bad))).toMatch(/^wfp: event_data\.SourcePort: /);
  });
});

describe('plain NXLog without @timestamp: EventTime, with its zone honoured', () => {
  const otrf = gunzipSync(readFileSync(path.join(OTRF, 'covenant_dcom_executeexcel4macro_blocked.jsonl.gz')))
    .toString('utf8')
    .split('\n')
    .filter((l) => l.includes('"EventID":5157'));
  const record = otrf[0]!;
  const plain = (eventTime: string) => edit(record, (r) => { delete r['@timestamp']; r.EventTime = eventTime; });

  test('the recording\'s EventTime is local time without a zone: refused, and the reason says so', () => {
    const eventTime = (JSON.parse(record) as Json).EventTime as string;
    expect(reason(norm(edit(record, (r) => delete r['@timestamp'])))).toBe(
      `wfp: @timestamp: required (no @timestamp, TimeCreated or EventTime with a time zone; EventTime "${eventTime}" has no time zone)`,
    );
  });

  test.each([
    ['2020-09-17 17:31:45-04:00', '2020-09-17T21:31:45Z'],
    ['2020-09-17 17:31:45 -0400', '2020-09-17T21:31:45Z'],
    ['2020-09-17T17:31:45.123456+02:00', '2020-09-17T15:31:45.123Z'],
    ['2020-09-17T21:31:45Z', '2020-09-17T21:31:45Z'],
  ])('EventTime %j is %s', (eventTime, utc) => {
    expect(only(norm(plain(eventTime))).time).toBe(Date.parse(utc));
  });

  test('@timestamp still comes first; an EventTime outside the contract\'s years is a reject naming it', () => {
    const both = edit(record, (r) => (r.EventTime = '2020-09-17 17:31:45+09:00'));
    expect(only(norm(both)).time).toBe(Date.parse((JSON.parse(record) as Json)['@timestamp']));
    expect(reason(norm(plain('1970-01-01 00:00:00Z')))).toMatch(/^wfp: EventTime: /);
  });
});

describe('the fast path gives the zod schema outcome on every layout', () => {
  const HOSTILE: unknown[] = ['', 'x'.repeat(257), 'x\u200by', '::1', '10.0.0.256', '445', '65536', '-1', 0, 65536, 1.5, true, null, {}, [], '2020-09-17 17:31:45', '2020-09-17 17:31:45+02:00', 'egress', 'inbound'];
  function leaves(v: unknown, at: string[] = []): string[][] {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return [at];
    return Object.entries(v as Json).flatMap(([k, c]) => leaves(c, [...at, k]));
  }
  function variants(text: string): string[] {
    const root = JSON.parse(text) as Json;
    return leaves(root).flatMap((p) =>
      [...HOSTILE, undefined].map((h) => {
        const copy = structuredClone(root);
        let node = copy;
        for (const k of p.slice(0, -1)) node = node[k];
        if (h === undefined) delete node[p[p.length - 1]!];
        else node[p[p.length - 1]!] = h;
        return JSON.stringify(copy);
      }),
    );
  }

  test('on hostile variants of every field of every fixture record and its 6 form', () => {
    const records = [AGENT_5156, AGENT_5157, AGENT_5152, asWinlogbeat6(AGENT_5152), COLLECTED[0]!, INGESTED[1]!, lines('elastic-agent-security-5156-ingested.jsonl')[0]!];
    const all = records.flatMap(variants);
    expect(all.length).toBeGreaterThan(1000);
    let rejects = 0;
    for (const v of all) {
      const fast = intake(v, wfp, ctx());
      const schema = intake(v, wfpSchemaOnly, ctx());
      if (schema.kind === 'reject') rejects++;
      if (JSON.stringify(fast) !== JSON.stringify(schema)) expect({ v, fast }).toEqual({ v, fast: schema });
    }
    expect(rejects).toBeGreaterThan(all.length / 10);
  });
});
