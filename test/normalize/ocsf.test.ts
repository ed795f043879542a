import { readFileSync } from 'node:fs';
import path from 'node:path';
import { AllowedFlow, DeniedFlow, type Flow } from '../../src/events';
import type { Outcome, StreamContext } from '../../src/normalize/normalizer';
import { normalizeRecord } from '../../src/normalize/registry';

const fixture = (name: string) => readFileSync(path.resolve(__dirname, '../fixtures/ocsf', name), 'utf8');
const LAKE = fixture('security-lake-vpc-flow.jsonl').trim();
const EXAMPLE_099 = fixture('vpcflowlog.json');
const SILK = fixture('SampleOCSF_FCCX.json');

const ctx = (): StreamContext => ({ state: new Map() });
const norm = (text: string): Outcome => normalizeRecord(text, 'ocsf', ctx());
function only(o: Outcome): Flow {
  if (o.kind !== 'events') throw new Error(`expected events, got ${o.kind}: ${o.reason}`);
  expect(o.events).toHaveLength(1);
  return o.events[0] as Flow;
}
const reason = (o: Outcome): string => (o.kind !== 'events' ? o.reason : `events: ${JSON.stringify(o)}`);
type Json = Record<string, any>;
const edit = (text: string, change: (r: Json) => void): string => {
  const r = JSON.parse(text) as Json;
  change(r);
  return JSON.stringify(r);
};

describe('OCSF Network Activity: Amazon Security Lake VPC flow log (OCSF 1.0.0-rc.2)', () => {
  test('a REJECT (Refuse, Blocked) is a denial to the instance; format auto detects it', () => {
    const f = only(norm(LAKE));
    expect(DeniedFlow.safeParse(f).success).toBe(true);
    expect(f).toEqual({
      id: f.id,
      time: 1649721732000,
      src: { ip: '1.128.0.0', port: 56858 },
      dst: { ip: '172.31.2.52', port: 39938, workload: { kind: 'vm', id: 'i-000000000000000000', name: 'i-000000000000000000', labels: {} } },
      protocol: 'tcp',
      dstPort: 39938,
      action: 'denied',
      observer: { type: 'ocsf', name: 'Amazon VPC' },
      policy: { id: 'ocsf:blocked', name: 'Blocked (OCSF Network Activity)' },
    });
    expect(f.id).toMatch(/^ocsf:[0-9a-f]{20}$/);
    expect(normalizeRecord(LAKE, 'auto', ctx())).toEqual(norm(LAKE));
  });

  test('the same record accepted (1.1: action_id 1; or disposition Allowed; or Traffic with no verdict) is allowed', () => {
    const accepted = [
      edit(LAKE, (r) => { r.metadata.version = '1.1.0'; r.activity_id = 6; delete r.disposition_id; r.action_id = 1; }),
      edit(LAKE, (r) => { r.activity_id = 6; r.disposition_id = 1; r.disposition = 'Allowed'; }),
      edit(LAKE, (r) => { r.activity_id = 6; delete r.disposition_id; }),
    ];
    for (const t of accepted) {
      const f = only(norm(t));
      expect(AllowedFlow.safeParse(f).success).toBe(true);
      expect(f.policy).toBeUndefined();
    }
  });

  test('action_id 2 (Denied) and disposition Dropped are denials; a firewall rule names the policy', () => {
    const denied = only(norm(edit(LAKE, (r) => { r.activity_id = 6; delete r.disposition_id; r.action_id = 2; r.firewall_rule = { uid: 'sg-0abc', name: 'default' }; })));
    expect(denied).toMatchObject({ action: 'denied', policy: { id: 'sg-0abc', name: 'default' } });
    expect(only(norm(edit(LAKE, (r) => { r.activity_id = 6; r.disposition_id = 6; }))).action).toBe('denied');
  });

  test('Reset or Fail without a verdict, and other OCSF classes, are skipped', () => {
    expect(norm(edit(LAKE, (r) => { r.activity_id = 3; delete r.disposition_id; })).kind).toBe('skip');
    expect(norm(edit(LAKE, (r) => { r.class_uid = 4003; }))).toEqual({ kind: 'skip', reason: 'ocsf: class_uid 4003 is not Network Activity (4001)' });
  });
});

describe('OCSF version and schema checks', () => {
  test('the OCSF project\'s own 0.99.0 example is refused, the version named', () => {
    expect(reason(norm(EXAMPLE_099))).toBe('ocsf: metadata.version: OCSF "0.99.0" is not 1.x; only OCSF 1.x Network Activity is read');
  });

  test.each([
    ['2.0.0', /is not 1\.x/],
    ['1.x', /expected a schema version such as "1.1.0", got "1.x"/],
    [7, /metadata\.version: required/],
  ])('metadata.version %j is refused', (version, why) => {
    expect(reason(norm(edit(LAKE, (r) => (r.metadata.version = version))))).toMatch(why);
  });

  test('the SiLK example writes start_time as text and has no time: refused, both named', () => {
    const why = reason(norm(SILK));
    expect(why).toMatch(/^ocsf: /);
    expect(why).toContain('time:');
    expect(why).toContain('start_time:');
  });

  test('hostile values are refused naming the field', () => {
    expect(reason(norm(edit(LAKE, (r) => (r.src_endpoint.ip = '1.2.3.256'))))).toMatch(/^ocsf: src_endpoint\.ip: /);
    expect(reason(norm(edit(LAKE, (r) => (r.dst_endpoint.port = 70000))))).toMatch(/^ocsf: dst_endpoint\.port: /);
    expect(reason(norm(edit(LAKE, (r) => (r.connection_info.protocol_num = 256))))).toMatch(/^ocsf: connection_info\.protocol_num: /);
    expect(reason(norm(edit(LAKE, (r) => (r.dst_endpoint.instance_uid = 'x'.repeat(300)))))).toMatch(/^ocsf: dst_endpoint\.instance_uid: /);
    expect(reason(norm(edit(LAKE, (r) => (r.class_uid = '4001'))))).toMatch(/^ocsf: class_uid: /);
    expect(reason(norm(edit(LAKE, (r) => (r.time = 1649721732.5))))).toMatch(/^ocsf: time: /);
  });
});
