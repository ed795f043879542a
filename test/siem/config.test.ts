import { loadConfig } from '../../src/config';
import { SiemConfig } from '../../src/siem/config';

describe('siem config', () => {
  it('is off by default, with cordon-* indices and the documented Splunk defaults', () => {
    const c = SiemConfig.parse({});
    expect(c.elasticsearch).toMatchObject({ enabled: false, url: 'http://127.0.0.1:9200', indexPrefix: 'cordon', namespace: 'default', numberOfReplicas: 0, bulk: { maxDocs: 500 } });
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

  it('takes the namespace of the logs-cordon.<dataset>-<namespace> aliases from the file or CORDON_ES_NAMESPACE, refusing a dash', () => {
    expect(SiemConfig.parse({ elasticsearch: { namespace: 'prod_eu' } }).elasticsearch.namespace).toBe('prod_eu');
    expect(loadConfig({ env: { CORDON_ES_NAMESPACE: 'soc1' } }).elasticsearch.namespace).toBe('soc1');
    const bad = SiemConfig.safeParse({ elasticsearch: { namespace: 'prod-eu' } });
    expect(bad.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([['elasticsearch.namespace', expect.stringContaining('no "-"')]]);
  });

  it('takes API-key or basic auth for Elasticsearch, token or user/password for Splunk search', () => {
    expect(SiemConfig.safeParse({ elasticsearch: { auth: { apiKey: 'abc' } } }).success).toBe(true);
    expect(SiemConfig.safeParse({ elasticsearch: { auth: { username: 'cordon_writer', password: 'x' } } }).success).toBe(true);
    expect(SiemConfig.safeParse({ splunk: { search: { enabled: true, token: 't' } } }).success).toBe(true);
    expect(SiemConfig.safeParse({ splunk: { search: { enabled: true, username: 'u', password: 'p' } } }).success).toBe(true);
  });
});
