import { resolve } from 'node:path';
import type { Kafka } from 'kafkajs';
import type { Config } from '../../src/config';
import type { Incident } from '../../src/correlate/incident';
import { entityKey } from '../../src/events';
import { sha256Hex } from '../../src/http/auth';
import { readLines } from '../../src/io/lines';
import { normalizeRecord } from '../../src/normalize/registry';
import { partitionFor } from '../../src/partition';
import { produceFile } from '../../src/produce';
import { Service } from '../../src/service';
import { createTopics, deleteTopics, readTopic, testKafka } from '../support/kafka';
import { eventually, testConfig, testLog } from '../support/stack';

const RECORDING = resolve(__dirname, '../../../shared/datasets/otrf-lateral-movement/covenant_sharpsc_create_dcerpc_smb_svcctl.jsonl.gz');
const SPLUNK_SECRET = 'splunk-alert-secret-0123456789abcdef';
const KIBANA_SECRET = 'kibana-alert-secret-0123456789abcdef';
const VIEWER = 'viewer-token-0123456789abcdef';
const RESPONDER = 'responder-token-0123456789abcdef';

describe('inbound SIEM alerts (real Service, real Kafka)', () => {
  let kafka: Kafka;
  let config: Config;
  let service: Service;
  let url: string;
  let incident: Incident;
  let lastEventTime = 0;

  beforeAll(async () => {
    kafka = testKafka();
    config = testConfig('alerts', {
      contain: { enabled: false },
      correlate: { snapshotIntervalMs: 1_000 },
      // the recording is from 2020: its anomalies must not be refused as too old
      ingest: { maxEventAgeMs: 0 },
      auth: {
        tokens: [
          { name: 'viewer-1', role: 'viewer', sha256: sha256Hex(VIEWER) },
          { name: 'responder-1', role: 'responder', sha256: sha256Hex(RESPONDER) },
        ],
      },
      alerts: {
        splunk: { secrets: [{ name: 'prod-search-head', sha256: sha256Hex(SPLUNK_SECRET) }] },
        elastic: { secrets: [{ name: 'kibana', sha256: sha256Hex(KIBANA_SECRET) }] },
      },
    });
    await createTopics(kafka, config);
    service = new Service(config, testLog);
    await service.start();
    url = `http://127.0.0.1:${(service.http.server.address() as { port: number }).port}`;

    const ctx = { state: new Map() };
    for await (const line of readLines(RECORDING)) {
      const o = normalizeRecord(line, 'wfp', ctx);
      if (o.kind === 'events') for (const e of o.events) lastEventTime = Math.max(lastEventTime, e.time);
    }
    const producer = kafka.producer();
    await producer.connect();
    await produceFile(producer, RECORDING, config.kafka.inputs[0]!.topic, { format: 'auto', timestamp: 'event' }, config.kafka.partitions);
    await producer.disconnect();
    incident = await eventually(async () => (await service.correlator.incidents.list(10))[0], 60_000, 'the recorded incident');
  }, 120_000);

  afterAll(async () => {
    await service?.stop();
    await deleteTopics(kafka, config);
  });

  const post = (path: string, body: unknown, auth: { bearer?: string; token?: string } = {}) =>
    fetch(`${url}${path}${auth.token ? `?token=${encodeURIComponent(auth.token)}` : ''}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(auth.bearer ? { authorization: `Bearer ${auth.bearer}` } : {}) },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  const splunkAlert = (result: Record<string, unknown>, sid = 'scheduler__admin__search__RMD5lateral_at_1700000000_7') => ({
    result,
    sid,
    results_link: `https://splunk.example.com:8000/app/search/@go?sid=${sid}`,
    search_name: 'Remote service creation over SMB',
    owner: 'admin',
    app: 'search',
  });

  const current = () => service.correlator.incidents.get(incident.id);

  it('a Splunk alert action about the incident root reaches the correlator: the incident gains the anomaly', async () => {
    expect(incident.counters.anomalies).toBe(0);
    const res = await post('/api/alerts/splunk', splunkAlert({ cordon_entity: incident.root, _time: String((lastEventTime + 1_000) / 1000), urgency: 'high', count: '3' }), { token: SPLUNK_SECRET });
    expect(res.status).toBe(202);
    const body = (await res.json()) as { accepted: number; anomalies: Array<{ id: string; entity: string; topic: string; partition: number }> };
    expect(body.accepted).toBe(1);
    expect(body.anomalies[0]).toMatchObject({ entity: incident.root, topic: config.kafka.inputs[1]!.topic, partition: partitionFor(incident.root, config.kafka.partitions) });

    const updated = await eventually(async () => {
      const i = await current();
      return i && i.counters.anomalies >= 1 ? i : undefined;
    }, 30_000, 'the incident to take the Splunk anomaly');
    expect(updated.evidence.byRule.anomaly?.count).toBe(1);
    expect(updated.version).toBeGreaterThan(incident.version);
  });

  it('a Kibana webhook alert (bearer responder token, the documented body) does the same, keyed by the host', async () => {
    const root = incident.entities.find((e) => e.key === incident.root)!;
    const host = root.key.slice('host:'.length);
    const res = await post(
      '/api/alerts/elastic',
      {
        rule: { id: '7f4a1c2e-rule', name: 'Service creation by a remote host', url: 'https://kibana.example.com/app/security/rules/id/7f4a1c2e-rule' },
        date: new Date(lastEventTime + 2_000).toISOString(),
        alerts: [{ id: 'a91c0ffee', timestamp: new Date(lastEventTime + 2_000).toISOString(), host, ip: '', user: 'THESHIRE\\pgustavo', riskScore: '73', severity: 'high' }],
      },
      { bearer: RESPONDER },
    );
    expect(res.status).toBe(202);
    const updated = await eventually(async () => {
      const i = await current();
      return i && i.counters.anomalies >= 2 ? i : undefined;
    }, 30_000, 'the incident to take the Kibana anomaly');
    expect(updated.evidence.byRule.anomaly?.count).toBe(2);

    const messages = await readTopic(kafka, config.kafka.inputs[1]!.topic, (m) => m.length >= 2);
    expect(messages.map((m) => String(m.key))).toEqual([incident.root, incident.root]);
    const values = messages.map((m) => JSON.parse(String(m.value)) as { id: string; kind: string; detector: string; entity: unknown });
    expect(values.map((v) => [v.id, v.kind, v.detector])).toEqual([
      ['splunk-scheduler__admin__search__RMD5lateral_at_1700000000_7', 'siem_alert', 'splunk:Remote service creation over SMB'],
      ['elastic-a91c0ffee', 'siem_alert', 'elastic:Service creation by a remote host'],
    ]);
    for (const v of values) expect(entityKey(v.entity as never)).toBe(incident.root);
    for (const m of messages) expect(normalizeRecord(String(m.value), 'cordon', { state: new Map() }).kind).toBe('events');
  });

  it('refuses bad bodies with 400 naming the field', async () => {
    const cases: Array<[string, unknown, RegExp]> = [
      ['/api/alerts/splunk', { result: { dest: 'ws1' } }, /body\.sid/],
      ['/api/alerts/splunk', splunkAlert({ count: '8' }), /body\.result: no entity/],
      ['/api/alerts/splunk', splunkAlert({ dest: 'ws1', _time: 'last tuesday' }), /body\.result\._time/],
      ['/api/alerts/splunk', '{"sid": "x", "result": ', /JSON|body/i],
      ['/api/alerts/elastic', { rule: { id: 'r', name: 'n' }, alerts: [{ user: 'bob' }] }, /body\.alerts\.0: no entity/],
      ['/api/alerts/elastic', { rule: { id: 'r' }, alerts: [] }, /body\.rule\.name/],
    ];
    for (const [path, body, message] of cases) {
      const res = await post(path, body, path.endsWith('splunk') ? { token: SPLUNK_SECRET } : { bearer: KIBANA_SECRET });
      const text = await res.text();
      expect([path, res.status]).toEqual([path, 400]);
      expect(text).toMatch(message);
    }
  });

  it('401 without or with an unknown token, 403 for a viewer or the other source\'s secret', async () => {
    const alert = splunkAlert({ dest: 'ws1' });
    const statuses = await Promise.all([
      post('/api/alerts/splunk', alert),
      post('/api/alerts/splunk', alert, { token: 'not-the-secret-0123456789abcdef' }),
      post('/api/alerts/splunk', alert, { bearer: VIEWER }),
      post('/api/alerts/splunk', alert, { token: KIBANA_SECRET }),
      post('/api/alerts/elastic', { rule: { id: 'r', name: 'n' }, alerts: [{ host: 'ws1' }] }, { token: SPLUNK_SECRET }),
    ]).then((all) => all.map((r) => r.status));
    expect(statuses).toEqual([401, 401, 403, 403, 403]);
  });

  it('counts every post on /metrics by source and outcome', async () => {
    const text = await (await fetch(`${url}/metrics`)).text();
    const count = (source: string, outcome: string) => Number(new RegExp(`^cordon_alerts_total\\{source="${source}",outcome="${outcome}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
    expect(count('splunk', 'accepted')).toBeGreaterThanOrEqual(1);
    expect(count('elastic', 'accepted')).toBeGreaterThanOrEqual(1);
    expect(count('splunk', 'unauthorized')).toBe(4);
    expect(count('elastic', 'unauthorized')).toBe(1);
    expect(count('splunk', 'refused') + count('elastic', 'refused')).toBeGreaterThanOrEqual(1);
  });
});
