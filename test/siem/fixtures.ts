import type { Incident } from '../../src/correlate/incident';
import { policyGapFinding, type PolicyGapFinding } from '../../src/correlate/policy-gap';
import { deadLetter } from '../../src/ingest/dead-letter';
import type { DeadLetterLike, LedgerRecordLike } from '../../src/siem/inputs';

export const T0 = Date.UTC(2026, 4, 4, 10, 0, 0);

/** A small lateral-movement incident: ws5 tries SMB and RDP on two servers, one of which moves on. */
export function sampleIncident(over: Partial<Incident> = {}): Incident {
  return {
    id: 'inc-0123456789abcdef0123',
    status: 'open',
    severity: 'high',
    score: 42.5,
    confidence: 0.987,
    root: 'host:ws5.corp',
    entities: [
      { key: 'host:ws5.corp', kind: 'host', name: 'ws5', ip: '10.1.0.5', role: 'workstation', roleSource: 'label', position: 'root' },
      { key: 'ip:10.1.0.6', kind: 'ip', ip: '10.1.0.6', role: 'server', roleSource: 'observed', position: 'pivot' },
      { key: 'host:dc1.corp', kind: 'host', name: 'dc1', ip: '10.1.0.10', role: 'domain_controller', roleSource: 'label', position: 'target' },
    ],
    path: {
      nodes: ['host:ws5.corp', 'ip:10.1.0.6', 'host:dc1.corp'],
      edges: [
        { from: 'host:ws5.corp', to: 'ip:10.1.0.6', ports: [445, 3389], services: ['rdp', 'smb'], denied: 12, allowed: 0, anomalies: [], firstSeen: T0, lastSeen: T0 + 60_000 },
        { from: 'ip:10.1.0.6', to: 'host:dc1.corp', ports: [445], services: ['smb'], denied: 3, allowed: 0, anomalies: ['new_edge'], firstSeen: T0 + 30_000, lastSeen: T0 + 90_000 },
      ],
      edgesDropped: 0,
    },
    techniques: ['T1021.001', 'T1021.002', 'T1210'],
    evidence: {
      items: [
        { rule: 'admin_port', weight: 30, count: 12, firstSeen: T0, lastSeen: T0 + 60_000, src: 'host:ws5.corp', dst: 'ip:10.1.0.6', port: 445, service: 'smb', reason: 'denied SMB' },
        { rule: 'propagation', weight: 12.5, count: 1, firstSeen: T0 + 30_000, lastSeen: T0 + 30_000, src: 'ip:10.1.0.6', dst: 'host:dc1.corp', reason: 'target moved on' },
      ],
      total: 15,
      dropped: 0,
      byRule: { admin_port: { count: 12, weight: 30 }, propagation: { count: 3, weight: 12.5 } },
    },
    counters: { denied: 15, allowed: 0, anomalies: 1, entitiesDropped: 0 },
    windowStart: T0,
    firstSeen: T0,
    lastSeen: T0 + 90_000,
    version: 3,
    summary: 'ws5 (10.1.0.5, workstation) attempted SMB/RDP against 2 hosts; 15 denied connections; high severity, score 42.5 (T1021.001, T1021.002, T1210).',
    ...over,
  };
}

export function sampleLedger(seq: number, over: Partial<LedgerRecordLike> = {}): LedgerRecordLike {
  return {
    seq,
    prevHash: seq === 0 ? '0'.repeat(64) : `${(seq - 1).toString(16).padStart(64, 'a')}`,
    hash: seq.toString(16).padStart(64, 'b'),
    at: new Date(T0 + seq * 1000).toISOString(),
    actor: 'playbook:contain-lateral@3f2a',
    action: 'quarantine.apply',
    target: 'ip:10.1.0.6',
    before: { labels: { 'cordon.io/quarantine': null } },
    after: { labels: { 'cordon.io/quarantine': 'inc-0123456789abcdef0123' } },
    reason: 'high severity lateral movement; playbook contain-lateral',
    incidentId: 'inc-0123456789abcdef0123',
    ...over,
  };
}

/** A dead letter as the ingest stage writes it (src/ingest/dead-letter.ts), read back as Kafka gives it. */
export function sampleDeadLetter(offset: number, value: Buffer = Buffer.from('{"id": "x", "time": '), topic = 'cordon.flows'): DeadLetterLike {
  const m = deadLetter(
    { key: Buffer.from('host:ws5.corp'), value, headers: { 'x-origin': 'sensor-1' } },
    { topic, partition: 2, offset: String(offset), timestamp: String(T0) },
    'malformed JSON: Unexpected end of JSON input',
    'auto',
    T0 + 5_000,
  );
  return { key: m.key as Buffer, value: m.value as Buffer, headers: m.headers };
}

export function sampleFinding(over: Partial<Parameters<typeof policyGapFinding>[0]> = {}): PolicyGapFinding {
  return policyGapFinding({
    src: { key: 'pod:shop/cart-7f9c', name: 'cart-7f9c', ip: '10.2.0.7' },
    dst: { key: 'pod:shop/redis-0', name: 'redis-0', ip: '10.2.0.9' },
    port: 6379,
    protocol: 'tcp',
    service: 'other',
    attempts: 5400,
    firstSeen: T0,
    lastSeen: T0 + 3 * 3600_000,
    policy: { id: 'np-1', name: 'shop-default-deny' },
    ...over,
  });
}
