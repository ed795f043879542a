import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Client } from '@elastic/elasticsearch';
import { createEsClient } from '../../src/siem/es-client';
import Redis from 'ioredis';
import { ElasticsearchSiemConfig } from '../../src/siem/config';
import { DOC_KINDS } from '../../src/siem/ecs';
import { SiemWriter, createElasticsearchClient } from '../../src/siem/elasticsearch';
import { ES_URL, REDIS_URL, eventually, testLog, uniq } from '../support/stack';
import { T0, sampleDeadLetter, sampleFinding, sampleIncident, sampleLedger } from './fixtures';

const run = promisify(execFile);
const REPO = join(__dirname, '../..');

/** The real Elasticsearch of scripts/stack.sh, and a real Redis; nothing here is mocked. */
describe('SiemWriter against the real Elasticsearch and Redis', () => {
  jest.setTimeout(600_000);

  const prefix = uniq('cordon-test').toLowerCase();
  const keyPrefix = uniq('siem');
  const config = ElasticsearchSiemConfig.parse({
    enabled: true,
    url: ES_URL,
    indexPrefix: prefix,
    requestTimeoutMs: 5_000,
    bulk: { maxDocs: 25, pollIntervalMs: 100, refresh: 'wait_for' },
    retry: { initialMs: 100, maxMs: 1_000 },
    outbox: { heartbeatTtlMs: 15_000 },
  });
  let es: Client;
  let redis: Redis;
  let writer: SiemWriter;
  let esStopped = false;

  const index = (kind: (typeof DOC_KINDS)[number]) => writer.indexName(kind);
  const drained = (what = 'the outbox to drain', ms = 30_000) =>
    eventually(async () => ((await writer.pending()) === 0 ? true : undefined), ms, what);

  beforeAll(async () => {
    es = createEsClient({ node: ES_URL });
    redis = new Redis(REDIS_URL);
    writer = new SiemWriter({ client: createElasticsearchClient(config), redis, keyPrefix, config, log: testLog });
    writer.start();
  });

  afterAll(async () => {
    if (esStopped) await run('bash', ['scripts/stack.sh', 'up', 'elasticsearch'], { cwd: REPO }).catch(() => undefined);
    await writer.stop({ drainTimeoutMs: 5_000 });
    await es.indices.delete({ index: DOC_KINDS.map(index), ignore_unavailable: true }).catch(() => undefined);
    for (const kind of DOC_KINDS) await es.indices.deleteIndexTemplate({ name: index(kind) }).catch(() => undefined);
    const keys = await redis.keys(`{${keyPrefix}:*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
    await es.close();
  });

  it('installs ECS index templates and the indices take their mappings', async () => {
    await writer.installTemplates();
    const { index_templates } = await es.indices.getIndexTemplate({ name: index('incident') });
    expect(index_templates[0]!.index_template.index_patterns).toEqual([index('incident'), `${index('incident')}-*`]);

    await writer.enqueue({ kind: 'incident', incident: sampleIncident({ id: 'inc-mapping-probe' }) });
    await drained();
    const mapping = await es.indices.getMapping({ index: index('incident') });
    const props = mapping[index('incident')]!.mappings.properties as Record<string, { type?: string; properties?: Record<string, { type?: string }> }>;
    expect(props['@timestamp']!.type).toBe('date');
    expect(props.event!.properties!.kind!.type).toBe('keyword');
    expect(props.event!.properties!.severity!.type).toBe('long');
    expect(props.source!.properties!.ip!.type).toBe('ip');
    expect(props.destination!.properties!.ip!.type).toBe('ip');
    expect(props.related!.properties!.ip!.type).toBe('ip');
    expect(props.threat!.properties!.technique!.type ?? 'object').toBe('object');
    expect(mapping[index('incident')]!.mappings.dynamic).toBe('strict');
    const settings = await es.indices.getSettings({ index: index('incident') });
    expect(settings[index('incident')]!.settings!.index!.number_of_replicas).toBe('0');
  });

  it('keeps one document per incident: a newer version replaces it, an older replay does not', async () => {
    const id = 'inc-versioned-0001';
    await writer.enqueue({ kind: 'incident', incident: sampleIncident({ id, version: 3, status: 'open' }) });
    await drained();
    await writer.enqueue({ kind: 'incident', incident: sampleIncident({ id, version: 5, status: 'contained', score: 61 }) });
    await drained();
    const duplicatesBefore = writer.counters.duplicates;
    await writer.enqueue({ kind: 'incident', incident: sampleIncident({ id, version: 4, status: 'containing', score: 50 }) });
    await drained();
    expect(writer.counters.duplicates).toBe(duplicatesBefore + 1);

    const doc = await es.get<Record<string, any>>({ index: index('incident'), id });
    expect(doc._version).toBe(5);
    expect(doc._source!.cordon.incident).toMatchObject({ version: 5, status: 'contained', score: 61 });
    expect(doc._source!.event.action).toBe('containment-applied');
    const { count } = await es.count({ index: index('incident'), query: { term: { 'cordon.incident.id': id } } });
    expect(count).toBe(1);
  });

  it('writes ledger records once by sequence number and dead letters once by topic-partition-offset, searchable by ECS fields', async () => {
    await writer.enqueue([1, 2, 3].map((seq) => ({ kind: 'ledger' as const, record: sampleLedger(seq) })));
    await writer.enqueue([{ kind: 'dead_letter', letter: sampleDeadLetter(1001) }, { kind: 'dead_letter', letter: sampleDeadLetter(1002, Buffer.from([0xff, 0, 1])) }]);
    await writer.enqueue({ kind: 'finding', finding: sampleFinding() });
    await drained();
    // replays of the same records change nothing
    await writer.enqueue([{ kind: 'ledger', record: sampleLedger(2) }, { kind: 'dead_letter', letter: sampleDeadLetter(1001) }]);
    await drained();

    const ledger = await es.search<Record<string, any>>({
      index: index('ledger'),
      query: { bool: { filter: [{ term: { 'event.action': 'quarantine.apply' } }, { range: { 'event.sequence': { gte: 2 } } }] } },
      sort: [{ 'event.sequence': 'asc' }],
      version: true,
    });
    expect(ledger.hits.hits.map((h) => [h._id, h._version, h._source!.event.sequence])).toEqual([
      ['2', 1, 2],
      ['3', 1, 3],
    ]);
    const byTime = await es.count({ index: index('ledger'), query: { range: { '@timestamp': { gte: new Date(T0).toISOString() } } } });
    expect(byTime.count).toBe(3);
    const byIp = await es.count({ index: index('ledger'), query: { term: { 'related.ip': '10.1.0.6' } } });
    expect(byIp.count).toBe(3);

    const dlq = await es.search<Record<string, any>>({
      index: index('dead_letter'),
      query: { bool: { filter: [{ term: { 'event.kind': 'pipeline_error' } }, { term: { 'cordon.source.topic': 'cordon.flows' } }], must: [{ match: { 'error.message': 'malformed' } }] } },
      sort: [{ 'cordon.source.offset': 'asc' }],
      version: true,
    });
    expect(dlq.hits.hits.map((h) => [h._id, h._version, h._source!.cordon.source.encoding, h._source!.event.original])).toEqual([
      ['cordon.flows-2-1001', 1, 'utf8', '{"id": "x", "time": '],
      ['cordon.flows-2-1002', 1, 'base64', '/wAB'],
    ]);

    const finding = await es.search({ index: index('finding'), query: { term: { 'destination.port': 6379 } } });
    expect(finding.hits.hits).toHaveLength(1);
    const incidents = await es.count({ index: index('incident'), query: { bool: { filter: [{ term: { 'threat.technique.id': 'T1021' } }, { term: { 'source.ip': '10.1.0.5' } }, { range: { 'event.severity': { gte: 73 } } }] } } });
    expect(incidents.count).toBeGreaterThan(0);
  });

  it('sends a document Elasticsearch refuses (a mapping error) to the failed list, with the reason, without retrying it', async () => {
    const failedBefore = writer.counters.failed;
    await writer.enqueue([
      { kind: 'ledger', record: sampleLedger(100, { at: 'yesterday' }) },
      { kind: 'ledger', record: sampleLedger(101) },
    ]);
    await drained();
    expect(writer.counters.failed).toBe(failedBefore + 1);
    const failed = await writer.failed();
    expect(failed.at(-1)).toMatchObject({ status: 400, reason: expect.stringMatching(/document_parsing_exception|mapper_parsing_exception/) });
    expect(JSON.parse(failed.at(-1)!.item)).toMatchObject({ kind: 'ledger', id: '100' });
    expect((await es.exists({ index: index('ledger'), id: '101' }))).toBe(true);
    expect((await es.exists({ index: index('ledger'), id: '100' }))).toBe(false);
  });

  it('retries only the documents of a bulk request that failed retriably', async () => {
    // the flood-stage block: every write to the ledger index answers 429 until it is lifted
    await es.indices.putSettings({ index: index('ledger'), settings: { 'index.blocks.read_only_allow_delete': true } });
    try {
      const writtenBefore = writer.counters.written;
      await writer.enqueue([
        { kind: 'ledger', record: sampleLedger(200) },
        { kind: 'incident', incident: sampleIncident({ id: 'inc-partial-0001' }) },
        { kind: 'ledger', record: sampleLedger(201) },
        { kind: 'dead_letter', letter: sampleDeadLetter(2001) },
      ]);
      await eventually(async () => (writer.counters.retriedItems >= 4 ? true : undefined), 20_000, 'a few retries of the blocked documents');
      expect(await writer.pending()).toBe(2);
      expect(writer.counters.written).toBe(writtenBefore + 2);
      expect(await es.exists({ index: index('incident'), id: 'inc-partial-0001' })).toBe(true);
    } finally {
      await es.indices.putSettings({ index: index('ledger'), settings: { 'index.blocks.read_only_allow_delete': null } });
    }
    await drained();
    const got = await es.mget({ index: index('ledger'), ids: ['200', '201'] });
    expect(got.docs.map((d) => ('found' in d ? d.found : false))).toEqual([true, true]);
  });

  it('splits a batch Elasticsearch cannot read as a whole (400) down to the document responsible', async () => {
    // an outbox item whose action line Elasticsearch refuses (a version that is not a number), as a
    // corrupted or hand-edited item would be; the documents around it must still arrive
    const base = `{${keyPrefix}:siem:es}`;
    const poison = JSON.stringify({ kind: 'incident', id: 'inc-poison', op: 'index', version: 'not-a-number', doc: {} });
    const good = (seq: number) => JSON.stringify({ kind: 'ledger', id: String(seq), op: 'create', doc: { '@timestamp': new Date(T0).toISOString(), event: { sequence: seq } } });
    const failedBefore = writer.counters.failed;
    await redis.rpush(`${base}:outbox`, good(300), good(301), poison, good(302), good(303));
    await drained('the poisoned batch to be split and drained');
    expect(writer.counters.failed).toBe(failedBefore + 1);
    expect((await writer.failed()).at(-1)).toMatchObject({ item: poison, status: 400, reason: expect.stringMatching(/^bulk request refused/) });
    const got = await es.mget({ index: index('ledger'), ids: ['300', '301', '302', '303'] });
    expect(got.docs.map((d) => 'found' in d && d.found)).toEqual([true, true, true, true]);
  });

  it('loses nothing while Elasticsearch is down: documents wait in the outbox and arrive exactly once after it is back', async () => {
    const N = 60;
    const docs = Array.from({ length: N }, (_, i) =>
      i % 3 === 0
        ? { kind: 'ledger' as const, record: sampleLedger(1_000 + i) }
        : i % 3 === 1
          ? { kind: 'dead_letter' as const, letter: sampleDeadLetter(10_000 + i, Buffer.from(`bad record ${i}`), 'cordon.outage') }
          : { kind: 'incident' as const, incident: sampleIncident({ id: `inc-outage-${String(i).padStart(4, '0')}`, version: 7 }) },
    );
    const errorsBefore = writer.counters.bulkErrors;

    esStopped = true;
    await run('bash', ['scripts/stack.sh', 'down', 'elasticsearch'], { cwd: REPO });
    try {
      // one at a time and in one batch, while the flusher keeps failing against the stopped node
      for (const d of docs.slice(0, 20)) await writer.enqueue(d);
      await writer.enqueue(docs.slice(20));
      await eventually(async () => (writer.counters.bulkErrors > errorsBefore + 1 ? true : undefined), 30_000, 'failed bulk attempts');
      expect(await writer.pending()).toBe(N);
    } finally {
      await run('bash', ['scripts/stack.sh', 'up', 'elasticsearch'], { cwd: REPO });
      esStopped = false;
    }
    await drained('the outbox to drain after Elasticsearch came back', 120_000);

    const ledgerIds = docs.filter((d) => d.kind === 'ledger').map((d) => String((d as { record: { seq: number } }).record.seq));
    const ledger = await es.mget({ index: index('ledger'), ids: ledgerIds });
    expect(ledger.docs.every((d) => 'found' in d && d.found && d._version === 1)).toBe(true);

    const dlq = await es.search({ index: index('dead_letter'), query: { term: { 'cordon.source.topic': 'cordon.outage' } }, size: 100, version: true });
    expect(dlq.hits.hits).toHaveLength(docs.filter((d) => d.kind === 'dead_letter').length);
    expect(new Set(dlq.hits.hits.map((h) => h._id)).size).toBe(dlq.hits.hits.length);
    expect(dlq.hits.hits.every((h) => h._version === 1)).toBe(true);

    const incidents = await es.search({ index: index('incident'), query: { prefix: { 'cordon.incident.id': 'inc-outage-' } }, size: 100, version: true });
    expect(incidents.hits.hits).toHaveLength(docs.filter((d) => d.kind === 'incident').length);
    expect(incidents.hits.hits.every((h) => h._version === 7)).toBe(true);
    expect(await writer.failed(1000)).toHaveLength(2); // only the mapping error and the poisoned item of the earlier tests
  });

  it('hands the in-flight batch of a writer that died to another writer', async () => {
    // a batch taken by a flusher "ghost" that crashed before settling it: its in-flight list, no heartbeat
    const base = `{${keyPrefix}:siem:es}`;
    const item = JSON.stringify({ kind: 'ledger', id: '777', op: 'create', doc: { '@timestamp': new Date(T0).toISOString(), event: { sequence: 777 } } });
    await redis.rpush(`${base}:inflight:ghost`, item);
    const reclaimedBefore = writer.counters.reclaimed;
    await eventually(async () => (writer.counters.reclaimed > reclaimedBefore ? true : undefined), 30_000, 'the orphaned batch to be reclaimed');
    await drained();
    expect(await es.exists({ index: index('ledger'), id: '777' })).toBe(true);
  });
});
