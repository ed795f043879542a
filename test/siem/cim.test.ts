import { changeAction, deadLetterToCim, findingToCim, hecTime, incidentToCim, ledgerToCim, type HecMeta } from '../../src/siem/cim';
import { T0, sampleDeadLetter, sampleFinding, sampleIncident, sampleLedger } from './fixtures';

const META: HecMeta = {
  index: 'cordon',
  host: 'cordon-1',
  source: 'cordon',
  sourcetypes: { incident: 'cordon:incident', ledger: 'cordon:ledger', deadLetter: 'cordon:dlq', finding: 'cordon:finding' },
};

/** HEC refuses index-time fields that are not strings or string arrays (code 15). */
function fieldsAreStrings(fields: Record<string, unknown> | undefined): boolean {
  return Object.values(fields ?? {}).every((v) => typeof v === 'string' || (Array.isArray(v) && v.every((x) => typeof x === 'string')));
}

describe('CIM mapping for Splunk HEC', () => {
  it('time is epoch seconds with a millisecond fraction', () => {
    expect(hecTime(1714816800123)).toBe(1714816800.123);
    expect(JSON.stringify({ time: hecTime(T0 + 7) })).toBe(`{"time":${(T0 + 7) / 1000}}`);
  });

  it('an incident is an intrusion-detection alert with CIM field names', () => {
    const e = incidentToCim(sampleIncident(), META);
    expect(e).toMatchObject({
      time: (T0 + 90_000) / 1000,
      host: 'cordon-1',
      source: 'cordon',
      sourcetype: 'cordon:incident',
      index: 'cordon',
      fields: { cordon_kind: 'incident', cordon_incident_id: 'inc-0123456789abcdef0123', cordon_severity: 'high' },
    });
    expect(e.event).toMatchObject({
      vendor_product: 'Cordon',
      type: 'alert',
      ids_type: 'network',
      signature: 'Cordon lateral movement',
      signature_id: 'cordon:lateral_movement',
      category: ['lateral_movement', 'admin_port', 'propagation'],
      severity: 'high',
      severity_id: 73,
      action: 'blocked',
      status: 'open',
      src: 'ws5',
      src_ip: '10.1.0.5',
      dest: ['10.1.0.6', 'dc1'],
      dest_ip: ['10.1.0.6', '10.1.0.10'],
      dest_port: [445, 3389],
      mitre_technique_id: ['T1021.001', 'T1021.002', 'T1210'],
      mitre_tactic: ['Lateral Movement'],
      description: expect.stringContaining('ws5'),
    });
    expect(fieldsAreStrings(e.fields)).toBe(true);
  });

  it('an incident whose attack traffic got through is action=allowed', () => {
    const inc = sampleIncident();
    const e = incidentToCim({ ...inc, counters: { ...inc.counters, allowed: 2 } }, META);
    expect((e.event as { action: string }).action).toBe('allowed');
  });

  it('a ledger record is a CIM change event', () => {
    const e = ledgerToCim(sampleLedger(9), META);
    expect(e).toMatchObject({ sourcetype: 'cordon:ledger', time: (T0 + 9000) / 1000, fields: { cordon_kind: 'ledger', cordon_seq: '9' } });
    expect(e.event).toMatchObject({
      action: 'created',
      command: 'quarantine.apply',
      object: '10.1.0.6',
      object_id: 'ip:10.1.0.6',
      object_category: 'ip',
      dest: '10.1.0.6',
      user: 'playbook:contain-lateral@3f2a',
      status: 'success',
      vendor_product: 'Cordon',
      seq: 9,
    });
    expect(fieldsAreStrings(e.fields)).toBe(true);
    expect(changeAction('quarantine.release')).toBe('deleted');
    expect(changeAction('lease.expired')).toBe('deleted');
    expect(changeAction('approval.granted')).toBe('modified');
  });

  it('a dead letter carries its original bytes, the reason and the coordinates', () => {
    const e = deadLetterToCim(sampleDeadLetter(55), META, { maxOriginalBytes: 1024, now: 0 });
    expect(e).toMatchObject({ sourcetype: 'cordon:dlq', time: (T0 + 5000) / 1000, fields: { cordon_kind: 'dead_letter', cordon_reason: 'malformed_json' } });
    expect(e.event).toMatchObject({
      id: 'cordon.flows-2-55',
      reason: 'malformed JSON: Unexpected end of JSON input',
      source_topic: 'cordon.flows',
      source_partition: 2,
      source_offset: '55',
      original: '{"id": "x", "time": ',
      original_encoding: 'utf8',
    });
  });

  it('a policy-gap finding is low-severity blocked traffic', () => {
    const e = findingToCim(sampleFinding(), META);
    expect(e.event).toMatchObject({ severity: 'low', signature_id: 'cordon:policy_gap', src_ip: '10.2.0.7', dest_ip: '10.2.0.9', dest_port: 6379, transport: 'tcp', action: 'blocked' });
  });
});
