import { type Flow } from '../../src/events';
import type { Normalizer, Outcome, StreamContext } from '../../src/normalize/normalizer';
import { intake, normalizeRecord } from '../../src/normalize/registry';
import { wfp, wfpSchemaOnly } from '../../src/normalize/wfp';
import { zeek, zeekSchemaOnly } from '../../src/normalize/zeek';

/**
 * Flow hints (events.ts): Zeek conn_state and service, WFP direction and Application, Sysmon
 * Initiated and Image. They are carried when they fit their bounds and left out otherwise: a
 * hostile value never costs the record, and the fast path and the schema agree on every one.
 */
const ctx = (): StreamContext => ({ state: new Map() });
const flowOf = (o: Outcome): Flow => {
  if (o.kind !== 'events') throw new Error(`expected events, got ${JSON.stringify(o)}`);
  return o.events[0] as Flow;
};
const both = (text: string, fast: Normalizer, schema: Normalizer): Outcome => {
  const a = intake(text, fast, ctx());
  expect(a).toEqual(intake(text, schema, ctx()));
  return a;
};

const WFP_5156 = {
  EventID: 5156,
  Hostname: 'WORKSTATION6.theshire.local',
  RecordNumber: 42,
  '@timestamp': '2020-10-13T04:26:30.125Z',
  SourceAddress: '172.18.39.5',
  SourcePort: '50123',
  DestAddress: '172.18.39.6',
  DestPort: '49712',
  Protocol: '6',
  Direction: '%%14592',
  Application: '\\device\\harddiskvolume2\\windows\\system32\\wbem\\WmiPrvSE.exe',
};
const SYSMON_3 = {
  EventID: 3,
  SourceName: 'Microsoft-Windows-Sysmon',
  Hostname: 'WORKSTATION6.theshire.local',
  RecordNumber: 7,
  UtcTime: '2020-10-13 04:26:30.125',
  SourceIp: '172.18.39.5',
  SourcePort: '50124',
  DestinationIp: '172.18.39.6',
  DestinationPort: '445',
  Protocol: 'tcp',
  Initiated: 'false',
  Image: 'C:\\Windows\\PSEXESVC.exe',
};
const ZEEK_SF = {
  ts: 1588205199.827696,
  uid: 'CJ21Le4zsTUcyKKi98',
  id_orig_h: '10.0.1.6',
  id_orig_p: 56880,
  id_resp_h: '10.0.0.4',
  id_resp_p: 445,
  proto: 'tcp',
  service: 'gssapi,smb,krb',
  conn_state: 'SF',
};
const text = (o: object, patch: Record<string, unknown> = {}) => JSON.stringify({ ...o, ...patch });

describe('WFP and Sysmon hints', () => {
  test('WFP: direction from Direction, process the lower-cased file name of Application', () => {
    const f = flowOf(both(text(WFP_5156), wfp, wfpSchemaOnly));
    expect(f).toMatchObject({ direction: 'inbound', process: 'wmiprvse.exe', action: 'allowed' });
    const out = flowOf(both(text(WFP_5156, { Direction: '%%14593' }), wfp, wfpSchemaOnly));
    expect(out.direction).toBe('outbound');
  });

  test('Sysmon: Initiated false is inbound, Image its file name', () => {
    const f = flowOf(both(text(SYSMON_3), wfp, wfpSchemaOnly));
    expect(f).toMatchObject({ direction: 'inbound', process: 'psexesvc.exe', observer: { type: 'sysmon' } });
    expect(flowOf(both(text(SYSMON_3, { Initiated: 'true' }), wfp, wfpSchemaOnly)).direction).toBe('outbound');
  });

  test('Sysmon after Elastic\'s ingest pipeline: the image from process.executable', () => {
    const ecs = {
      '@timestamp': '2020-10-13T04:26:30.125Z',
      winlog: {
        channel: 'Microsoft-Windows-Sysmon/Operational',
        provider_name: 'Microsoft-Windows-Sysmon',
        event_id: '3',
        computer_name: 'WORKSTATION6.theshire.local',
        record_id: 7,
        event_data: {},
      },
      source: { ip: '172.18.39.5', port: 50124 },
      destination: { ip: '172.18.39.6', port: 445 },
      network: { transport: 'tcp', direction: 'ingress' },
      process: { executable: 'C:\\Windows\\PSEXESVC.exe' },
    };
    expect(flowOf(normalizeRecord(JSON.stringify(ecs), 'wfp', ctx())).process).toBe('psexesvc.exe');
  });

  test.each([
    ['a control character', 'C:\\x\\ps\u0000exesvc.exe'],
    ['a bidi override', 'C:\\x\\exe.\u202esvcexesp'],
    ['non-ASCII', 'C:\\x\\psехesvc.exe'],
    ['an over-long name', `C:\\x\\${'a'.repeat(129)}.exe`],
    ['an over-long path', `C:\\${'d\\'.repeat(600)}psexesvc.exe`],
    ['a trailing separator', 'C:\\Windows\\'],
    ['a number', 42],
    ['an object', { name: 'psexesvc.exe' }],
  ])('an Application or Image with %s is left out, the flow kept', (_, value) => {
    for (const [record, field] of [[WFP_5156, 'Application'], [SYSMON_3, 'Image']] as const) {
      const f = flowOf(both(text(record, { [field]: value }), wfp, wfpSchemaOnly));
      expect(f.process).toBeUndefined();
      expect(f.direction).toBe('inbound');
    }
  });
});

describe('Zeek hints', () => {
  test('conn_state and service are carried', () => {
    const f = flowOf(both(text(ZEEK_SF), zeek, zeekSchemaOnly));
    expect(f).toMatchObject({ connState: 'SF', appProtocols: 'gssapi,smb,krb', action: 'allowed' });
  });

  test.each([
    ['upper case', 'SMB'],
    ['a separator that is not a comma', 'smb;krb'],
    ['nine protocols', 'a,b,c,d,e,f,g,h,i'],
    ['an over-long name', 'x'.repeat(33)],
    ['an empty list', ''],
    ['a list', ['smb']],
  ])('a service with %s is left out, the flow kept', (_, service) => {
    const f = flowOf(both(text(ZEEK_SF, { service }), zeek, zeekSchemaOnly));
    expect(f.appProtocols).toBeUndefined();
    expect(f.connState).toBe('SF');
  });

  test('TSV: the service column is read; typed otherwise it is ignored, not a reason to refuse the header', () => {
    const fields = ['ts', 'uid', 'id.orig_h', 'id.orig_p', 'id.resp_h', 'id.resp_p', 'proto', 'service', 'conn_state'];
    const row = ['1588205199.827696', 'CJ21Le4zsTUcyKKi98', '10.0.1.6', '56880', '10.0.0.4', '445', 'tcp', 'dce_rpc,smb', 'SF'];
    const stream = (serviceType: string) => {
      const types = ['time', 'string', 'addr', 'port', 'addr', 'port', 'enum', serviceType, 'string'];
      const c = ctx();
      return ['#separator \\x09', `#fields\t${fields.join('\t')}`, `#types\t${types.join('\t')}`, row.join('\t')].map((l) =>
        normalizeRecord(l, 'zeek', c),
      );
    };
    expect(flowOf(stream('string').at(-1)!).appProtocols).toBe('dce_rpc,smb');
    const other = stream('count');
    expect(other[2]!.kind).toBe('skip');
    expect(flowOf(other.at(-1)!).appProtocols).toBeUndefined();
  });
});

describe('canonical Cordon JSON: the hints are part of the contract', () => {
  const flow = {
    id: 'f1',
    time: 1_700_000_000_000,
    src: { ip: '10.0.0.1' },
    dst: { ip: '10.0.0.2' },
    protocol: 'tcp',
    dstPort: 445,
    action: 'allowed',
    observer: { type: 'cordon', name: 'test' },
  };

  test('valid hints are kept', () => {
    const hints = { connState: 'SF', appProtocols: 'smb', direction: 'inbound', process: 'psexesvc.exe' };
    expect(flowOf(normalizeRecord(JSON.stringify({ ...flow, ...hints }), 'cordon', ctx()))).toMatchObject(hints);
  });

  test.each([
    ['process', 'C:\\Windows\\psexesvc.exe'],
    ['process', 'PSEXESVC.EXE'],
    ['appProtocols', 'smb;krb'],
    ['connState', 'XX'],
    ['direction', 'sideways'],
  ])('%s %j is refused, naming the field', (field, value) => {
    const o = normalizeRecord(JSON.stringify({ ...flow, [field]: value }), 'cordon', ctx());
    expect(o.kind).toBe('reject');
    expect((o as { reason: string }).reason).toContain(field);
  });
});
