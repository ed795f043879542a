import type { Client, estypes } from '@elastic/elasticsearch';
import Redis from 'ioredis';
import { ElasticsearchSiemConfig } from '../../src/siem/config';
import { DOC_KINDS, type DocKind } from '../../src/siem/ecs';
import { SiemWriter, createElasticsearchClient, nodesHaveModule } from '../../src/siem/elasticsearch';
import { createEsClient } from '../../src/siem/es-client';
import { ES_URL, REDIS_URL, eventually, testLog, uniq } from '../support/stack';
import { sampleFinding, sampleIncident, sampleLedger } from './fixtures';

/**
 * The index patterns and the query of Elastic Security's prebuilt "External Alerts" rule
 * (elastic/detection-rules, rules/promotions/external_alerts.toml): a KQL query over these patterns,
 * run every minute on the last two minutes of `event.ingested` (its timestamp_override), with the
 * alert's name from `message`, its risk from `event.risk_score` and its severity from
 * `event.severity` (21 low, 47 medium, 73 high, 99 critical).
 */
const EXTERNAL_ALERTS_INDEX = ['apm-*-transaction*', 'traces-apm*', 'auditbeat-*', 'filebeat-*', 'logs-*', 'packetbeat-*', 'winlogbeat-*'];
// event.kind:alert and not event.module:(endgame or endpoint or cloud_defend) and
//   not data_stream.dataset:(m365_defender.alert or m365_defender.incident), as the query DSL Kibana sends
const EXTERNAL_ALERTS_QUERY: estypes.QueryDslQueryContainer = {
  bool: {
    filter: [{ term: { 'event.kind': 'alert' } }, { range: { 'event.ingested': { gte: 'now-2m', lte: 'now' } } }],
    must_not: [
      { terms: { 'event.module': ['endgame', 'endpoint', 'cloud_defend'] } },
      { terms: { 'data_stream.dataset': ['m365_defender.alert', 'm365_defender.incident'] } },
    ],
  },
};

type Hit = { _index: string; _id: string; _source?: Record<string, any> };

/** The real Elasticsearch of scripts/stack.sh (9.x, or 8.x under scripts/compat.sh); nothing mocked. */
describe('Cordon incidents as Elastic Security reads them', () => {
  jest.setTimeout(120_000);

  const prefix = uniq('cordon-sec').toLowerCase();
  // a namespace of its own: other runs' aliases (logs-cordon.incident-default) stay out of this test
  const namespace = uniq('t').toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const keyPrefix = uniq('siem-sec');
  const config = ElasticsearchSiemConfig.parse({
    enabled: true,
    url: ES_URL,
    indexPrefix: prefix,
    namespace,
    requestTimeoutMs: 5_000,
    bulk: { maxDocs: 25, pollIntervalMs: 100, refresh: 'wait_for' },
    retry: { initialMs: 100, maxMs: 1_000 },
  });
  let es: Client;
  let redis: Redis;
  let writer: SiemWriter;

  const index = (kind: DocKind) => writer.indexName(kind);
  const drained = () => eventually(async () => ((await writer.pending()) === 0 ? true : undefined), 30_000, 'the outbox to drain');

  // what a full Elasticsearch has built in: the `logs` template (logs-*-*) makes data streams; here
  // narrowed to this test's aliases, so the shared cluster's other users are not affected
  const dataStreamTemplate = `${prefix}-logs-ds`;

  beforeAll(async () => {
    es = createEsClient({ node: ES_URL });
    redis = new Redis(REDIS_URL);
    await es.indices.putIndexTemplate({ name: dataStreamTemplate, index_patterns: [`logs-cordon.*-${namespace}`], data_stream: {}, priority: 100 });
    writer = new SiemWriter({ client: createElasticsearchClient(config), redis, keyPrefix, config, log: testLog });
  });

  afterAll(async () => {
    await writer.stop({ drainTimeoutMs: 5_000 });
    await es.indices.delete({ index: DOC_KINDS.map(index), ignore_unavailable: true }).catch(() => undefined);
    for (const kind of DOC_KINDS) await es.indices.deleteIndexTemplate({ name: index(kind) }).catch(() => undefined);
    await es.indices.deleteIndexTemplate({ name: dataStreamTemplate }).catch(() => undefined);
    const keys = await redis.keys(`{${keyPrefix}:*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
    await es.close();
  });

  it('brings an index made by the previous template up to date: its alias and event.ingested', async () => {
    // cordon-incidents as template version 1 created it: no alias, no event.ingested, message as text
    await es.indices.create({
      index: index('incident'),
      mappings: { dynamic: 'strict', properties: { '@timestamp': { type: 'date' }, message: { type: 'text' }, event: { properties: { kind: { type: 'keyword' } } } } },
    });
    await writer.installTemplates();
    const aliases = await es.indices.getAlias({ index: index('incident') });
    expect(Object.keys(aliases[index('incident')]!.aliases)).toEqual([writer.aliasName('incident')]);
    const mapping = await es.indices.getMapping({ index: index('incident') });
    const props = mapping[index('incident')]!.mappings.properties as Record<string, any>;
    expect(props.event.properties.ingested.type).toBe('date');
    expect(props.message.type).toBe('text');
  });

  it('gives new indices the alias logs-cordon.<dataset>-<namespace> (beside a data-stream template for logs-*) and message the type the cluster has', async () => {
    writer.start();
    await writer.enqueue([{ kind: 'ledger', record: sampleLedger(1) }, { kind: 'finding', finding: sampleFinding() }]);
    await drained();
    for (const kind of ['ledger', 'finding'] as const) {
      const got = await es.indices.getAlias({ name: writer.aliasName(kind) });
      expect(Object.keys(got)).toEqual([index(kind)]);
    }
    expect(writer.aliasName('ledger')).toBe(`logs-cordon.ledger-${namespace}`);
    // the names resolve to aliases of Cordon's indices, not to data streams
    const resolved = await es.indices.resolveIndex({ name: `logs-cordon.*-${namespace}` });
    expect(resolved.data_streams).toEqual([]);
    expect(resolved.aliases.map((a) => [a.name, a.indices])).toEqual(
      expect.arrayContaining([[writer.aliasName('ledger'), [index('ledger')]], [writer.aliasName('finding'), [index('finding')]]]),
    );
    const info = await es.nodes.info({ metric: 'plugins' });
    const expected = nodesHaveModule(info as Parameters<typeof nodesHaveModule>[0], 'mapper-extras') ? 'match_only_text' : 'text';
    const mapping = await es.indices.getMapping({ index: index('finding') });
    expect((mapping[index('finding')]!.mappings.properties as Record<string, any>).message.type).toBe(expected);
  });

  it('a Detection Engine query of the External Alerts rule over logs-* finds the Cordon incident', async () => {
    const id = 'inc-elastic-security-01';
    await writer.enqueue({ kind: 'incident', incident: sampleIncident({ id, severity: 'critical', score: 250, confidence: 0.999 }) });
    await drained();

    const res = await es.search({ index: EXTERNAL_ALERTS_INDEX, ignore_unavailable: true, allow_no_indices: true, query: EXTERNAL_ALERTS_QUERY, size: 1000 });
    const ours = (res.hits.hits as Hit[]).filter((h) => h._index.startsWith(prefix));
    // the finding (also event.kind alert) and the incident, not the ledger record (event.kind event)
    expect(ours.map((h) => h._id).sort()).toEqual([id, sampleFinding().id].sort());
    const hit = ours.find((h) => h._id === id)!;
    // the index the first test upgraded in place
    expect(hit._index).toBe(index('incident'));
    const src = hit._source!;
    expect(typeof src.message).toBe('string'); // rule_name_override
    expect(src.event.risk_score).toBeGreaterThanOrEqual(0);
    expect(src.event.risk_score).toBeLessThanOrEqual(100); // risk_score_mapping: Kibana drops anything else
    expect(src.event.risk_score).toBe(100);
    expect([21, 47, 73, 99]).toContain(src.event.severity); // severity_mapping
    expect(src.event.severity).toBe(99);
    expect(Date.now() - Date.parse(src.event.ingested)).toBeLessThan(120_000);
    expect(src.source).toEqual({ ip: '10.1.0.5', address: 'ws5' });
    expect(src.destination).toEqual({ ip: '10.1.0.6', address: '10.1.0.6', port: 445 });
    expect(src.rule.name).toBe('Cordon lateral movement');

    // a newer version of the incident is ingested again, so the rule's next run sees the update
    await new Promise((r) => setTimeout(r, 20));
    await writer.enqueue({ kind: 'incident', incident: sampleIncident({ id, version: 4, status: 'contained', severity: 'critical', confidence: 0.999 }) });
    await drained();
    const again = await es.get<Record<string, any>>({ index: writer.aliasName('incident'), id });
    expect(again._source!.event.action).toBe('containment-applied');
    expect(Date.parse(again._source!.event.ingested)).toBeGreaterThan(Date.parse(src.event.ingested));
  });

  it('the alias is searchable by name too, as a SOC would name it in a custom rule', async () => {
    const res = await es.search({ index: writer.aliasName('incident'), query: { term: { 'event.kind': 'alert' } } });
    expect((res.hits.hits as Hit[]).map((h) => h._id)).toEqual(['inc-elastic-security-01']);
    const fields = ['event.ingested', 'event.risk_score', 'source.address', 'destination.port'];
    const caps = await es.fieldCaps({ index: `logs-cordon.*-${namespace}`, fields });
    // one type per field across all of Cordon's indices behind the aliases
    expect(Object.fromEntries(fields.map((f) => [f, Object.keys(caps.fields[f] ?? {})]))).toEqual({
      'event.ingested': ['date'],
      'event.risk_score': ['float'],
      'source.address': ['keyword'],
      'destination.port': ['long'],
    });
  });
});
