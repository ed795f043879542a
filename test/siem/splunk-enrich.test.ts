import { SplunkSiemConfig } from '../../src/siem/config';
import { SplunkEnricher, SplunkSearchError, activitySearch, boundRows, splQuote } from '../../src/siem/splunk-enrich';
import { SplunkContractServer } from '../contract/splunk-server';
import { sampleIncident } from './fixtures';

const HEC_TOKEN = '3f1d2c4b-5a69-4788-8a9b-0c1d2e3f4a5b';
const HOSTILE = 'ws9" OR index=secret | delete "';

describe('SPL built from untrusted values', () => {
  it('quotes every value, escaping backslash and double quote', () => {
    expect(splQuote('10.0.0.1')).toBe('"10.0.0.1"');
    expect(splQuote('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(splQuote(HOSTILE)).toBe('"ws9\\" OR index=secret | delete \\""');
  });

  it('builds the recent-activity search', () => {
    const spl = activitySearch(
      { ips: ['10.1.0.5', '10.1.0.6'], hosts: ['ws5'] },
      { indexes: ['*'], ipFields: ['src', 'dest'], hostFields: ['src'], earliest: '-24h', limit: 20 },
    );
    expect(spl).toBe(
      'search index=* (src="10.1.0.5" OR dest="10.1.0.5" OR src="10.1.0.6" OR dest="10.1.0.6" OR src="ws5") earliest=-24h' +
        ' | stats count by sourcetype, dest_port | sort - count | head 20',
    );
    expect(activitySearch({ ips: ['::1'], hosts: [] }, { indexes: ['fw', 'proxy'], ipFields: ['src_ip'], hostFields: [], earliest: '-7d@d', limit: 5 })).toBe(
      'search (index="fw" OR index="proxy") (src_ip="::1") earliest=-7d@d | stats count by sourcetype, dest_port | sort - count | head 5',
    );
    expect(() => activitySearch({ ips: [], hosts: [] }, { indexes: ['*'], ipFields: ['src'], hostFields: [], earliest: '-24h', limit: 5 })).toThrow(
      'no entity to search for',
    );
  });

  it('the config refuses field names and time modifiers that could carry SPL', () => {
    expect(SplunkSiemConfig.safeParse({ search: { ipFields: ['src OR 1=1'] } }).success).toBe(false);
    expect(SplunkSiemConfig.safeParse({ search: { earliest: '-24h | delete' } }).success).toBe(false);
    expect(SplunkSiemConfig.safeParse({ search: { indexes: ['main" OR "x'] } }).success).toBe(false);
    expect(SplunkSiemConfig.safeParse({ search: { earliest: '-7d@d', indexes: ['fw', '*'], ipFields: ['src_ip', 'All_Traffic.src'] } }).success).toBe(true);
  });
});

describe('enrichment through splunk-sdk against the contract server', () => {
  let splunk: SplunkContractServer;

  beforeAll(async () => {
    splunk = await SplunkContractServer.start({
      hecTokens: [{ token: HEC_TOKEN, indexes: ['fw', 'proxy'], defaultIndex: 'fw' }],
      users: [{ username: 'cordon-enrich', password: 'p4ss' }],
      authTokens: ['cordon-search-token'],
    });
    // what Splunk already holds: firewall traffic of the incident's hosts, some of it old, and noise
    const now = Date.now() / 1000;
    const fw = (src: string, dest: string, port: number, age = 60, sourcetype = 'pan:traffic') =>
      JSON.stringify({ time: now - age, sourcetype, index: 'fw', event: { src, dest, dest_port: port, action: 'blocked' } });
    const body = [
      fw('10.1.0.5', '10.1.0.6', 445),
      fw('10.1.0.5', '10.1.0.6', 445),
      fw('10.1.0.5', '10.1.0.10', 3389),
      fw('10.1.0.7', '10.1.0.6', 22, 120, 'cisco:asa'),
      fw('10.1.0.5', '10.1.0.6', 445, 3 * 86_400), // older than -24h
      fw('10.9.9.9', '10.9.9.8', 80), // unrelated
      fw(HOSTILE, '10.9.9.8', 8080, 60, 'proxy:web'),
      JSON.stringify({ time: now - 30, sourcetype: 'secret:stuff', index: 'proxy', event: { src: 'nobody', dest: 'x', dest_port: 1 } }),
    ].join('');
    const res = await fetch(`${splunk.url}/services/collector/event`, { method: 'POST', headers: { Authorization: `Splunk ${HEC_TOKEN}` }, body });
    expect(res.status).toBe(200);
  });
  afterAll(() => splunk.close());

  const searchConfig = (over: Record<string, unknown>) =>
    SplunkSiemConfig.parse({ search: { enabled: true, url: splunk.url, ipFields: ['src', 'dest'], hostFields: [], ...over } }).search;

  it('logs in with username and password and runs a oneshot search; the summary attaches to the incident', async () => {
    const enricher = new SplunkEnricher(searchConfig({ username: 'cordon-enrich', password: 'p4ss' }));
    const before = splunk.restRequests.length;
    const summary = await enricher.recentActivity(sampleIncident());
    expect(summary).toMatchObject({
      source: 'splunk',
      earliest: '-24h',
      rows: [
        { sourcetype: 'pan:traffic', dest_port: '445', count: 2 },
        { sourcetype: 'cisco:asa', dest_port: '22', count: 1 },
        { sourcetype: 'pan:traffic', dest_port: '3389', count: 1 },
      ],
      total: 4,
      sourcetypes: ['pan:traffic', 'cisco:asa'],
      ports: ['445', '22', '3389'],
      truncated: false,
      entitiesLeftOut: 0,
    });
    expect(splunk.searches.at(-1)).toBe(summary.query);
    // what splunk-sdk sent: login (form post), server/info for the version, then the v1 jobs endpoint
    const sent = splunk.restRequests.slice(before);
    expect(sent.map((r) => [r.method, r.path, r.status])).toEqual([
      ['POST', '/services/auth/login', 200],
      ['GET', '/services/server/info', 200],
      ['POST', '/services/search/jobs', 200],
    ]);
    expect(sent[2]!.params).toMatchObject({ exec_mode: 'oneshot', output_mode: 'json', search: summary.query });
    // once it knows the server is 9.x, the SDK uses search/v2/jobs
    await enricher.recentActivity(sampleIncident());
    expect(splunk.restRequests.at(-1)).toMatchObject({ method: 'POST', path: '/services/search/v2/jobs', status: 200 });
  });

  it('authenticates with a Splunk authentication token (Bearer), and finds a hostile host name only literally', async () => {
    const enricher = new SplunkEnricher(searchConfig({ token: 'cordon-search-token', hostFields: ['src'] }));
    const incident = sampleIncident({
      entities: [{ key: 'host:ws9', kind: 'host', name: HOSTILE, role: 'workstation', roleSource: 'label', position: 'root' }],
      root: 'host:ws9',
    });
    const summary = await enricher.recentActivity(incident);
    expect(summary.rows).toEqual([{ sourcetype: 'proxy:web', dest_port: '8080', count: 1 }]);
    expect(splunk.restRequests.at(-1)).toMatchObject({ path: '/services/search/jobs', auth: 'token-user', status: 200 });
  });

  it('reports a failed login with what Splunk said', async () => {
    const enricher = new SplunkEnricher(searchConfig({ username: 'cordon-enrich', password: 'wrong' }));
    const err = await enricher.recentActivity(sampleIncident()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SplunkSearchError);
    expect(err).toMatchObject({ status: 401, message: expect.stringContaining('WARN: Login failed') });
  });

  it('reports a refused search with the FATAL message', async () => {
    const enricher = new SplunkEnricher(searchConfig({ token: 'cordon-search-token' }));
    const err = await enricher.oneshot('search index=* | boguscmd').catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 400, message: expect.stringContaining("FATAL: Unknown search command 'boguscmd'.") });
  });
});

describe('what an enrich step attaches', () => {
  let splunk: SplunkContractServer;
  beforeAll(async () => {
    splunk = await SplunkContractServer.start({ hecTokens: [{ token: HEC_TOKEN, indexes: ['fw'], defaultIndex: 'fw' }], authTokens: ['t0k3n'] });
    const now = Date.now() / 1000;
    const body = ['a', 'b', 'c', 'd']
      .map((port) => JSON.stringify({ time: now - 10, event: { src: 'ws9" | ] x', dest_port: port, note: 'n'.repeat(1_000) } }))
      .join('');
    await fetch(`${splunk.url}/services/collector/event`, { method: 'POST', headers: { Authorization: `Splunk ${HEC_TOKEN}` }, body });
  });
  afterAll(() => splunk.close());
  const enricher = (over: Record<string, unknown> = {}) =>
    new SplunkEnricher(SplunkSiemConfig.parse({ search: { enabled: true, url: splunk.url, token: 't0k3n', limit: 3, ...over } }).search);

  it('a playbook query with a quoted hostile value: at most `limit` rows, long values cut, marked truncated', async () => {
    const query = `search index=fw src=${splQuote('ws9" | ] x')} | table dest_port, note`;
    const out = await enricher().enrich(sampleIncident(), query);
    expect(out).toMatchObject({ outcome: 'ok', query, truncated: true });
    const rows = (out as { rows: Record<string, string>[] }).rows;
    expect(rows.map((r) => r.dest_port)).toEqual(['a', 'b', 'c'].filter((p) => rows.some((r) => r.dest_port === p)));
    expect(rows).toHaveLength(3);
    expect(rows[0]!.note).toHaveLength(256);
    // the client asked Splunk for one row more than it keeps, so it knows there were more
    expect(splunk.restRequests.at(-1)!.params).toMatchObject({ count: '4', exec_mode: 'oneshot' });
  });

  it('without a query, the built-in recent-activity search', async () => {
    expect(await enricher().enrich(sampleIncident(), undefined)).toMatchObject({ outcome: 'ok', source: 'splunk', earliest: '-24h', rows: [], total: 0, query: expect.stringMatching(/^search index=\* \(.*\| stats count by sourcetype, dest_port/) });
  });

  it('a refused search, a Splunk that is not there, and a slow one are outcomes, never exceptions', async () => {
    expect(await enricher().enrich(sampleIncident(), 'search index=fw | boguscmd')).toMatchObject({ outcome: 'failed', status: 400, error: expect.stringContaining("Unknown search command 'boguscmd'") });
    const nowhere = new SplunkEnricher(SplunkSiemConfig.parse({ search: { enabled: true, url: 'http://127.0.0.1:9', token: 't', timeoutMs: 2_000 } }).search);
    expect(await nowhere.enrich(sampleIncident(), 'search x')).toMatchObject({ outcome: 'failed', status: null, error: expect.stringContaining('ECONNREFUSED') });
    splunk.delaySearches(1_500);
    try {
      const started = Date.now();
      expect(await enricher({ timeoutMs: 300 }).enrich(sampleIncident(), 'search index=fw')).toEqual({ outcome: 'failed', source: 'splunk', query: 'search index=fw', status: null, error: 'Splunk search gave no result within 300 ms' });
      expect(Date.now() - started).toBeLessThan(1_200);
    } finally {
      splunk.delaySearches(0);
    }
  });

  it('boundRows keeps the record small: fields, multivalues, value length and total size', () => {
    const wide = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`f${i}`, 'v']));
    expect(Object.keys(boundRows([{ ...wide, _cd: 'x', _time: '1' }], 5).rows[0]!)).toHaveLength(32);
    expect(boundRows([{ mv: Array.from({ length: 20 }, String) }], 5)).toMatchObject({ rows: [{ mv: Array.from({ length: 16 }, String) }], truncated: true });
    const big = Array.from({ length: 500 }, () => ({ a: 'x'.repeat(200) }));
    const bounded = boundRows(big, 1_000);
    expect(Buffer.byteLength(JSON.stringify(bounded.rows))).toBeLessThanOrEqual(32 * 1024);
    expect(bounded.truncated).toBe(true);
    expect(boundRows([{ a: '1' }], 5)).toEqual({ rows: [{ a: '1' }], truncated: false });
  });
});
