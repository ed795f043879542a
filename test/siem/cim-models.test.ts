import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LEDGER_ACTIONS } from '../../src/ledger/records';
import { findingToCim, incidentToCim, ledgerToCim, type HecEvent, type HecMeta } from '../../src/siem/cim';
import { T0, sampleFinding, sampleIncident, sampleLedger } from './fixtures';

/**
 * Each Cordon record type, field by field, against the CIM data model its tags put it in. The
 * required fields, the conditions and the expected values are those of Splunk's CIM reference:
 *   Change             https://docs.splunk.com/Documentation/CIM/latest/User/Change
 *   Intrusion Detection https://docs.splunk.com/Documentation/CIM/latest/User/IntrusionDetection
 *   Alerts             https://docs.splunk.com/Documentation/CIM/latest/User/Alerts
 *   Network Traffic    https://docs.splunk.com/Documentation/CIM/latest/User/NetworkTraffic
 * in the machine-readable form Splunk's add-on test tool checks add-ons with ("type": "required" /
 * "conditional", "expected_values", "validity"):
 *   https://github.com/splunk/pytest-splunk-addon/tree/main/pytest_splunk_addon/data_models
 *   (Change.json, Intrusion_Detection.json, Alerts.json, Network_Traffic.json)
 * Tags come from connectors/splunk/eventtypes.conf and tags.conf, as Splunk applies them.
 */

type Fields = Record<string, string[]>;
interface Requirement {
  field: string;
  /** Required only when this holds (the model's "conditional" fields). */
  when?: (f: Fields) => boolean;
  expected?: readonly string[];
  numeric?: boolean;
}
interface DataModel {
  name: string;
  tags: readonly string[];
  fields: readonly Requirement[];
}

const IP = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-f:]*:[0-9a-f:.]+)$/i;
const has = (f: Fields, k: string, v: string) => (f[k] ?? []).includes(v);
const isIp = (f: Fields, k: string) => (f[k] ?? []).some((v) => IP.test(v));
const req = (...names: string[]): Requirement[] => names.map((field) => ({ field }));

const CHANGE: DataModel = {
  name: 'Change (All_Changes)',
  tags: ['change'],
  fields: [
    ...req('change_type', 'command', 'dest', 'dvc', 'object', 'object_attrs', 'object_category', 'object_id', 'src', 'user', 'vendor_product'),
    { field: 'action', expected: ['acl_modified', 'cleared', 'created', 'deleted', 'modified', 'read', 'stopped', 'started', 'restarted', 'updated'] },
    { field: 'status', expected: ['success', 'failure'] },
    { field: 'result', when: (f) => has(f, 'status', 'failure') },
  ],
};

const IDS: DataModel = {
  name: 'Intrusion Detection (IDS_Attacks)',
  tags: ['ids', 'attack'],
  fields: [
    ...req('category', 'dvc', 'signature', 'vendor_product'),
    { field: 'action', expected: ['allowed', 'blocked'] },
    { field: 'ids_type', expected: ['network', 'host', 'application'] },
    { field: 'severity', expected: ['critical', 'high', 'medium', 'low', 'informational'] },
    ...['dest', 'src', 'transport'].map((field) => ({ field, when: (f: Fields) => has(f, 'ids_type', 'network') })),
    ...['src_port', 'dest_port'].map((field) => ({ field, numeric: true, when: (f: Fields) => has(f, 'ids_type', 'network') })),
  ],
};

const ALERTS: DataModel = {
  name: 'Alerts',
  tags: ['alert'],
  fields: [
    ...req('app', 'description', 'dest', 'id', 'signature', 'signature_id', 'src', 'user'),
    { field: 'severity', expected: ['critical', 'high', 'medium', 'low', 'informational'] },
    { field: 'type', expected: ['alarm', 'alert', 'event', 'task', 'warning'] },
  ],
};

const tcpOrUdp = (f: Fields) => has(f, 'transport', 'tcp') || has(f, 'transport', 'udp');
const NETWORK_TRAFFIC: DataModel = {
  name: 'Network Traffic (All_Traffic)',
  tags: ['network', 'communicate'],
  fields: [
    ...req('app', 'dest', 'dvc', 'src', 'vendor_product'),
    { field: 'action', expected: ['allowed', 'blocked', 'teardown', 'flow'] },
    { field: 'transport', expected: ['tcp', 'udp', 'icmp'] },
    { field: 'dest_port', numeric: true, when: tcpOrUdp },
    { field: 'src_port', numeric: true, when: tcpOrUdp },
    { field: 'dest_ip', when: (f) => isIp(f, 'dest') },
    { field: 'src_ip', when: (f) => isIp(f, 'src') },
    { field: 'protocol', expected: ['ip', 'icmp'], when: (f) => isIp(f, 'src') || isIp(f, 'dest') },
    { field: 'protocol_version', expected: ['ipv4', 'ipv6'], when: (f) => has(f, 'protocol', 'ip') },
  ],
};

const MODELS = [CHANGE, IDS, ALERTS, NETWORK_TRAFFIC];

// ---------------------------------------------------------------- Splunk's search-time view

function stanzas(file: string): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const raw of readFileSync(join(__dirname, '../../connectors/splunk', file), 'utf8').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const head = /^\[(.+)\]$/.exec(line);
    if (head) out.set(head[1]!, (current = new Map()));
    else if (current) {
      const eq = line.indexOf('=');
      current.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
    }
  }
  return out;
}

/** The tags Splunk gives an event of this sourcetype: eventtypes whose search matches, then their tags. */
function tagsOf(sourcetype: string): string[] {
  const eventtypes = [...stanzas('eventtypes.conf')].filter(([, s]) => s.get('search') === `sourcetype="${sourcetype}"`).map(([name]) => name);
  const tags = stanzas('tags.conf');
  return eventtypes.flatMap((et) => [...(tags.get(`eventtype=${et}`) ?? [])].filter(([, v]) => v === 'enabled').map(([t]) => t));
}

/** KV_MODE=json: top-level scalars and arrays of scalars as (multivalue) fields; objects are not CIM fields. */
function searchTimeFields(e: HecEvent): Fields {
  const out: Fields = {};
  for (const [k, v] of Object.entries(e.event as Record<string, unknown>)) {
    const values = (Array.isArray(v) ? v : [v]).filter((x) => x !== null && x !== undefined && typeof x !== 'object').map(String);
    if (values.length > 0) out[k] = values;
  }
  return out;
}

/** Every way this event falls short of the models its tags put it in (empty: compliant). */
function cimProblems(e: HecEvent): string[] {
  const tags = tagsOf(e.sourcetype!);
  const f = searchTimeFields(e);
  const problems: string[] = [];
  for (const m of MODELS.filter((m) => m.tags.every((t) => tags.includes(t)))) {
    for (const r of m.fields) {
      if (r.when && !r.when(f)) continue;
      const v = f[r.field];
      if (!v || v.length === 0 || v.some((x) => x === '')) problems.push(`${m.name}: ${r.field} missing`);
      else if (r.expected && !v.every((x) => r.expected!.includes(x))) problems.push(`${m.name}: ${r.field}=${v.join(',')} not in ${r.expected.join('|')}`);
      else if (r.numeric && !v.every((x) => /^\d+$/.test(x))) problems.push(`${m.name}: ${r.field}=${v.join(',')} not a number`);
    }
  }
  return problems;
}

function modelsOf(e: HecEvent): string[] {
  const tags = tagsOf(e.sourcetype!);
  return MODELS.filter((m) => m.tags.every((t) => tags.includes(t))).map((m) => m.name);
}

// ---------------------------------------------------------------- the records

const META: HecMeta = {
  index: 'cordon',
  host: 'cordon-1',
  source: 'cordon',
  sourcetypes: { incident: 'cordon:incident', ledger: 'cordon:ledger', deadLetter: 'cordon:dlq', finding: 'cordon:finding' },
};

const LEASE = {
  target: 'pod:shop/cart-7f9c',
  labels: { 'cordon.io/quarantine': 'inc-0123456789abcdef0123' },
  priorLabels: { 'cordon.io/quarantine': null },
  holders: ['inc-0123456789abcdef0123'],
  expiresAt: T0 + 3_600_000,
  state: 'applied',
  enforcer: 'kubernetes',
  ref: { entity: 'pod:shop/cart-7f9c', kind: 'pod', name: 'cart-7f9c', namespace: 'shop', ip: '10.2.0.7' },
};

describe('CIM data models, field by field', () => {
  it('tags each record type for its models: incidents IDS and Alerts, findings Network Traffic, ledger records Change', () => {
    expect(modelsOf(incidentToCim(sampleIncident(), META))).toEqual([IDS.name, ALERTS.name]);
    expect(modelsOf(findingToCim(sampleFinding(), META))).toEqual([NETWORK_TRAFFIC.name]);
    expect(modelsOf(ledgerToCim(sampleLedger(1), META))).toEqual([CHANGE.name]);
    // a policy gap is a missing allow rule, not an attack
    expect(tagsOf('cordon:finding')).not.toContain('attack');
    expect(tagsOf('cordon:finding')).not.toContain('ids');
  });

  it('an incident has every field Intrusion Detection and Alerts require', () => {
    const e = incidentToCim(sampleIncident(), META);
    expect(cimProblems(e)).toEqual([]);
    expect(e.event).toMatchObject({ dvc: 'cordon-1', transport: 'tcp', src_port: 0, user: 'unknown', ids_type: 'network' });
    const inc = sampleIncident();
    expect(cimProblems(incidentToCim({ ...inc, counters: { ...inc.counters, allowed: 1 } }, META))).toEqual([]);
    // an incident known only by entity keys still names src and dest, without the internal form
    const bare = incidentToCim(
      sampleIncident({ root: 'ip:10.0.0.5', entities: [{ key: 'ip:10.0.0.5', kind: 'ip', role: 'workstation', roleSource: 'observed', position: 'root' }, { key: 'ip:10.0.0.9', kind: 'ip', role: 'server', roleSource: 'observed', position: 'target' }] }),
      META,
    );
    expect(cimProblems(bare)).toEqual([]);
    expect(bare.event).toMatchObject({ src: '10.0.0.5', src_ip: '10.0.0.5', dest: ['10.0.0.9'], dest_ip: ['10.0.0.9'] });
  });

  it('a policy-gap finding has every field Network Traffic requires, TCP, UDP, ICMPv6 or without addresses', () => {
    for (const f of [
      sampleFinding(),
      sampleFinding({ protocol: 'udp', port: 53 }),
      sampleFinding({ protocol: 'icmpv6', port: 0, src: { key: 'ip:fd00::7', ip: 'fd00::7' }, dst: { key: 'ip:fd00::9', ip: 'fd00::9' } }),
      sampleFinding({ src: { key: 'pod:shop/cart-7f9c' }, dst: { key: 'pod:shop/redis-0' }, policy: undefined }),
    ]) {
      const e = findingToCim(f, META);
      expect({ protocol: f.protocol, problems: cimProblems(e) }).toEqual({ protocol: f.protocol, problems: [] });
    }
    const v6 = findingToCim(sampleFinding({ protocol: 'icmpv6', src: { key: 'ip:fd00::7', ip: 'fd00::7' }, dst: { key: 'ip:fd00::9', ip: 'fd00::9' } }), META).event;
    expect(v6).toMatchObject({ transport: 'icmp', protocol: 'icmp', protocol_version: 'ipv6', src: 'fd00::7' });
    expect(findingToCim(sampleFinding(), META).event).toMatchObject({ action: 'blocked', app: 'unknown', dvc: 'cordon-1', src_port: 0, dest_port: 6379, transport: 'tcp', protocol: 'ip', protocol_version: 'ipv4', rule: 'shop-default-deny' });
    expect(findingToCim(sampleFinding({ service: 'database' }), META).event).toMatchObject({ app: 'database' });
  });

  it('every ledger action has every field Change requires', () => {
    for (const action of LEDGER_ACTIONS) {
      const lease = action.startsWith('quarantine_') ? { before: null, after: LEASE } : {};
      const e = ledgerToCim(sampleLedger(4, { action, ...lease }), META);
      expect({ action, problems: cimProblems(e) }).toEqual({ action, problems: [] });
    }
  });

  it('a failed quarantine reaches Change as status=failure with the reason as result, not as a success', () => {
    const e = ledgerToCim(
      sampleLedger(5, { action: 'quarantine_failed', target: LEASE.target, before: null, after: { ...LEASE, holders: [], state: 'failed' }, reason: 'kubernetes: 403 forbidden patching pod shop/cart-7f9c' }),
      META,
    );
    expect(e.event).toMatchObject({
      action: 'created',
      status: 'failure',
      result: 'kubernetes: 403 forbidden patching pod shop/cart-7f9c',
      change_type: 'containment',
      command: 'quarantine_failed',
      object: 'shop/cart-7f9c',
      object_id: 'pod:shop/cart-7f9c',
      object_category: 'pod',
      object_attrs: ['cordon.io/quarantine'],
      dest: '10.2.0.7',
      dvc: 'cordon-1',
      src: 'cordon-1',
      user: 'playbook:contain-lateral@3f2a',
      user_type: 'playbook',
    });
    const applied = ledgerToCim(sampleLedger(6, { action: 'quarantine_applied', target: LEASE.target, before: null, after: LEASE }), META).event;
    expect(applied).toMatchObject({ action: 'created', status: 'success' });
    expect(ledgerToCim(sampleLedger(7, { action: 'quarantine_released' }), META).event).toMatchObject({ action: 'deleted', status: 'success' });
    expect(ledgerToCim(sampleLedger(8, { action: 'quarantine_extended' }), META).event).toMatchObject({ action: 'modified', status: 'success' });
  });

  it('the checker itself catches a record that falls short', () => {
    const e = incidentToCim(sampleIncident(), META);
    const broken: HecEvent = { ...e, event: { ...(e.event as object), dvc: undefined, transport: '', action: 'quarantined', src_port: 'many' } };
    expect(cimProblems(broken)).toEqual([
      'Intrusion Detection (IDS_Attacks): dvc missing',
      'Intrusion Detection (IDS_Attacks): action=quarantined not in allowed|blocked',
      'Intrusion Detection (IDS_Attacks): transport missing',
      'Intrusion Detection (IDS_Attacks): src_port=many not a number',
    ]);
  });
});
