import { SiemConfig } from '../../src/siem/config';

describe('siem config', () => {
  it('is off by default, with cordon-* indices and the documented Splunk defaults', () => {
    const c = SiemConfig.parse({});
    expect(c.elasticsearch).toMatchObject({ enabled: false, url: 'http://127.0.0.1:9200', indexPrefix: 'cordon', numberOfReplicas: 0, bulk: { maxDocs: 500 } });
    expect(c.splunk).toMatchObject({
      enabled: false,
      hecUrl: 'https://127.0.0.1:8088',
      index: 'cordon',
      gzip: true,
      sourcetypes: { incident: 'cordon:incident', ledger: 'cordon:ledger', deadLetter: 'cordon:dlq', finding: 'cordon:finding' },
      ack: { enabled: false },
      search: { enabled: false, earliest: '-24h', indexes: ['*'] },
    });
  });

  it('names what is wrong', () => {
    const bad = SiemConfig.safeParse({
      elasticsearch: { indexPrefix: 'Cordon', url: 'ftp://x' },
      splunk: { enabled: true, index: '_internal', search: { enabled: true } },
    });
    expect(bad.success).toBe(false);
    const paths = bad.error!.issues.map((i) => i.path.join('.')).sort();
    expect(paths).toEqual(['elasticsearch.indexPrefix', 'elasticsearch.url', 'splunk.index', 'splunk.search.token', 'splunk.token']);
  });

  it('takes API-key or basic auth for Elasticsearch, token or user/password for Splunk search', () => {
    expect(SiemConfig.safeParse({ elasticsearch: { auth: { apiKey: 'abc' } } }).success).toBe(true);
    expect(SiemConfig.safeParse({ elasticsearch: { auth: { username: 'cordon_writer', password: 'x' } } }).success).toBe(true);
    expect(SiemConfig.safeParse({ splunk: { search: { enabled: true, token: 't' } } }).success).toBe(true);
    expect(SiemConfig.safeParse({ splunk: { search: { enabled: true, username: 'u', password: 'p' } } }).success).toBe(true);
  });
});
