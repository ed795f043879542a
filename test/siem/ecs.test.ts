import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  DOC_KINDS,
  aliasName,
  deadLetterToEcs,
  findingToEcs,
  incidentToEcs,
  indexName,
  indexTemplate,
  indexTemplates,
  ledgerToEcs,
  primaryDestination,
  riskScore,
  withIngested,
  type DocKind,
  type EsAction,
} from '../../src/siem/ecs';
import { entityAddress } from '../../src/siem/inputs';
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

function mappingOf(kind: DocKind, matchOnlyText = true): Record<string, Mapping> {
  return indexTemplate('cordon', kind, { matchOnlyText }).template.mappings.properties as Record<string, Mapping>;
}

/** Every leaf field of a mapping, with its type. */
function leaves(props: Record<string, Mapping>, prefix = ''): [string, string][] {
  return Object.entries(props).flatMap(([k, m]) => (m.properties ? leaves(m.properties, `${prefix}${k}.`) : [[`${prefix}${k}`, m.type ?? 'object'] as [string, string]]));
}

/**
 * The ECS types of the ECS fields Cordon writes, as ECS publishes them in
 * https://github.com/elastic/ecs/tree/main/generated/elasticsearch/composable/component
 * (base.json, event.json, error.json, rule.json, related.json, source.json, destination.json,
 * host.json, network.json, observer.json, threat.json, ecs.json; ECS 8.6 and later).
 */
const ECS_TYPES: Record<string, string> = {
  '@timestamp': 'date',
  message: 'match_only_text',
  tags: 'keyword',
  'ecs.version': 'keyword',
  ...Object.fromEntries(['kind', 'category', 'type', 'action', 'id', 'dataset', 'module', 'provider', 'reason', 'outcome', 'reference'].map((f) => [`event.${f}`, 'keyword'])),
  'event.severity': 'long',
  'event.risk_score': 'float',
  'event.risk_score_norm': 'float',
  'event.start': 'date',
  'event.end': 'date',
  'event.created': 'date',
  'event.ingested': 'date',
  'event.sequence': 'long',
  'event.original': 'keyword',
  ...Object.fromEntries(['vendor', 'product', 'type', 'name'].map((f) => [`observer.${f}`, 'keyword'])),
  'related.ip': 'ip',
  'related.hosts': 'keyword',
  'related.user': 'keyword',
  'related.hash': 'keyword',
  ...Object.fromEntries(['source', 'destination'].flatMap((s) => [[`${s}.ip`, 'ip'], [`${s}.address`, 'keyword'], [`${s}.domain`, 'keyword'], [`${s}.port`, 'long']])),
  'host.name': 'keyword',
  'host.ip': 'ip',
  'network.transport': 'keyword',
  ...Object.fromEntries(['name', 'id', 'ruleset', 'category'].map((f) => [`rule.${f}`, 'keyword'])),
  'error.message': 'match_only_text',
  'error.type': 'keyword',
  'threat.framework': 'keyword',
  ...Object.fromEntries(
    ['technique', 'technique.subtechnique', 'tactic'].flatMap((t) => ['id', 'name', 'reference'].map((f) => [`threat.${t}.${f}`, 'keyword'])),
  ),
};

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
  it('names one index and template per kind under the prefix, each aliased logs-cordon.<dataset>-<namespace>', () => {
    expect(DOC_KINDS.map((k) => indexName('cordon', k))).toEqual(['cordon-incidents', 'cordon-ledger', 'cordon-dlq', 'cordon-findings']);
    expect(DOC_KINDS.map((k) => aliasName(k))).toEqual(['logs-cordon.incident-default', 'logs-cordon.ledger-default', 'logs-cordon.dlq-default', 'logs-cordon.finding-default']);
    const t = indexTemplate('cordon-test', 'incident', { numberOfReplicas: 0, namespace: 'prod' });
    expect(t.index_patterns).toEqual(['cordon-test-incidents', 'cordon-test-incidents-*']);
    expect(t.template.aliases).toEqual({ 'logs-cordon.incident-prod': {} });
    // the concrete index names stay outside logs-*-*, whose built-in template would make them data streams
    for (const k of DOC_KINDS) expect(indexName('cordon', k)).not.toMatch(/^logs-[^-]+-/);
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
      ['incident', 'message', 'match_only_text'],
      ['incident', 'event.ingested', 'date'],
      ['incident', 'event.risk_score', 'float'],
      ['incident', 'source.address', 'keyword'],
      ['incident', 'cordon.incident.ports', 'long'],
      ['incident', 'cordon.incident.entities.ip', 'ip'],
      ['ledger', 'event.sequence', 'long'],
      ['ledger', 'cordon.ledger.hash', 'keyword'],
      ['dead_letter', 'event.original', 'keyword'],
      ['dead_letter', 'error.message', 'match_only_text'],
      ['dead_letter', 'cordon.source.partition', 'long'],
      ['dead_letter', 'cordon.source.timestamp', 'date'],
      ['finding', 'network.transport', 'keyword'],
    ];
    for (const [kind, path, type] of expected) expect(`${kind} ${path}: ${typeAt(kind, path)}`).toBe(`${kind} ${path}: ${type}`);
  });

  it('gives every ECS field the type ECS publishes for it; only cordon.* is Cordon\'s own', () => {
    for (const kind of DOC_KINDS) {
      const wrong = leaves(mappingOf(kind))
        .filter(([path]) => !path.startsWith('cordon.'))
        .filter(([path, type]) => ECS_TYPES[path] !== type)
        .map(([path, type]) => `${kind} ${path}: ${type}, ECS ${ECS_TYPES[path] ?? '(not an ECS field)'}`);
      expect(wrong).toEqual([]);
    }
  });

  it('maps messages as text on a cluster without match_only_text (no mapper-extras module)', () => {
    expect(mappingOf('incident', false).message).toEqual({ type: 'text' });
    expect(mappingOf('dead_letter', false).error!.properties!.message).toEqual({ type: 'text' });
    expect(leaves(mappingOf('ledger', false)).filter(([, t]) => t === 'match_only_text')).toEqual([]);
  });

  it('has a mapping for every field the documents carry (strict mappings refuse the rest)', () => {
    const docs: EsAction[] = [
      incidentToEcs(sampleIncident()),
      ledgerToEcs(sampleLedger(7)),
      deadLetterToEcs(sampleDeadLetter(1), { maxOriginalBytes: 1024, now: T0 }),
      deadLetterToEcs(sampleDeadLetter(2, Buffer.from([0xff, 0x00, 0xfe])), { maxOriginalBytes: 1024, now: T0 }),
      findingToEcs(sampleFinding()),
    ].map((a) => ({ ...a, doc: withIngested(a.doc, T0) }));
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
        dataset: 'cordon.incident',
        severity: 73,
        // high band 48-73, confidence 0.987
        risk_score: 73,
        risk_score_norm: 73,
        start: new Date(T0).toISOString(),
      },
      rule: { name: 'Cordon lateral movement', id: 'cordon:lateral_movement', ruleset: 'cordon' },
      threat: {
        framework: 'MITRE ATT&CK',
        technique: { id: ['T1021', 'T1210'], name: ['Remote Services', 'Exploitation of Remote Services'] },
        tactic: { id: ['TA0008'], name: ['Lateral Movement'] },
      },
      source: { ip: '10.1.0.5', address: 'ws5' },
      // the busiest hop: ws5 -> 10.1.0.6 (12 attempts), its most attempted port 445
      destination: { ip: '10.1.0.6', address: '10.1.0.6', port: 445 },
      host: { name: 'ws5', ip: '10.1.0.5' },
      related: { ip: ['10.1.0.5', '10.1.0.6', '10.1.0.10'], hosts: ['ws5', 'dc1'] },
      cordon: {
        incident: {
          status: 'open',
          severity: 'high',
          version: 3,
          techniques: ['T1021.001', 'T1021.002', 'T1210'],
          ports: [445, 3389],
          targets: ['10.1.0.6', 'dc1'],
          evidence: { rules: ['admin_port', 'propagation'] },
        },
      },
    });
    const threat = (a.doc.threat as { technique: { subtechnique: { id: string[] } } }).technique.subtechnique;
    expect(threat.id).toEqual(['T1021.001', 'T1021.002']);
    expect(incidentToEcs(sampleIncident({ status: 'contained' })).doc.event).toMatchObject({ action: 'containment-applied' });
  });

  it('puts one value where ECS expects one: destination.*, rule.name, source.*', () => {
    const doc = incidentToEcs(sampleIncident()).doc as Record<string, Record<string, unknown>>;
    for (const f of ['ip', 'address', 'port'] as const) expect(Array.isArray(doc.destination![f])).toBe(false);
    for (const f of ['ip', 'address'] as const) expect(Array.isArray(doc.source![f])).toBe(false);
    expect(typeof doc.rule!.name).toBe('string');
    const gap = findingToEcs(sampleFinding()).doc as Record<string, Record<string, unknown>>;
    expect(gap.rule).toMatchObject({ name: 'Cordon policy gap', id: 'cordon:policy_gap' });
  });

  it('never writes an internal entity key as source.address or destination.address', () => {
    // entities known only by their key: no name, no ip field
    const inc = sampleIncident({
      root: 'ip:10.0.0.5',
      entities: [
        { key: 'ip:10.0.0.5', kind: 'ip', role: 'workstation', roleSource: 'observed', position: 'root' },
        { key: 'pod:shop/cart-7f9c', kind: 'pod', role: 'server', roleSource: 'observed', position: 'target' },
      ],
      path: { nodes: ['ip:10.0.0.5', 'pod:shop/cart-7f9c'], edges: [{ from: 'ip:10.0.0.5', to: 'pod:shop/cart-7f9c', ports: [22], services: ['ssh'], denied: 3, allowed: 0, anomalies: [], firstSeen: T0, lastSeen: T0 }], edgesDropped: 0 },
    });
    const doc = incidentToEcs(inc).doc as Record<string, Record<string, unknown>>;
    expect(doc.source).toEqual({ ip: '10.0.0.5', address: '10.0.0.5' });
    expect(doc.destination).toEqual({ address: 'shop/cart-7f9c', port: 22 });
    expect(doc.host).toEqual({ name: '10.0.0.5', ip: '10.0.0.5' });
    const gap = findingToEcs(sampleFinding({ src: { key: 'ip:10.2.0.8' }, dst: { key: 'host:db1.corp' } })).doc as Record<string, Record<string, unknown>>;
    expect(gap.source).toEqual({ ip: '10.2.0.8', address: '10.2.0.8' });
    expect(gap.destination).toMatchObject({ address: 'db1.corp' });
    expect(entityAddress({ key: 'host:ws5.corp', name: 'ws5' })).toBe('ws5');
    expect(entityAddress({ key: 'weird' })).toBe('weird');
  });

  it('bounds event.risk_score to 0-100, inside the Elastic band of the severity', () => {
    expect(riskScore('low', 0)).toBe(0);
    expect(riskScore('low', 1)).toBe(21);
    expect(riskScore('medium', 0.5)).toBe(35);
    expect(riskScore('critical', 1)).toBe(100);
    expect(riskScore('critical', 7)).toBe(100);
    expect(riskScore('high', Number.NaN)).toBe(48);
    // however large the score, the alert stays within what Kibana reads
    const huge = incidentToEcs(sampleIncident({ severity: 'critical', score: 5_000, confidence: 1 })).doc.event as Record<string, number>;
    expect(huge.risk_score).toBe(100);
    expect(huge.risk_score_norm).toBe(100);
    expect((incidentToEcs(sampleIncident({ severity: 'critical', score: 5_000 })).doc.cordon as { incident: { score: number } }).incident.score).toBe(5_000);
  });

  it('stamps event.ingested without touching the rest of the document', () => {
    const a = ledgerToEcs(sampleLedger(3));
    const stamped = withIngested(a.doc, T0 + 1234);
    expect((stamped.event as Record<string, unknown>).ingested).toBe(new Date(T0 + 1234).toISOString());
    expect((stamped.event as Record<string, unknown>).sequence).toBe(3);
    expect((a.doc.event as Record<string, unknown>).ingested).toBeUndefined();
  });

  it('picks the destination of an incident without edges from its targets', () => {
    const inc = sampleIncident({ path: { nodes: [], edges: [], edgesDropped: 0 } });
    expect(primaryDestination(inc).entity?.key).toBe('ip:10.1.0.6');
    expect(primaryDestination(inc).port).toBeUndefined();
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
      event: { kind: 'alert', severity: 21, action: 'policy-gap', dataset: 'cordon.finding' },
      source: { ip: '10.2.0.7', address: 'cart-7f9c' },
      destination: { ip: '10.2.0.9', address: 'redis-0', port: 6379 },
      network: { transport: 'tcp' },
    });
    expect(findingToEcs(sampleFinding({ protocol: 'icmpv6', port: 0 })).doc.network).toEqual({ transport: 'ipv6-icmp' });
    expect(findingToEcs(sampleFinding({ protocol: 'other' })).doc.network).toEqual({});
  });
});
