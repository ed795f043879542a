import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  DOC_KINDS,
  deadLetterToEcs,
  findingToEcs,
  incidentToEcs,
  indexName,
  indexTemplate,
  indexTemplates,
  ledgerToEcs,
  type DocKind,
  type EsAction,
} from '../../src/siem/ecs';
import { T0, sampleDeadLetter, sampleFinding, sampleIncident, sampleLedger } from './fixtures';

type Mapping = { type?: string; enabled?: boolean; properties?: Record<string, Mapping> };

/** Every leaf of a document must have a mapping (the templates are `dynamic: strict`). */
function unmappedPaths(doc: unknown, props: Record<string, Mapping>, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    const m = props[k];
    const path = prefix + k;
    if (!m) {
      out.push(path);
      continue;
    }
    if (m.enabled === false || m.type === 'flattened') continue;
    const values = Array.isArray(v) ? v : [v];
    for (const x of values) {
      if (x !== null && typeof x === 'object') {
        if (!m.properties) out.push(`${path} (object into ${m.type})`);
        else out.push(...unmappedPaths(x, m.properties, path + '.'));
      } else if (m.properties) out.push(`${path} (scalar into object)`);
    }
  }
  return out;
}

function mappingOf(kind: DocKind): Record<string, Mapping> {
  return indexTemplate('cordon', kind).template.mappings.properties as Record<string, Mapping>;
}

function typeAt(kind: DocKind, path: string): string | undefined {
  let props: Record<string, Mapping> | undefined = mappingOf(kind);
  let m: Mapping | undefined;
  for (const part of path.split('.')) {
    m = props?.[part];
    props = m?.properties;
  }
  return m?.type;
}

describe('ECS index templates', () => {
  it('names one index and template per kind under the prefix', () => {
    expect(DOC_KINDS.map((k) => indexName('cordon', k))).toEqual(['cordon-incidents', 'cordon-ledger', 'cordon-dlq', 'cordon-findings']);
    const t = indexTemplate('cordon-test', 'incident', { numberOfReplicas: 0 });
    expect(t.index_patterns).toEqual(['cordon-test-incidents', 'cordon-test-incidents-*']);
    expect(t.template.settings).toEqual({ number_of_shards: 1, number_of_replicas: 0 });
    expect(t.template.mappings.dynamic).toBe('strict');
  });

  it('maps ECS fields with ECS types', () => {
    const expected: [DocKind, string, string][] = [
      ['incident', '@timestamp', 'date'],
      ['incident', 'event.kind', 'keyword'],
      ['incident', 'event.category', 'keyword'],
      ['incident', 'event.severity', 'long'],
      ['incident', 'rule.name', 'keyword'],
      ['incident', 'threat.technique.id', 'keyword'],
      ['incident', 'threat.framework', 'keyword'],
      ['incident', 'source.ip', 'ip'],
      ['incident', 'destination.ip', 'ip'],
      ['incident', 'destination.port', 'long'],
      ['incident', 'host.name', 'keyword'],
      ['incident', 'related.ip', 'ip'],
      ['incident', 'related.hosts', 'keyword'],
      ['incident', 'message', 'text'],
      ['incident', 'cordon.incident.entities.ip', 'ip'],
      ['ledger', 'event.sequence', 'long'],
      ['ledger', 'cordon.ledger.hash', 'keyword'],
      ['dead_letter', 'event.original', 'keyword'],
      ['dead_letter', 'error.message', 'text'],
      ['dead_letter', 'cordon.source.partition', 'long'],
      ['dead_letter', 'cordon.source.timestamp', 'date'],
      ['finding', 'network.transport', 'keyword'],
    ];
    for (const [kind, path, type] of expected) expect(`${kind} ${path}: ${typeAt(kind, path)}`).toBe(`${kind} ${path}: ${type}`);
  });

  it('has a mapping for every field the documents carry (strict mappings refuse the rest)', () => {
    const docs: EsAction[] = [
      incidentToEcs(sampleIncident()),
      ledgerToEcs(sampleLedger(7)),
      deadLetterToEcs(sampleDeadLetter(1), { maxOriginalBytes: 1024, now: T0 }),
      deadLetterToEcs(sampleDeadLetter(2, Buffer.from([0xff, 0x00, 0xfe])), { maxOriginalBytes: 1024, now: T0 }),
      findingToEcs(sampleFinding()),
    ];
    for (const a of docs) expect({ kind: a.kind, unmapped: unmappedPaths(a.doc, mappingOf(a.kind)) }).toEqual({ kind: a.kind, unmapped: [] });
  });

  it('are exported to connectors/elasticsearch/templates (CORDON_UPDATE_CONNECTORS=1 rewrites them)', () => {
    const dir = join(__dirname, '../../connectors/elasticsearch/templates');
    for (const t of indexTemplates('cordon')) {
      const { name, ...body } = t;
      const file = join(dir, `${name}.json`);
      const text = JSON.stringify(body, null, 2) + '\n';
      if (process.env.CORDON_UPDATE_CONNECTORS === '1') {
        mkdirSync(dir, { recursive: true });
        writeFileSync(file, text);
      }
      expect(readFileSync(file, 'utf8')).toBe(text);
    }
  });
});

describe('ECS documents', () => {
  it('an incident is an alert with ECS network and threat fields; id and version make it replaceable', () => {
    const a = incidentToEcs(sampleIncident());
    expect(a).toMatchObject({ kind: 'incident', id: 'inc-0123456789abcdef0123', op: 'index', version: 3 });
    expect(a.doc).toMatchObject({
      '@timestamp': new Date(T0 + 90_000).toISOString(),
      message: expect.stringContaining('ws5'),
      event: {
        kind: 'alert',
        category: ['intrusion_detection', 'network'],
        action: 'lateral-movement-detected',
        severity: 73,
        risk_score: 42.5,
        risk_score_norm: 99,
        start: new Date(T0).toISOString(),
      },
      rule: { name: ['admin_port', 'propagation'], ruleset: 'cordon' },
      threat: {
        framework: 'MITRE ATT&CK',
        technique: { id: ['T1021', 'T1210'], name: ['Remote Services', 'Exploitation of Remote Services'] },
        tactic: { id: ['TA0008'], name: ['Lateral Movement'] },
      },
      source: { ip: '10.1.0.5', address: 'ws5' },
      destination: { ip: ['10.1.0.6', '10.1.0.10'], port: [445, 3389] },
      host: { name: 'ws5', ip: '10.1.0.5' },
      related: { ip: ['10.1.0.5', '10.1.0.6', '10.1.0.10'], hosts: ['ws5', 'dc1'] },
      cordon: { incident: { status: 'open', severity: 'high', version: 3, techniques: ['T1021.001', 'T1021.002', 'T1210'] } },
    });
    const threat = (a.doc.threat as { technique: { subtechnique: { id: string[] } } }).technique.subtechnique;
    expect(threat.id).toEqual(['T1021.001', 'T1021.002']);
    expect(incidentToEcs(sampleIncident({ status: 'contained' })).doc.event).toMatchObject({ action: 'containment-applied' });
  });

  it('leaves out what an incident does not have instead of writing nulls', () => {
    const a = incidentToEcs(sampleIncident({ techniques: [], entities: [] }));
    expect(a.doc.threat).toBeUndefined();
    expect(a.doc.source).toBeUndefined();
    expect(JSON.stringify(a.doc)).not.toContain('null');
  });

  it('a ledger record is a change event written once under its sequence number', () => {
    const a = ledgerToEcs(sampleLedger(7));
    expect(a).toMatchObject({ kind: 'ledger', id: '7', op: 'create' });
    expect(a.version).toBeUndefined();
    expect(a.doc).toMatchObject({
      '@timestamp': new Date(T0 + 7000).toISOString(),
      event: { kind: 'event', category: ['configuration'], type: ['change'], action: 'quarantine.apply', sequence: 7 },
      related: { user: ['playbook:contain-lateral@3f2a'], ip: ['10.1.0.6'] },
      cordon: { ledger: { seq: 7, target: 'ip:10.1.0.6', incident_id: 'inc-0123456789abcdef0123', after: { labels: { 'cordon.io/quarantine': 'inc-0123456789abcdef0123' } } } },
    });
    expect(ledgerToEcs(sampleLedger(1, { at: T0, target: { kind: 'pod', id: 'x' } })).doc).toMatchObject({
      '@timestamp': new Date(T0).toISOString(),
      cordon: { ledger: { target: '{"kind":"pod","id":"x"}' } },
    });
  });

  it('a dead letter keeps the original bytes, the reason and the Kafka coordinates; its id is topic-partition-offset', () => {
    const a = deadLetterToEcs(sampleDeadLetter(1234), { maxOriginalBytes: 1024, now: 0 });
    expect(a).toMatchObject({ kind: 'dead_letter', id: 'cordon.flows-2-1234', op: 'create' });
    expect(a.doc).toMatchObject({
      '@timestamp': new Date(T0 + 5000).toISOString(),
      event: { kind: 'pipeline_error', original: '{"id": "x", "time": ', reason: 'malformed_json' },
      error: { message: 'malformed JSON: Unexpected end of JSON input', type: 'malformed_json' },
      cordon: { source: { topic: 'cordon.flows', partition: 2, offset: '1234', timestamp: new Date(T0).toISOString(), format: 'auto', encoding: 'utf8', bytes: 20, truncated: false, key: 'host:ws5.corp' } },
    });
  });

  it('binary dead letters are base64, large ones are cut (with their full size and hash kept)', () => {
    const bin = deadLetterToEcs(sampleDeadLetter(1, Buffer.from([0xff, 0xfe, 0x00, 0x01])), { maxOriginalBytes: 1024, now: 0 });
    expect(bin.doc).toMatchObject({ event: { original: '//4AAQ==' }, cordon: { source: { encoding: 'base64', bytes: 4 } } });
    const big = Buffer.from('é'.repeat(600)); // 1200 bytes, 2 bytes a character
    const cut = deadLetterToEcs(sampleDeadLetter(2, big), { maxOriginalBytes: 301, now: 0 });
    const src = (cut.doc.cordon as { source: Record<string, unknown> }).source;
    expect(src).toMatchObject({ encoding: 'utf8', truncated: true, bytes: 1200 });
    expect((cut.doc.event as { original: string }).original).toBe('é'.repeat(150));
    expect(src.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('a dead letter without coordinates still gets a stable id from its bytes', () => {
    const a = deadLetterToEcs({ key: null, value: Buffer.from('zzz'), headers: {} }, { maxOriginalBytes: 100, now: T0 });
    const b = deadLetterToEcs({ key: null, value: Buffer.from('zzz') }, { maxOriginalBytes: 100, now: T0 + 1 });
    expect(a.id).toMatch(/^dlq-[0-9a-f]{32}$/);
    expect(b.id).toBe(a.id);
    expect(a.doc['@timestamp']).toBe(new Date(T0).toISOString());
  });

  it('a policy-gap finding is a low-severity alert versioned by its last sighting', () => {
    const f = sampleFinding();
    const a = findingToEcs(f);
    expect(a).toMatchObject({ kind: 'finding', id: f.id, op: 'index', version: f.lastSeen });
    expect(a.doc).toMatchObject({
      event: { kind: 'alert', severity: 21, action: 'policy-gap' },
      source: { ip: '10.2.0.7' },
      destination: { ip: '10.2.0.9', port: 6379 },
      network: { transport: 'tcp' },
    });
  });
});
