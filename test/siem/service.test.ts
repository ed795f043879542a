import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Client } from '@elastic/elasticsearch';
import { createEsClient } from '../../src/siem/es-client';
import type { Kafka } from 'kafkajs';
import type { Config } from '../../src/config';
import type { Incident } from '../../src/correlate/incident';
import { exportLedger } from '../../src/ledger/audit';
import type { LedgerRecord } from '../../src/ledger/records';
import { produceFile } from '../../src/produce';
import { Service } from '../../src/service';
import { SplunkContractServer } from '../contract/splunk-server';
import { createTopics, deleteTopics, testKafka } from '../support/kafka';
import { ES_URL, eventually, testConfig, testLog, uniq } from '../support/stack';

const RECORDING = resolve(__dirname, '../../../shared/datasets/otrf-lateral-movement/covenant_sharpsc_create_dcerpc_smb_svcctl.jsonl.gz');
const HEC_TOKEN = '3f1c2b7a-8d4e-4f60-9a1b-2c3d4e5f6a7b';
const PLAYBOOK = `apiVersion: cordon.io/v1
kind: Playbook
name: siem-auto
description: quarantine the root of any incident (test)
priority: 100
mode: auto
match:
  severity: low
safety:
  protected_approval:
    approvers: [soc-oncall]
    deadline: 15m
steps:
  - id: quarantine-root
    type: quarantine
    target: root
    enforcer: labelstore
    ttl: 1h
`;

type Hit = { _id: string; _source: Record<string, any> };

/**
 * The SIEM stage inside a real Service: a recorded attack becomes an incident, the playbook writes
 * ledger records, a bad record becomes a dead letter, and all of it reaches the real Elasticsearch
 * (searched back by id, ECS fields) and the Splunk contract server (HEC).
 */
describe('SIEM stage of the running service (real Kafka, Redis, Elasticsearch; Splunk contract server)', () => {
  jest.setTimeout(180_000);
  let kafka: Kafka;
  let es: Client;
  let splunk: SplunkContractServer;
  let config: Config;
  let service: Service;
  let incident: Incident;
  const prefix = uniq('cordon-svc').toLowerCase();

  beforeAll(async () => {
    kafka = testKafka();
    es = createEsClient({ node: ES_URL });
    splunk = await SplunkContractServer.start({ hecTokens: [{ token: HEC_TOKEN, indexes: ['cordon'], defaultIndex: 'cordon' }], indexes: ['main', 'cordon'] });
    const dir = mkdtempSync(join(tmpdir(), 'cordon-siem-playbooks-'));
    writeFileSync(join(dir, 'siem-auto.yaml'), PLAYBOOK);
    config = testConfig('siem', {
      contain: { playbooks: dir, reconcileIntervalMs: 500, enforcers: { labelstore: true } },
      correlate: { snapshotIntervalMs: 1_000 },
      elasticsearch: { url: ES_URL, indexPrefix: prefix, bulk: { refresh: 'wait_for', pollIntervalMs: 200 }, retry: { initialMs: 100, maxMs: 1_000 } },
      splunk: { enabled: true, hecUrl: splunk.url, token: HEC_TOKEN, batch: { maxLatencyMs: 50 }, retry: { initialMs: 20, maxMs: 100, retries: 2 } },
    });
    expect(config.elasticsearch.enabled).toBe(true);
    await createTopics(kafka, config);
    service = new Service(config, testLog);
    await service.start();

    const producer = kafka.producer();
    await producer.connect();
    await produceFile(producer, RECORDING, config.kafka.inputs[0]!.topic, { format: 'auto', timestamp: 'event' }, config.kafka.partitions);
    await producer.send({ topic: config.kafka.inputs[0]!.topic, messages: [{ key: 'host:nowhere', value: '{"not": "telemetry"}' }] });
    await producer.disconnect();
    incident = await eventually(async () => (await service.correlator.incidents.list(10))[0], 60_000, 'the recorded incident');
  });

  afterAll(async () => {
    await service?.stop();
    await splunk?.close();
    await deleteTopics(kafka, config);
    await es.indices.delete({ index: `${prefix}-*`, ignore_unavailable: true, allow_no_indices: true }).catch(() => undefined);
    await es.indices.deleteIndexTemplate({ name: `${prefix}-*` }).catch(() => undefined);
    await es.close();
  });

  async function search(kind: 'incidents' | 'ledger' | 'dlq', min: number): Promise<Hit[]> {
    return eventually(async () => {
      const r = await es.search({ index: `${prefix}-${kind}`, size: 100, sort: ['_doc'] }, { ignore: [404] }).catch(() => undefined);
      const hits = (r?.hits?.hits ?? []) as Hit[];
      return hits.length >= min ? hits : undefined;
    }, 60_000, `${min} document(s) in ${prefix}-${kind}`);
  }

  async function ledger(): Promise<LedgerRecord[]> {
    const lines: string[] = [];
    await exportLedger(kafka, config.kafka.topics.ledger, (l) => void lines.push(l));
    return lines.map((l) => JSON.parse(l) as LedgerRecord);
  }

  it('writes the incident to Elasticsearch by id, with ECS fields, and overwrites it on update', async () => {
    const [hit] = await search('incidents', 1);
    expect(hit!._id).toBe(incident.id);
    const doc = (await es.get<Record<string, any>>({ index: `${prefix}-incidents`, id: incident.id }))._source!;
    expect(doc.event).toMatchObject({ kind: 'alert', id: incident.id, dataset: 'cordon.incident', module: 'cordon' });
    expect(doc['@timestamp']).toBe(new Date(doc.cordon.incident.last_seen).toISOString());
    expect(doc.cordon.incident).toMatchObject({ id: incident.id, root: incident.root, severity: expect.any(String) });
    expect(doc.threat.framework).toBe('MITRE ATT&CK');
    expect(doc.threat.technique.id).toEqual(expect.arrayContaining(incident.techniques.map((t) => t.split('.')[0])));
    expect(doc.host.name).toBeDefined();
    // one document per incident, the newest version, whatever the number of versions published
    const newest = (await service.correlator.incidents.get(incident.id))!.version;
    await eventually(async () => ((await es.get<Record<string, any>>({ index: `${prefix}-incidents`, id: incident.id }))._source!.cordon.incident.version === newest ? true : undefined), 30_000, `version ${newest} in Elasticsearch`);
    expect((await es.count({ index: `${prefix}-incidents` })).count).toBe(1);
  });

  it('writes every ledger record (the playbook run) to Elasticsearch, one document per seq, hash intact', async () => {
    const records = await eventually(async () => {
      const r = await ledger();
      return r.some((x) => x.action === 'quarantine_applied') ? r : undefined;
    }, 60_000, 'the quarantine in the ledger');
    const hits = await search('ledger', records.length);
    const bySeq = new Map(hits.map((h) => [h._id, h._source]));
    for (const r of records) {
      const d = bySeq.get(String(r.seq));
      expect(d).toBeDefined();
      expect(d!.event).toMatchObject({ kind: 'event', action: r.action, sequence: r.seq, dataset: 'cordon.ledger' });
      expect(d!.cordon.ledger).toMatchObject({ seq: r.seq, hash: r.hash, prev_hash: r.prevHash, actor: r.actor });
    }
    expect(records.map((r) => r.action)).toEqual(expect.arrayContaining(['incident_raised', 'playbook_started', 'quarantine_applied']));
    expect(records.find((r) => r.action === 'incident_raised')!.incidentId).toBe(incident.id);
  });

  it('writes the dead letter to Elasticsearch with its reason and original bytes', async () => {
    const [hit] = await search('dlq', 1);
    expect(hit!._source.event.original).toBe('{"not": "telemetry"}');
    expect(hit!._source.error.message).toEqual(expect.any(String));
    expect(hit!._id).toMatch(new RegExp(`^${config.kafka.inputs[0]!.topic.replace(/\./g, '\\.')}-\\d+-\\d+$`));
  });

  it('sends incidents, ledger records and the dead letter to Splunk HEC with the CIM sourcetypes', async () => {
    const records = await ledger();
    const of = (st: string) => splunk.indexed.filter((e) => e.sourcetype === st);
    await eventually(async () => (of('cordon:ledger').length >= records.length && of('cordon:dlq').length >= 1 && of('cordon:incident').length >= 1 ? true : undefined), 60_000, 'events in Splunk');
    expect(splunk.hecRequests.every((r) => r.path !== '/services/collector/event' || r.gzip)).toBe(true);
    expect(of('cordon:incident').every((e) => e.index === 'cordon' && JSON.stringify(e.event).includes(incident.id))).toBe(true);
    const hashes = new Set(of('cordon:ledger').map((e) => JSON.stringify(e.event)));
    for (const r of records) expect([...hashes].some((h) => h.includes(r.hash))).toBe(true);
  });

  it('commits the SIEM group\'s offsets once the documents are out, and keeps a batch when Splunk is down', async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const ledgerTopic = config.kafka.topics.ledger;
      const high = async () => (await admin.fetchTopicOffsets(ledgerTopic)).map((p) => p.high).join(',');
      const committed = async () => (await admin.fetchOffsets({ groupId: config.kafka.groups.siem, topics: [ledgerTopic] }))[0]!.partitions.map((p) => p.offset).join(',');
      await eventually(async () => ((await committed()) === (await high()) ? true : undefined), 30_000, 'the SIEM group to commit the ledger');

      // Splunk answers 503 (busy) to the next requests, more than one batch's retries: the dead
      // letter below is not lost, it arrives once Splunk takes events again
      const busyBefore = splunk.hecRequests.filter((r) => r.status === 503).length;
      splunk.busy(6);
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({ topic: config.kafka.inputs[0]!.topic, messages: [{ key: 'host:nowhere', value: '{"still": "not telemetry"}' }] });
      await producer.disconnect();
      await eventually(
        async () => (splunk.indexed.some((e) => e.sourcetype === 'cordon:dlq' && JSON.stringify(e.event).includes('still')) ? true : undefined),
        90_000,
        'the dead letter in Splunk after the outage',
      );
      expect(splunk.hecRequests.filter((r) => r.status === 503).length - busyBefore).toBe(6);
      const dlq = await search('dlq', 2);
      expect(dlq.map((h) => h._source.event.original)).toEqual(expect.arrayContaining(['{"still": "not telemetry"}']));
    } finally {
      await admin.disconnect();
    }
  });

  it('reports quarantines and SIEM deliveries on /metrics', async () => {
    const port = (service.http.server.address() as { port: number }).port;
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
    expect(value('cordon_quarantine_changes_total{kind="applied"}')).toBeGreaterThanOrEqual(1);
    expect(value('cordon_quarantines_active')).toBe((await service.containment!.quarantines.registry.liveCount()));
    expect(value('cordon_siem_documents_total{sink="elasticsearch",outcome="written"}')).toBeGreaterThanOrEqual(3);
    expect(value('cordon_siem_documents_total{sink="splunk",outcome="written"}')).toBeGreaterThanOrEqual(3);
    expect(value('cordon_siem_pending{sink="elasticsearch"}')).toBeGreaterThanOrEqual(0);
  });
});
