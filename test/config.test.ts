import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../src/config';

describe('config', () => {
  it('has working defaults', () => {
    const c = loadConfig({ env: {} });
    expect(c.kafka.brokers).toEqual(['127.0.0.1:9092']);
    expect(c.kafka.inputs.map((i) => i.topic)).toEqual(['cordon.flows', 'cordon.anomalies']);
    expect(c.kafka.topics.dlq).toBe('cordon.dlq');
  });

  it('lets env override the file, and the file override defaults', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cordon-config-'));
    const file = join(dir, 'cordon.yaml');
    writeFileSync(file, 'http:\n  port: 9000\nredis:\n  keyPrefix: filep\n');
    const c = loadConfig({ file, env: { CORDON_REDIS_PREFIX: 'envp', CORDON_KAFKA_BROKERS: 'a:1, b:2' } });
    expect(c.http.port).toBe(9000);
    expect(c.redis.keyPrefix).toBe('envp');
    expect(c.kafka.brokers).toEqual(['a:1', 'b:2']);
  });

  it('names the key, the value and what was expected', () => {
    expect(() => loadConfig({ env: { CORDON_HTTP_PORT: 'abc' } })).toThrow(ConfigError);
    expect(() => loadConfig({ env: { CORDON_HTTP_PORT: 'abc' } })).toThrow(/http\.port = "abc": .*number/);
    expect(() => loadConfig({ env: { CORDON_KAFKA_BROKERS: 'nohost' } })).toThrow(
      /kafka\.brokers\.0 = "nohost": expected host:port/,
    );
    expect(() => loadConfig({ env: { CORDON_HTTP_PORT: '70000' } })).toThrow(/http\.port = 70000/);
  });

  it('refuses an unreadable or malformed file with its name', () => {
    expect(() => loadConfig({ file: '/nonexistent/cordon.yaml', env: {} })).toThrow(/cannot read config file \/nonexistent/);
    const dir = mkdtempSync(join(tmpdir(), 'cordon-config-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, '- just\n- a list\n');
    expect(() => loadConfig({ file, env: {} })).toThrow(/bad\.yaml: expected a mapping/);
  });

  it('refuses a config file nested too deep, JSON or YAML, naming the limit', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cordon-config-'));
    const json = join(dir, 'deep.json');
    writeFileSync(json, `{"http": {"port": 1234, "x": ${'['.repeat(100_000)}${']'.repeat(100_000)}}}`);
    expect(() => loadConfig({ file: json, env: {} })).toThrow(/deep\.json: too deep: nesting goes beyond 64 levels at offset 91/);
    const yaml = join(dir, 'deep.yaml');
    writeFileSync(yaml, `http:\n  port: 1234\n  x: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`);
    expect(() => loadConfig({ file: yaml, env: {} })).toThrow(/deep\.yaml: too deep: nesting goes beyond 64 levels/);
    const laughs = join(dir, 'laughs.yaml');
    const lines = ['a: &a [x,x,x,x,x,x,x,x,x,x]'];
    for (const [i, name] of ['b', 'c', 'd', 'e'].entries()) lines.push(`${name}: &${name} [${Array(10).fill(`*${'abcd'[i]}`).join(',')}]`);
    writeFileSync(laughs, `${lines.join('\n')}\nhttp:\n  port: 1234\n`);
    expect(() => loadConfig({ file: laughs, env: {} })).toThrow(/laughs\.yaml: Excessive alias count/);
  });

  it('ignores prototype-pollution keys in files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cordon-config-'));
    const file = join(dir, 'p.json');
    writeFileSync(file, '{"__proto__": {"polluted": true}, "http": {"port": 1234}}');
    expect(loadConfig({ file, env: {} }).http.port).toBe(1234);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('takes the intake thread count from ingest.threads or CORDON_INGEST_THREADS: auto by default, 0 to 16', () => {
    expect(loadConfig({ env: {} }).ingest.threads).toBe('auto');
    expect(loadConfig({ env: { CORDON_INGEST_THREADS: '3' } }).ingest.threads).toBe(3);
    expect(loadConfig({ env: { CORDON_INGEST_THREADS: 'auto' } }).ingest.threads).toBe('auto');
    expect(() => loadConfig({ env: { CORDON_INGEST_THREADS: '17' } })).toThrow(/ingest\.threads = 17/);
    expect(() => loadConfig({ env: { CORDON_INGEST_THREADS: 'many' } })).toThrow(/ingest\.threads = "many"/);
  });

  it('writes to Elasticsearch once a URL is configured, unless told not to; Splunk needs enabled and a token', () => {
    expect(loadConfig({ env: {} }).elasticsearch).toMatchObject({ enabled: false, url: 'http://127.0.0.1:9200', indexPrefix: 'cordon' });
    expect(loadConfig({ env: { CORDON_ES_URL: 'http://es.internal:9200' } }).elasticsearch).toMatchObject({ enabled: true, url: 'http://es.internal:9200' });
    expect(loadConfig({ env: { CORDON_ES_URL: 'http://es.internal:9200', CORDON_ES_ENABLED: 'false' } }).elasticsearch.enabled).toBe(false);
    expect(loadConfig({ env: {}, overrides: { elasticsearch: { enabled: true } } }).elasticsearch).toMatchObject({ enabled: true, url: 'http://127.0.0.1:9200' });
    expect(() => loadConfig({ env: { CORDON_ES_ENABLED: 'yes' } })).toThrow(/elasticsearch\.enabled = "yes"/);
    expect(() => loadConfig({ env: { CORDON_SPLUNK_ENABLED: 'true' } })).toThrow(/splunk\.token = undefined: splunk HEC needs a token/);
    const splunk = loadConfig({ env: { CORDON_SPLUNK_ENABLED: 'true', CORDON_SPLUNK_HEC_TOKEN: 't', CORDON_SPLUNK_HEC_URL: 'https://hec.example:8088' } }).splunk;
    expect(splunk).toMatchObject({ enabled: true, token: 't', hecUrl: 'https://hec.example:8088', index: 'cordon' });
    expect(loadConfig({ env: {} }).kafka.groups.siem).toBe('cordon-siem');
  });

  it('takes the Kubernetes, Illumio and webhook enforcer sections, naming what is wrong', () => {
    const c = loadConfig({
      env: {},
      overrides: {
        contain: {
          enforcers: {
            kubernetes: { connection: { mode: 'kubeconfig', path: '/etc/cordon/kubeconfig' } },
            illumio: { pceUrl: 'https://pce.example:8443', orgId: 1, apiKeyId: 'api_1', apiKeySecretFile: '/run/secrets/pce' },
            webhook: { url: 'https://fw.example/cordon', secretFile: '/run/secrets/hook' },
          },
        },
      },
    });
    expect(c.contain.enforcers.kubernetes).toMatchObject({ connection: { mode: 'kubeconfig' }, quarantineLabel: { key: 'cordon.io/quarantine', value: 'true' } });
    expect(c.contain.enforcers.illumio).toMatchObject({ orgId: 1, quarantineLabel: { key: 'quarantine' } });
    expect(c.contain.enforcers.webhook).toMatchObject({ name: 'webhook', url: 'https://fw.example/cordon' });
    const none = loadConfig({ env: {} }).contain.enforcers;
    expect([none.webhook, none.kubernetes, none.illumio]).toEqual([undefined, undefined, undefined]);
    expect(() => loadConfig({ env: {}, overrides: { contain: { enforcers: { webhook: { url: 'https://a.example/', secret: 'short' } } } } })).toThrow(
      /contain\.enforcers\.webhook\.secret = \(redacted\): .*32/,
    );
    expect(() => loadConfig({ env: {}, overrides: { contain: { enforcers: { illumio: { pceUrl: 'ftp://pce', orgId: 0, apiKeyId: 'a', apiKeySecret: 's' } } } } })).toThrow(
      /contain\.enforcers\.illumio\.pceUrl = "ftp:\/\/pce": expected an http\(s\) URL[\s\S]*contain\.enforcers\.illumio\.orgId = 0/,
    );
  });

  it('takes the inbound alert section', () => {
    const c = loadConfig({ env: {}, overrides: { alerts: { splunk: { secrets: [{ name: 'sh1', sha256: 'a'.repeat(64) }] } } } });
    expect(c.alerts).toMatchObject({ enabled: true, defaultScore: 0.8, splunk: { secrets: [{ name: 'sh1' }] }, elastic: { secrets: [] } });
    expect(() => loadConfig({ env: {}, overrides: { alerts: { elastic: { secrets: [{ name: 'k', sha256: 'secret' }] } } } })).toThrow(
      /alerts\.elastic\.secrets\.0\.sha256 = "secret": expected the SHA-256 hex of the secret/,
    );
  });

  it('loads every example configuration shipped in connectors/', () => {
    const root = join(__dirname, '..', 'connectors');
    const examples = readdirSync(root).flatMap((d) => readdirSync(join(root, d)).filter((f) => f.endsWith('.example.yaml')).map((f) => join(root, d, f)));
    expect(examples.length).toBeGreaterThanOrEqual(7);
    for (const file of examples) expect(() => loadConfig({ file, env: {} })).not.toThrow();
    const k8s = loadConfig({ file: join(root, 'kubernetes', 'cordon-kubernetes.example.yaml'), env: {} });
    expect(k8s.contain.enforcers.kubernetes?.connection).toEqual({ mode: 'inCluster' });
    expect(loadConfig({ file: join(root, 'elasticsearch', 'cordon-elasticsearch.example.yaml'), env: {} }).elasticsearch.enabled).toBe(true);
  });
});
