import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Kafka } from 'kafkajs';
import pino from 'pino';
import { ConfigError, loadConfig, type Config } from '../src/config';
import { cordonTopics, createKafka, ensureTopics, FETCH } from '../src/kafka';
import { deleteTopics, testKafka } from './support/kafka';
import { MTLS_BROKERS, SASL_SSL_BROKERS, securityFile } from './support/kafka-security';
import { eventually, testConfig, testLog, uniq } from './support/stack';

/**
 * Cordon over the stack's real secure listeners: SASL_SSL (SCRAM-SHA-256/512) on 9094 and SSL with
 * ssl.client.auth=required on 9095, both behind StandardAuthorizer ACLs (User:cordon may use cordon*
 * topics and groups; User:stranger nothing). Nothing here is mocked.
 */

const re = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const tmp = mkdtempSync(join(tmpdir(), 'cordon-kafka-security-'));
const ca = () => securityFile('ca.crt');
const password = (user: string) => readFileSync(securityFile(`${user}.password`), 'utf8').trim();

/** testConfig's private topics and groups (named cordon-*, so the ACLs cover them) on a secure listener. */
function secureConfig(name: string, kafka: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): Config {
  const base = testConfig(`cordon-${name}`);
  return loadConfig({ env, overrides: { ...base, kafka: { ...base.kafka, ...kafka } } });
}

function sasl(mechanism: string, user: string, extra: Record<string, unknown> = {}) {
  return { brokers: SASL_SSL_BROKERS, tls: { caFile: ca() }, sasl: { mechanism, username: user, passwordFile: securityFile(`${user}.password`) }, ...extra };
}

function mtls(user: string) {
  return { brokers: MTLS_BROKERS, tls: { caFile: ca(), certFile: securityFile(`${user}.crt`), keyFile: securityFile(`${user}.key`) } };
}

/** A logger whose lines (kafkajs's included, at debug) are kept for inspection. */
function capturingLogger() {
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _enc, done) => void (lines.push(chunk.toString()), done()) });
  return { log: pino({ level: 'debug' }, sink), text: () => lines.join('') };
}

/** Creates Cordon's topics, produces one record and consumes it back, all through `kafka`. */
async function roundTrip(kafka: Kafka, config: Config): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await ensureTopics(admin, cordonTopics(config));
  } finally {
    await admin.disconnect();
  }
  const topic = config.kafka.topics.events;
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, messages: [{ key: 'ws-5', value: 'denied 10.0.0.5 -> 10.0.0.9:445' }] });
  await producer.disconnect();
  const consumer = kafka.consumer({ groupId: config.kafka.groups.ingest, ...FETCH });
  const got: string[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void got.push(String(message.value)) });
    await eventually(async () => (got.length > 0 ? true : undefined), 30_000, 'the record back');
  } finally {
    await consumer.disconnect();
  }
  return got;
}

async function connectAdmin(kafka: Kafka): Promise<void> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.listTopics();
  } finally {
    await admin.disconnect();
  }
}

const cleanups: Config[] = [];
afterAll(async () => {
  for (const config of cleanups) await deleteTopics(testKafka(), config).catch(() => undefined);
});

describe('Kafka access config', () => {
  it('takes TLS and SCRAM from the environment, mechanism in any case', () => {
    const c = loadConfig({
      env: {
        CORDON_KAFKA_TLS_CA_FILE: ca(),
        CORDON_KAFKA_TLS_CERT_FILE: securityFile('cordon.crt'),
        CORDON_KAFKA_TLS_KEY_FILE: securityFile('cordon.key'),
        CORDON_KAFKA_SASL_MECHANISM: 'scram-sha-512',
        CORDON_KAFKA_SASL_USERNAME: 'cordon',
        CORDON_KAFKA_SASL_PASSWORD: 'from-the-env',
      },
    });
    expect(c.kafka.tls).toEqual({ caFile: ca(), certFile: securityFile('cordon.crt'), keyFile: securityFile('cordon.key') });
    expect(c.kafka.sasl).toEqual({ mechanism: 'SCRAM-SHA-512', username: 'cordon', password: 'from-the-env' });
  });

  it('refuses a missing or non-PEM file, a certificate without its key, and names the key', () => {
    const notPem = join(tmp, 'not.pem');
    writeFileSync(notPem, 'hello');
    expect(() => loadConfig({ env: { CORDON_KAFKA_TLS_CA_FILE: '/nonexistent/ca.crt' } })).toThrow(/kafka\.tls\.caFile = "\/nonexistent\/ca.crt": cannot read certificate file: ENOENT/);
    expect(() => loadConfig({ env: { CORDON_KAFKA_TLS_CA_FILE: notPem } })).toThrow(/kafka\.tls\.caFile = .*expected a PEM certificate/);
    expect(() => loadConfig({ env: { CORDON_KAFKA_TLS_KEY_FILE: ca() } })).toThrow(/kafka\.tls\.keyFile = .*expected a PEM private key/);
    const encrypted = join(tmp, 'encrypted.key');
    writeFileSync(encrypted, generateKeyPairSync('ec', { namedCurve: 'P-256', privateKeyEncoding: { type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret-pass' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey);
    expect(() => loadConfig({ env: { CORDON_KAFKA_TLS_KEY_FILE: encrypted } })).toThrow(/kafka\.tls\.keyFile = .*expected an unencrypted PEM private key/);
    expect(() => loadConfig({ env: { CORDON_KAFKA_TLS_CERT_FILE: securityFile('cordon.crt') } })).toThrow(/kafka\.tls = .*expected both certFile and keyFile/);
    expect(() => loadConfig({ overrides: { kafka: { tls: { caFile: ca(), cafile: 'typo' } } }, env: {} })).toThrow(/kafka\.tls.*cafile/);
    const login = { mechanism: 'SCRAM-SHA-256', username: 'cordon', passwordFile: securityFile('cordon.password') };
    expect(() => loadConfig({ overrides: { kafka: { tls: {}, sasl: { ...login, mechanisms: 'typo' } } }, env: {} })).toThrow(/kafka\.sasl.*mechanisms/);
  });

  it('refuses SASL without TLS, an unknown mechanism, and a login with no or two password sources', () => {
    const login = { CORDON_KAFKA_SASL_MECHANISM: 'SCRAM-SHA-256', CORDON_KAFKA_SASL_USERNAME: 'cordon' };
    expect(() => loadConfig({ env: { ...login, CORDON_KAFKA_SASL_PASSWORD: 'pw-xyz' } })).toThrow(/kafka\.sasl = .*SASL needs kafka\.tls/);
    const tls = { CORDON_KAFKA_TLS_CA_FILE: ca() };
    expect(() => loadConfig({ env: { ...tls, ...login, CORDON_KAFKA_SASL_MECHANISM: 'PLAIN', CORDON_KAFKA_SASL_PASSWORD: 'pw' } })).toThrow(/kafka\.sasl\.mechanism = "PLAIN"/);
    expect(() => loadConfig({ env: { ...tls, ...login } })).toThrow(/expected exactly one of password \(CORDON_KAFKA_SASL_PASSWORD\), passwordFile/);
    expect(() =>
      loadConfig({ env: { ...tls, ...login, CORDON_KAFKA_SASL_PASSWORD: 'pw', CORDON_KAFKA_SASL_PASSWORD_FILE: securityFile('cordon.password') } }),
    ).toThrow(/expected exactly one of/);
    const empty = join(tmp, 'empty.password');
    writeFileSync(empty, '\n');
    expect(() => loadConfig({ env: { ...tls, ...login, CORDON_KAFKA_SASL_PASSWORD_FILE: empty } })).toThrow(/kafka\.sasl\.passwordFile = ".*empty\.password": password file is empty/);
  });

  it('never puts the password in an error, and refuses one written into the config file', () => {
    const env = { CORDON_KAFKA_TLS_CA_FILE: ca(), CORDON_KAFKA_SASL_MECHANISM: 'SCRAM-SHA-1', CORDON_KAFKA_SASL_USERNAME: 'cordon', CORDON_KAFKA_SASL_PASSWORD: 'hunter2-secret' };
    expect(() => loadConfig({ env })).toThrow(ConfigError);
    let message = '';
    try {
      loadConfig({ env: { ...env, CORDON_KAFKA_SASL_MECHANISM: 'SCRAM-SHA-256', CORDON_KAFKA_SASL_PASSWORD_FILE: securityFile('cordon.password') } });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/kafka\.sasl = .*"password":"\(redacted\)".*expected exactly one of/);
    expect(message).not.toContain('hunter2-secret');
    const file = join(tmp, 'cordon.yaml');
    writeFileSync(file, 'kafka:\n  sasl:\n    mechanism: SCRAM-SHA-256\n    username: cordon\n    password: inline-pw\n');
    expect(() => loadConfig({ file, env: {} })).toThrow(/kafka\.sasl\.password may not be in a config file; set CORDON_KAFKA_SASL_PASSWORD or kafka\.sasl\.passwordFile/);
  });

  it('redacts every secret-named value in a configuration error, not only the Kafka password', () => {
    expect(() => loadConfig({ env: {}, overrides: { auth: { linkSecret: 'too-short-secret' } } })).toThrow(/auth\.linkSecret = \(redacted\): expected at least 32/);
    expect(() => loadConfig({ env: {}, overrides: { auth: { linkSecret: 'too-short-secret' } } })).not.toThrow(/too-short-secret/);
  });

  it('every Kafka client in src is made by createKafka, so every one gets these settings', () => {
    const files = execFileSync('grep', ['-rlE', 'new Kafka\\(', join(__dirname, '..', 'src')], { encoding: 'utf8' }).trim().split('\n');
    expect(files.map((f) => f.replace(/.*\/src\//, 'src/'))).toEqual(['src/kafka.ts']);
  });
});

describe('SASL_SSL listener (SCRAM over TLS)', () => {
  it.each(['SCRAM-SHA-256', 'SCRAM-SHA-512'])('%s with the right password: Cordon creates its topics, produces and consumes', async (mechanism) => {
    const config = secureConfig('sasl', sasl(mechanism, 'cordon'));
    cleanups.push(config);
    expect(config.kafka.brokers).toEqual(SASL_SSL_BROKERS);
    await expect(roundTrip(createKafka(config, testLog), config)).resolves.toEqual(['denied 10.0.0.5 -> 10.0.0.9:445']);
  });

  it('takes the password from CORDON_KAFKA_SASL_PASSWORD', async () => {
    const { sasl: login, ...rest } = sasl('SCRAM-SHA-256', 'cordon');
    const config = secureConfig('sasl-env', { ...rest, sasl: { mechanism: login.mechanism, username: 'cordon' } }, { CORDON_KAFKA_SASL_PASSWORD: password('cordon') });
    await expect(connectAdmin(createKafka(config, testLog))).resolves.toBeUndefined();
  });

  it.each(['SCRAM-SHA-256', 'SCRAM-SHA-512'])('%s with a wrong password is refused at once, with a clear error, and no password is logged', async (mechanism) => {
    const wrong = `wrong-${uniq('pw')}`;
    const { sasl: login, ...rest } = sasl(mechanism, 'cordon');
    const config = secureConfig('sasl-bad', { ...rest, sasl: { mechanism: login.mechanism, username: 'cordon' } }, { CORDON_KAFKA_SASL_PASSWORD: wrong });
    const { log, text } = capturingLogger();
    const started = Date.now();
    await expect(connectAdmin(createKafka(config, log))).rejects.toThrow(
      new RegExp(`SASL ${mechanism.replace(/-/g, ' ').replace('SCRAM SHA ', 'SCRAM SHA')} authentication failed: .*invalid credentials with SASL mechanism ${mechanism}`),
    );
    expect(Date.now() - started).toBeLessThan(10_000);
    log.flush();
    expect(text()).toMatch(/authentication failed/i);
    expect(text()).not.toContain(wrong);
    expect(text()).not.toContain(password('cordon'));
  });

  it("refuses another user's password and an unknown user", async () => {
    for (const login of [{ username: 'cordon', passwordFile: securityFile('stranger.password') }, { username: uniq('nobody'), passwordFile: securityFile('cordon.password') }]) {
      const config = secureConfig('sasl-who', { brokers: SASL_SSL_BROKERS, tls: { caFile: ca() }, sasl: { mechanism: 'SCRAM-SHA-512', ...login } });
      await expect(connectAdmin(createKafka(config, testLog))).rejects.toThrow(/authentication failed/);
    }
  });

  it('a client that does not log in gets nothing from the listener', async () => {
    const config = secureConfig('sasl-none', { brokers: SASL_SSL_BROKERS, tls: { caFile: ca() } });
    await expect(connectAdmin(createKafka(config, testLog))).rejects.toThrow(/closed connection|connection closed/i);
  });

  it('an authenticated user without ACLs cannot create, write or read cordon topics', async () => {
    const owner = secureConfig('sasl-acl', sasl('SCRAM-SHA-256', 'cordon'));
    cleanups.push(owner);
    await roundTrip(createKafka(owner, testLog), owner);
    const config = { ...owner, kafka: { ...owner.kafka, sasl: { mechanism: 'SCRAM-SHA-256' as const, username: 'stranger', passwordFile: securityFile('stranger.password') } } };
    const stranger = createKafka(config, testLog);
    const by512 = { ...config, kafka: { ...config.kafka, sasl: { ...config.kafka.sasl, mechanism: 'SCRAM-SHA-512' as const } } };
    await expect(connectAdmin(createKafka(by512, testLog))).resolves.toBeUndefined();
    const admin = stranger.admin();
    await admin.connect();
    try {
      expect(await admin.listTopics()).not.toContain(owner.kafka.topics.events);
      await expect(admin.createTopics({ topics: [{ topic: `${owner.kafka.topics.events}-2` }] })).rejects.toMatchObject({
        errors: [expect.objectContaining({ type: 'TOPIC_AUTHORIZATION_FAILED' })],
      });
    } finally {
      await admin.disconnect();
    }
    const producer = stranger.producer({ retry: { retries: 0 } });
    await producer.connect();
    try {
      await expect(producer.send({ topic: owner.kafka.topics.events, messages: [{ value: 'spoofed flow' }] })).rejects.toThrow(/not authorized|authorization/i);
    } finally {
      await producer.disconnect();
    }
  });

  it('refuses a broker certificate that the configured CA did not sign, saying so', async () => {
    const config = secureConfig('sasl-ca', { ...sasl('SCRAM-SHA-256', 'cordon'), tls: { caFile: foreignCa().crt } });
    await expect(connectAdmin(createKafka(config, testLog))).rejects.toThrow(new RegExp(`Cordon does not trust the certificate of broker ${re(SASL_SSL_BROKERS[0]!)} \\(\\w+\\): is it signed by the CA in ${re(foreignCa().crt)}`));
  });
});

describe('SSL listener with ssl.client.auth=required (mTLS)', () => {
  it("Cordon's client certificate gets in: it creates its topics, produces and consumes", async () => {
    const config = secureConfig('mtls', mtls('cordon'));
    cleanups.push(config);
    await expect(roundTrip(createKafka(config, testLog), config)).resolves.toEqual(['denied 10.0.0.5 -> 10.0.0.9:445']);
  });

  it('no client certificate: refused, and the error says which keys to set', async () => {
    const config = secureConfig('mtls-none', { brokers: MTLS_BROKERS, tls: { caFile: ca() } });
    const refused = connectAdmin(createKafka(config, testLog));
    // a connection error: retried like a broker that is down, then given up with the explanation
    await expect(refused).rejects.toMatchObject({ name: 'KafkaJSNumberOfRetriesExceeded' });
    await expect(refused).rejects.toThrow(
      new RegExp(`broker ${re(MTLS_BROKERS[0]!)} requires a client certificate \\(ERR_SSL_[\\w/]+\\): set kafka\\.tls\\.certFile and kafka\\.tls\\.keyFile`),
    );
  });

  it('a client certificate from a CA the broker does not trust: refused', async () => {
    const rogue = foreignCa();
    const config = secureConfig('mtls-rogue', { brokers: MTLS_BROKERS, tls: { caFile: ca(), certFile: rogue.clientCrt, keyFile: rogue.clientKey } });
    await expect(connectAdmin(createKafka(config, testLog))).rejects.toThrow(new RegExp(`broker ${re(MTLS_BROKERS[0]!)} refused Cordon's client certificate .*rogue-cordon\\.crt`));
  });

  it("a trusted certificate of another principal is authenticated but not authorized for Cordon's topics", async () => {
    const owner = secureConfig('mtls-acl', mtls('cordon'));
    cleanups.push(owner);
    await roundTrip(createKafka(owner, testLog), owner);
    const stranger = createKafka({ ...owner, kafka: { ...owner.kafka, ...mtls('stranger') } }, testLog);
    const consumer = stranger.consumer({ groupId: `${owner.kafka.groups.ingest}-2` });
    await consumer.connect();
    try {
      await expect(consumer.subscribe({ topic: owner.kafka.topics.events, fromBeginning: true })).rejects.toThrow(/not authorized|authoriz/i);
    } finally {
      await consumer.disconnect();
    }
  });
});

let rogueMaterial: { crt: string; clientCrt: string; clientKey: string } | undefined;

/** A CA of the test's own (and a client certificate CN=cordon it signed): valid PEM, trusted by nobody. */
function foreignCa() {
  if (rogueMaterial) return rogueMaterial;
  const f = (name: string) => join(tmp, name);
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: tmp, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run('req', '-x509', ...ec, '-keyout', f('rogue-ca.key'), '-out', f('rogue-ca.crt'), '-days', '2', '-subj', '/CN=cordon-stack-ca');
  run('req', ...ec, '-keyout', f('rogue-cordon.key'), '-out', f('rogue-cordon.csr'), '-subj', '/CN=cordon');
  run('x509', '-req', '-in', f('rogue-cordon.csr'), '-CA', f('rogue-ca.crt'), '-CAkey', f('rogue-ca.key'), '-CAcreateserial', '-days', '2', '-out', f('rogue-cordon.crt'));
  rogueMaterial = { crt: f('rogue-ca.crt'), clientCrt: f('rogue-cordon.crt'), clientKey: f('rogue-cordon.key') };
  return rogueMaterial;
}
