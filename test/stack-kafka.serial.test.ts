import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { SECURITY_DIR } from './support/kafka-security';
import { uniq } from './support/stack';
import { createTopicsReady } from '../src/kafka';

/**
 * scripts/stack.sh's Kafka on a stack dir and ports of its own (the shared broker is left alone):
 * a fresh `up` makes the TLS material and grants, a second `up` changes nothing, and a changed
 * config restarts the broker with its data kept.
 */

jest.setTimeout(240_000);

const REPO = join(__dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'cordon-stack-kafka-'));
const PORT = 49092;
const env = (mtlsPort: number) => ({
  ...process.env,
  CORDON_STACK_DIR: dir,
  KAFKA_PORT: String(PORT),
  KAFKA_CONTROLLER_PORT: String(PORT + 1),
  KAFKA_SASL_SSL_PORT: String(PORT + 2),
  KAFKA_MTLS_PORT: String(mtlsPort),
  KAFKA_HEAP: '512m',
});

function stack(args: string[], mtlsPort = PORT + 3): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('bash', ['scripts/stack.sh', ...args], { cwd: REPO, env: env(mtlsPort), timeout: 240_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`stack.sh ${args.join(' ')}: ${stderr}`)) : resolve(stdout + stderr),
    ),
  );
}

const pid = () => readFileSync(join(dir, 'kafka', 'kafka.pid'), 'utf8').trim();
const kafka = () => new Kafka({ clientId: 'stack-kafka-test', brokers: [`127.0.0.1:${PORT}`], logLevel: logLevel.NOTHING });

beforeAll(() => {
  // the broker's jars, as the shared stack resolved them, so this test needs no Maven
  const shared = join(SECURITY_DIR, '..');
  if (existsSync(join(shared, 'libs', '.complete'))) {
    for (const f of ['libs', 'pom.xml']) cpSync(join(shared, f), join(dir, 'kafka', f), { recursive: true });
  }
});

afterAll(async () => {
  await stack(['down', 'kafka']).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

describe('stack.sh kafka', () => {
  const topic = uniq('stack-kafka');

  it('a fresh up makes the CA and certificates, starts the secure listeners and grants the users', async () => {
    const out = await stack(['up', 'kafka']);
    expect(out).toMatch(/making a throwaway CA, broker and client certificates and SCRAM passwords/);
    expect(out).toMatch(/granting SCRAM-SHA-256\/512 users cordon stranger/);
    for (const f of ['ca.crt', 'broker.pem', 'cordon.crt', 'cordon.key', 'cordon.password', 'stranger.password']) {
      expect(existsSync(join(dir, 'kafka', 'security', f))).toBe(true);
    }
    const status = await stack(['status', 'kafka']);
    expect(status).toMatch(new RegExp(`kafka +running .*sasl_ssl=127\\.0\\.0\\.1:${PORT + 2}\\(open\\) ssl_mtls=127\\.0\\.0\\.1:${PORT + 3}\\(open\\)`));
    const k = kafka();
    const admin = k.admin();
    await admin.connect();
    await createTopicsReady(admin, [{ topic, numPartitions: 1 }]);
    await admin.disconnect();
    const producer = k.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ value: 'kept across restarts' }] });
    await producer.disconnect();
  });

  it('a second up leaves the running broker and the grants as they are', async () => {
    const before = pid();
    const out = await stack(['up', 'kafka']);
    expect(out).toMatch(new RegExp(`already running \\(pid ${before}`));
    expect(out).toMatch(/SCRAM users \(cordon stranger\) and ACLs already granted/);
    expect(pid()).toBe(before);
  });

  it('a changed config restarts the broker, keeping its data', async () => {
    const before = pid();
    const out = await stack(['up', 'kafka'], PORT + 4);
    expect(out).toMatch(/server\.properties changed .* restarting pid \d+ to apply it, data kept/);
    expect(pid()).not.toBe(before);
    expect(await stack(['status', 'kafka'], PORT + 4)).toMatch(new RegExp(`ssl_mtls=127\\.0\\.0\\.1:${PORT + 4}\\(open\\)`));
    const consumer = kafka().consumer({ groupId: uniq('stack-kafka') });
    const got: string[] = [];
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void got.push(String(message.value)) });
    const deadline = Date.now() + 30_000;
    while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    await consumer.disconnect();
    expect(got).toEqual(['kept across restarts']);
  });
});
