import { resolve } from 'node:path';
import { AlertsConfig } from '../../src/alerts/config';
import { entityOf, scoreOf, timeOf } from '../../src/alerts/anomaly';
import { ElasticAlert, elasticToAnomalies } from '../../src/alerts/elastic';
import { alertTopic } from '../../src/alerts/publisher';
import { authorizeAlert } from '../../src/alerts/routes';
import { loadConfig } from '../../src/config';
import { SplunkAlert, splunkToAnomalies } from '../../src/alerts/splunk';
import { replay } from '../../src/correlate/replay';
import { Anomaly, entityKey, type CordonEvent } from '../../src/events';
import { sha256Hex } from '../../src/http/auth';
import { readLines } from '../../src/io/lines';
import { normalizeRecord } from '../../src/normalize/registry';

const RECORDING = resolve(__dirname, '../../../shared/datasets/otrf-lateral-movement/covenant_sharpsc_create_dcerpc_smb_svcctl.jsonl.gz');
const NOW = Date.parse('2026-01-01T00:00:00Z');
const config = AlertsConfig.parse({});

function splunk(result: Record<string, unknown>, over: Record<string, unknown> = {}) {
  return SplunkAlert.parse({
    sid: 'scheduler__admin__search__RMD5a1b2_at_1700000000_42',
    search_name: 'Remote service creation',
    results_link: 'https://splunk.example.com:8000/app/search/@go?sid=scheduler__admin__search__RMD5a1b2_at_1700000000_42',
    owner: 'admin',
    app: 'search',
    result,
    ...over,
  });
}

describe('Splunk webhook alerts to anomalies', () => {
  it('reads the entity, score and time of the result row (Splunk sends strings)', () => {
    const out = splunkToAnomalies(splunk({ dest: 'WS6.corp.example', _time: '1700000000.250', urgency: 'critical', count: '8' }), config, NOW);
    expect(out.ok).toBe(true);
    const [a] = out.ok ? out.anomalies : [];
    expect(Anomaly.parse(a)).toEqual(a);
    expect(entityKey(a!.entity)).toBe('host:ws6.corp.example');
    expect(a).toMatchObject({ id: 'splunk-scheduler__admin__search__RMD5a1b2_at_1700000000_42', time: 1_700_000_000_250, kind: 'siem_alert', score: 1, detector: 'splunk:Remote service creation' });
    expect(a!.detail).toMatchObject({ source: 'splunk', search: 'Remote service creation', entityField: 'dest', owner: 'admin', app: 'search' });
  });

  it('prefers cordon_entity, takes Cordon keys and IPs, and falls back to the default score and now', () => {
    const pod = splunkToAnomalies(splunk({ dest: '10.0.0.9', cordon_entity: 'pod:payments/api-7f9c' }), config, NOW);
    expect(pod.ok && entityKey(pod.anomalies[0]!.entity)).toBe('pod:payments/api-7f9c');
    const ip = splunkToAnomalies(splunk({ src_ip: ['10.0.0.9', '10.0.0.10'] }), config, NOW);
    expect(ip.ok && ip.anomalies[0]).toMatchObject({ entity: { ip: '10.0.0.9' }, time: NOW, score: 0.8 });
  });

  it('names what is missing or wrong', () => {
    expect(splunkToAnomalies(splunk({ count: '8' }), config, NOW)).toEqual({ ok: false, message: expect.stringMatching(/^body\.result: no entity; expected one of the fields cordon_entity, dest/) });
    expect(splunkToAnomalies(splunk({ dest: 'not a host!' }), config, NOW)).toEqual({ ok: false, message: expect.stringMatching(/^body\.result\.dest: "not a host!" is not a host name/) });
    expect(splunkToAnomalies(splunk({ dest: 'ws6', _time: 'yesterday' }), config, NOW)).toEqual({ ok: false, message: expect.stringMatching(/^body\.result\._time:/) });
    const missing = SplunkAlert.safeParse({ result: {} });
    expect(missing.success).toBe(false);
    expect(missing.error!.issues.map((i) => i.path.join('.'))).toEqual(['sid']);
  });
});

describe('Kibana webhook alerts to anomalies', () => {
  const body = (alerts: unknown[]) =>
    ElasticAlert.parse({ rule: { id: 'a1b2c3', name: 'Lateral tool transfer', url: '' }, date: '2026-01-01T00:00:00.000Z', alerts });

  it('one anomaly per alert; empty strings from Mustache count as absent; risk score 0..100', () => {
    const out = elasticToAnomalies(
      body([
        { id: 'f00d', host: 'DB1.corp.example', ip: '', riskScore: '73', severity: 'high', timestamp: '2025-12-31T23:59:00.000Z' },
        { id: '', host: '', ip: '10.1.2.3,fe80::1', riskScore: '', severity: 'low' },
      ]),
      config,
      NOW,
    );
    expect(out.ok).toBe(true);
    const list = out.ok ? out.anomalies : [];
    expect(list.map((a) => [entityKey(a.entity), a.score, a.time])).toEqual([
      ['host:db1.corp.example', 0.73, Date.parse('2025-12-31T23:59:00Z')],
      ['ip:10.1.2.3', 0.4, NOW],
    ]);
    expect(list[0]).toMatchObject({ id: 'elastic-f00d', detector: 'elastic:Lateral tool transfer', detail: { rule: 'Lateral tool transfer', ruleId: 'a1b2c3', alertId: 'f00d' } });
    expect(list[1]!.id).toMatch(/^elastic-[0-9a-f]{32}$/);
    for (const a of list) expect(Anomaly.safeParse(a).success).toBe(true);
  });

  it('names the alert and the field that is wrong', () => {
    expect(elasticToAnomalies(body([{ host: 'ws1' }, { user: 'bob' }]), config, NOW)).toEqual({ ok: false, message: 'body.alerts.1: no entity; expected one of entity, host, ip' });
    expect(elasticToAnomalies(body([{ entity: 'pod:' }]), config, NOW)).toEqual({ ok: false, message: expect.stringMatching(/^body\.alerts\.0\.entity:/) });
    const bad = ElasticAlert.safeParse({ rule: { name: 'x' }, alerts: [] });
    expect(bad.error!.issues.map((i) => i.path.join('.')).sort()).toEqual(['alerts', 'rule.id']);
  });
});

describe('reading SIEM values', () => {
  it('entities, scores and times', () => {
    expect(entityOf('host:ws5.corp')).toEqual({ kind: 'host', id: 'ws5.corp', name: 'ws5', labels: {} });
    expect(entityOf('ip:10.0.0.1')).toEqual({ ip: '10.0.0.1' });
    expect(entityOf('ip:nope')).toBeUndefined();
    expect(entityOf('ws5\u202e.corp')).toBeUndefined();
    expect([scoreOf('0.5'), scoreOf('50'), scoreOf('HIGH'), scoreOf('500'), scoreOf('n/a')]).toEqual([0.5, 0.5, 0.8, undefined, undefined]);
    expect([timeOf('1700000000'), timeOf('1700000000123'), timeOf('2026-01-01T00:00:00Z'), timeOf('01/01/2026')]).toEqual([1_700_000_000_000, 1_700_000_000_123, NOW, undefined]);
  });
});

describe('who may post alerts', () => {
  const SPLUNK_SECRET = 'splunk-secret-0123456789abcdef';
  const ELASTIC_SECRET = 'elastic-secret-0123456789abcdef';
  const deps = {
    config: AlertsConfig.parse({ splunk: { secrets: [{ name: 'prod-sh', sha256: sha256Hex(SPLUNK_SECRET) }] }, elastic: { secrets: [{ name: 'kibana', sha256: sha256Hex(ELASTIC_SECRET) }] } }),
    tokens: [
      { name: 'viewer-1', role: 'viewer' as const, sha256: sha256Hex('viewer-token-0123456789') },
      { name: 'resp-1', role: 'responder' as const, sha256: sha256Hex('responder-token-0123456789') },
    ],
  };
  it('a source secret (header or ?token=) or a responder token; 401 unknown, 403 known but not allowed here', () => {
    expect(authorizeAlert('splunk', { token: SPLUNK_SECRET }, deps)).toEqual({ ok: true, by: 'alerts:splunk:prod-sh' });
    expect(authorizeAlert('elastic', { authorization: `Bearer ${ELASTIC_SECRET}` }, deps)).toEqual({ ok: true, by: 'alerts:elastic:kibana' });
    expect(authorizeAlert('elastic', { authorization: 'Bearer responder-token-0123456789' }, deps)).toEqual({ ok: true, by: 'user:resp-1' });
    expect(authorizeAlert('splunk', {}, deps)).toMatchObject({ ok: false, status: 401 });
    expect(authorizeAlert('splunk', { token: 'wrong-secret-0123456789abcdef' }, deps)).toMatchObject({ ok: false, status: 401 });
    expect(authorizeAlert('splunk', { authorization: 'Bearer viewer-token-0123456789' }, deps)).toMatchObject({ ok: false, status: 403 });
    expect(authorizeAlert('elastic', { token: SPLUNK_SECRET }, deps)).toMatchObject({ ok: false, status: 403, message: 'that secret is for /api/alerts/splunk' });
  });
});

describe('a SIEM alert corroborates the open incident (pure engine)', () => {
  it('the anomaly about the root lands in the incident evidence', async () => {
    const events: CordonEvent[] = [];
    const ctx = { state: new Map() };
    for await (const line of readLines(RECORDING)) {
      const o = normalizeRecord(line, 'wfp', ctx);
      if (o.kind === 'events') events.push(...o.events);
    }
    const before = replay(events).incidents[0]!;
    const last = Math.max(...events.map((e) => e.time));
    const out = splunkToAnomalies(splunk({ cordon_entity: before.root, _time: String((last + 1_000) / 1000), urgency: 'high' }), config, NOW);
    const after = replay([...events, ...(out.ok ? out.anomalies : [])]).incidents[0]!;
    expect(after.id).toBe(before.id);
    expect(before.counters.anomalies).toBe(0);
    expect(after.counters.anomalies).toBe(1);
    expect(after.evidence.byRule.anomaly?.count).toBe(1);
    expect(after.score).toBeGreaterThan(before.score);
  });
});

describe('the topic alerts go to', () => {
  const cfg = (kafka: object, alerts: object = {}) => loadConfig({ env: {}, overrides: { kafka, alerts } });
  it('the cordon input, else the first auto one, else none; a configured topic must be such an input', () => {
    expect(alertTopic(cfg({}))).toBe('cordon.anomalies');
    expect(alertTopic(cfg({ inputs: [{ topic: 'h', format: 'hubble' }, { topic: 'a', format: 'auto' }] }))).toBe('a');
    expect(alertTopic(cfg({ inputs: [{ topic: 'h', format: 'hubble' }] }))).toBeUndefined();
    expect(() => alertTopic(cfg({ inputs: [{ topic: 'h', format: 'hubble' }] }, { topic: 'h' }))).toThrow(/alerts\.topic h is an input of format hubble/);
    expect(() => alertTopic(cfg({}, { topic: 'elsewhere' }))).toThrow(/alerts\.topic elsewhere is not one of kafka\.inputs/);
  });
});
