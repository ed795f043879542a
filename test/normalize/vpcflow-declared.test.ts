import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Batch } from '../../src/kafka';
import { ConfigError, loadConfig } from '../../src/config';
import type { Flow } from '../../src/events';
import { Intake } from '../../src/ingest/intake';
import { createLogger } from '../../src/logger';
import { Metrics } from '../../src/metrics';
import type { Outcome, StreamContext } from '../../src/normalize/normalizer';
import { intake, normalizeRecord } from '../../src/normalize/registry';
import { declareVpcFormat, vpcflow, vpcflowSchemaOnly } from '../../src/normalize/vpcflow';

const fixture = (name: string) =>
  readFileSync(path.resolve(__dirname, '../fixtures/vpcflow', name), 'utf8').split('\n').filter((l) => l.length > 0);

// AWS's "Service name, traffic path, and flow direction" example: header line, then two records.
const [HEADER, ...RECORDS] = fixture('custom-traffic-path.txt') as [string, ...string[]];
const FIELDS = HEADER.split(' ');
const LOG_FORMAT = FIELDS.map((f) => `\${${f}}`).join(' '); // as AWS's --log-format writes it
// Elastic's Transit Gateway samples, default format, no header.
const TGW = fixture('tgw-default-format.txt');

const ctx = (): StreamContext => ({ state: new Map() });
const reason = (o: Outcome | undefined): string => (o && o.kind !== 'events' ? o.reason : `events: ${JSON.stringify(o)}`);

describe('vpcflow: a field order declared per input (CloudWatch Logs delivers no header)', () => {
  const config = (vpcFields: unknown) =>
    loadConfig({ env: {}, overrides: { kafka: { inputs: [{ topic: 'vpc.flows', format: 'vpcflow', keyed: false, vpcFields }] } } });

  test('without a header, the records are refused by the default format', () => {
    expect(reason(normalizeRecord(RECORDS[0]!, 'vpcflow', ctx()))).toMatch(/^vpcflow: expected 14 fields \(the default version 2 format\)/);
  });

  test('the config takes a LogFormat string or a list; both give the fields in order', () => {
    expect(config(LOG_FORMAT).kafka.inputs[0]!.vpcFields).toEqual(FIELDS);
    expect(config(FIELDS).kafka.inputs[0]!.vpcFields).toEqual(FIELDS);
  });

  test.each([
    [['srcaddr', 'dstaddr', 'bogus-field'], /kafka\.inputs\.0\.vpcFields = .*"bogus-field" is not a VPC or Transit Gateway flow log field/],
    [['srcaddr', 'srcaddr'], /names a field twice/],
    ['${srcaddr} ${dstaddr} ${packets}', /lacks dstport, protocol, action, start/],
    [[], /expected 1\.\.128 fields, got 0/],
    [42, /kafka\.inputs\.0\.vpcFields = 42: expected the flow log fields/],
  ])('a declared format %j is refused at start-up, naming the key', (vpcFields, why) => {
    expect(() => config(vpcFields)).toThrow(ConfigError);
    expect(() => config(vpcFields)).toThrow(why);
  });

  function batch(partition: number, lines: readonly string[], from = 0): Batch {
    const messages = lines.map((l, i) => ({ offset: String(from + i), value: Buffer.from(l), timestamp: '1616729400000', headers: {} }));
    return { topic: 'vpc.flows', partition, messages } as unknown as Batch;
  }

  test('the intake reads the records by the declared order, again after a rebalance, on every partition', () => {
    const run = new Intake(config(LOG_FORMAT), new Metrics(), createLogger('silent'));
    const first = run.admitBatch(batch(0, RECORDS), 'vpcflow', 'record');
    expect(first.dead).toEqual([]);
    expect(first.admitted.map((a) => (a.event as Flow).dst.ip)).toEqual(['10.0.0.71', '52.95.128.179']);
    expect((first.admitted[0]!.event as Flow).dst.workload).toMatchObject({ kind: 'vm', id: 'i-0c50d5961bcb2d47b' });
    run.reset(); // a rebalance: stream state starts over, the declared format comes back
    expect(run.admitBatch(batch(0, RECORDS, 2), 'vpcflow', 'record').admitted).toHaveLength(2);
    expect(run.admitBatch(batch(5, RECORDS), 'auto', 'record').admitted).toHaveLength(2);
  });

  test('the example of docs/input-formats.md is a valid declaration that reads its records', () => {
    const docs = readFileSync(path.resolve(__dirname, '../../docs/input-formats.md'), 'utf8');
    const example = /vpcFields: "([^"]+)"/.exec(docs)![1]!;
    const fields = config(example).kafka.inputs[0]!.vpcFields!;
    expect(fields).toEqual(['version', 'srcaddr', 'dstaddr', 'srcport', 'dstport', 'protocol', 'start', 'action', 'log-status']);
    const c = ctx();
    declareVpcFormat(c, fields);
    expect(normalizeRecord('2 10.0.0.5 10.0.0.9 50000 445 6 1418530010 REJECT OK', 'vpcflow', c)).toMatchObject({
      kind: 'events',
      events: [{ action: 'denied', dstPort: 445, src: { ip: '10.0.0.5', port: 50000 } }],
    });
  });

  test('a header line in the stream still replaces the declared order', () => {
    const c = ctx();
    declareVpcFormat(c, FIELDS);
    const tcpFlags = fixture('custom-tcp-flags.txt');
    const out = tcpFlags.map((l) => normalizeRecord(l, 'vpcflow', c));
    expect(out[0]!.kind).toBe('skip');
    expect(out.slice(1).every((o) => o.kind === 'events')).toBe(true);
  });
});

describe('vpcflow: Transit Gateway flow logs', () => {
  const outcomes = () => {
    const c = ctx();
    return TGW.map((l) => normalizeRecord(l, 'vpcflow', c));
  };

  test('the default format is recognized without a header: OK records are routed (allowed) flows', () => {
    const out = outcomes();
    const flows = out.filter((o) => o.kind === 'events').map((o) => (o as { events: Flow[] }).events[0]!);
    expect(flows).toHaveLength(3);
    expect(flows[0]).toMatchObject({
      time: 1755592553000,
      src: { ip: '216.160.83.56', port: 36721 },
      dst: { ip: '89.160.20.128', port: 8080 },
      protocol: 'udp',
      dstPort: 8080,
      action: 'allowed',
      observer: { type: 'vpcflow', name: 'tgw-attach-0123abcd' },
    });
    expect(flows.every((f) => f.action === 'allowed' && f.policy === undefined)).toBe(true);
    expect(out.filter((o) => o.kind === 'skip').map((o) => reason(o))).toEqual(expect.arrayContaining(['vpcflow: log-status SKIPDATA', 'vpcflow: log-status NODATA']));
  });

  test('format auto detects them too (they carry no ACCEPT or REJECT)', () => {
    const c = ctx();
    expect(TGW.map((l) => normalizeRecord(l, 'auto', c))).toEqual(outcomes());
  });

  test('a record whose packets were all lost is skipped (routing, not policy); some lost is still a flow', () => {
    const ok = TGW[2]!.split(' ');
    const withLost = (n: string) => ok.map((t, i) => (i === 28 ? n : t)).join(' '); // packets-lost-blackhole
    expect(normalizeRecord(withLost('13'), 'vpcflow', ctx())).toEqual({
      kind: 'skip',
      reason: 'vpcflow: every packet of the transit gateway flow was lost (dropped by routing, not by policy)',
    });
    expect(normalizeRecord(withLost('2'), 'vpcflow', ctx()).kind).toBe('events');
    expect(reason(normalizeRecord(withLost('x'), 'vpcflow', ctx()))).toMatch(/^vpcflow: packets-lost-blackhole: expected a count/);
  });

  test('a TGW format declared by a header needs no action field', () => {
    const c = ctx();
    expect(normalizeRecord('version tgw-attachment-id srcaddr dstaddr srcport dstport protocol start log-status', 'vpcflow', c).kind).toBe('skip');
    expect(normalizeRecord('6 tgw-attach-1 10.0.0.1 10.0.1.1 40000 443 6 1755592553 OK', 'vpcflow', c)).toMatchObject({
      kind: 'events',
      events: [{ action: 'allowed', dstPort: 443, observer: { name: 'tgw-attach-1' } }],
    });
  });

  test('the fast path gives the schema outcome on hostile tokens in every TGW field', () => {
    const TOKENS = ['-', '', '0', '-1', '65536', '1.5', '10.0.0.256', '::1', 'abc', 'x'.repeat(300), '99999999999999999'];
    const base = TGW[2]!.split(' ');
    let compared = 0;
    for (let i = 0; i < base.length; i++) {
      for (const t of TOKENS) {
        const line = base.map((b, j) => (j === i ? t : b)).join(' ');
        expect({ i, t, o: intake(line, vpcflow, ctx()) }).toEqual({ i, t, o: intake(line, vpcflowSchemaOnly, ctx()) });
        compared++;
      }
    }
    expect(compared).toBe(36 * TOKENS.length);
  });
});
