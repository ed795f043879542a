import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import type { Kafka } from 'kafkajs';
import { buildProgram } from '../../src/cli/main';
import { loadConfig, type Config } from '../../src/config';
import { LabelStoreEnforcer } from '../../src/enforcer/label-store';
import { cordonTopics, createTopicsReady } from '../../src/kafka';
import { canonicalJson } from '../../src/ledger/canonical';
import { checkpointStage } from '../../src/ledger/checkpoint-stage';
import { Ledger } from '../../src/ledger/ledger';
import type { LedgerEntry, LedgerRecord } from '../../src/ledger/records';
import { ledgerKeys } from '../../src/ledger/registry';
import { testKafka } from '../support/kafka';
import { KAFKA_BROKERS, REDIS_URL, eventually, testConfig, testLog, uniq } from '../support/stack';
import { T0, chain, lease, quarantineHistory } from './fixtures';

/**
 * Checkpoints end to end: the service's checkpoint stage writes them as the ledger writer appends,
 * `cordon audit verify` finds a cut tail, a rewritten chain and a forged signature against them,
 * and `cordon audit rebuild` refuses to drop a quarantine the enforcer still applies.
 */

let kafka: Kafka;
let redis: Redis;
const topics: string[] = [];
const prefixes: string[] = [];
const tmp = mkdtempSync(join(tmpdir(), 'cordon-audit-cp-'));
const keys = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');
const privateKeyFile = join(tmp, 'checkpoint.key');
const publicKeyFile = join(tmp, 'checkpoint.pub');
const otherPublicKeyFile = join(tmp, 'other.pub');
writeFileSync(privateKeyFile, keys.privateKey.export({ type: 'pkcs8', format: 'pem' }));
writeFileSync(publicKeyFile, keys.publicKey.export({ type: 'spki', format: 'pem' }));
writeFileSync(otherPublicKeyFile, other.publicKey.export({ type: 'spki', format: 'pem' }));

beforeAll(() => {
  kafka = testKafka();
  redis = new Redis(REDIS_URL);
});

afterAll(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics }).catch(() => undefined);
  await admin.disconnect();
  for (const prefix of prefixes) {
    const found = await redis.keys(`${prefix}:*`);
    if (found.length > 0) await redis.del(...found);
  }
  redis.disconnect();
  rmSync(tmp, { recursive: true, force: true });
});

/** The history with every lease on the label-store enforcer, so the test can apply it for real. */
function history(): LedgerEntry[] {
  const onLabelstore = (p: unknown) => (p && typeof p === 'object' && 'enforcer' in p ? { ...p, enforcer: 'labelstore' } : p);
  return quarantineHistory().map((e) => ({ ...e, before: onLabelstore(e.before), after: onLabelstore(e.after) }) as LedgerEntry);
}

function fileFor(config: Config, extra: object = {}): string {
  const file = join(tmp, `${uniq('config')}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      log: { level: 'silent' },
      kafka: { brokers: KAFKA_BROKERS, clientId: uniq('audit'), topics: config.kafka.topics },
      redis: { url: REDIS_URL, keyPrefix: config.redis.keyPrefix },
      contain: { enforcers: { labelstore: true } },
      ledger: { checkpoint: config.ledger.checkpoint },
      ...extra,
    }),
  );
  return file;
}

async function cordon(file: string, ...args: string[]): Promise<{ stdout: string; stderr: string; exitCode: number }> {
  const out: string[] = [];
  const err: string[] = [];
  const capture = (into: string[]) => (chunk: string | Uint8Array) => (into.push(chunk.toString()), true);
  const stdout = jest.spyOn(process.stdout, 'write').mockImplementation(capture(out));
  const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(capture(err));
  const before = process.exitCode;
  try {
    await buildProgram().parseAsync(['node', 'cordon', ...args, '-c', file]);
    return { stdout: out.join(''), stderr: err.join(''), exitCode: Number(process.exitCode ?? 0) };
  } finally {
    stdout.mockRestore();
    stderr.mockRestore();
    process.exitCode = before;
  }
}

async function createLedgerTopic(config: Config): Promise<void> {
  const spec = cordonTopics(config).find((t) => t.topic === config.kafka.topics.ledger)!;
  const admin = kafka.admin();
  await admin.connect();
  try {
    // a topic just deleted is refused until the controller has finished deleting it
    await eventually(async () => createTopicsReady(admin, [spec]).then(() => true, () => undefined), 30_000, `topic ${spec.topic}`);
  } finally {
    await admin.disconnect();
  }
}

/** What someone with write access to Kafka can do: delete the ledger topic and create it again holding these records. */
async function replaceTopic(config: Config, records: LedgerRecord[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [config.kafka.topics.ledger] });
  await admin.disconnect();
  await createLedgerTopic(config);
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic: config.kafka.topics.ledger, acks: -1, messages: records.map((r) => ({ key: r.target, value: canonicalJson(r) })) });
  await producer.disconnect();
}

/** A ledger written by the writer with the service's checkpoint stage running; returns its records. */
async function writeLedger(config: Config): Promise<LedgerRecord[]> {
  await createLedgerTopic(config);
  let now = T0;
  const ledger = await Ledger.open({ kafka, redis, log: testLog, topic: config.kafka.topics.ledger, prefix: config.redis.keyPrefix, clock: () => (now += 1000) });
  const stage = checkpointStage(config, testLog, () => ledger);
  try {
    await stage.start();
    const records: LedgerRecord[] = [];
    for (const entry of history()) records.push(await ledger.append(entry));
    return records;
  } finally {
    await stage.stop();
    await ledger.close();
  }
}

function setup(name: string): { config: Config; store: string } {
  const base = testConfig(name);
  const store = join(tmp, `${base.redis.keyPrefix}.jsonl`);
  const config = loadConfig({
    env: {},
    overrides: {
      kafka: { brokers: KAFKA_BROKERS, topics: base.kafka.topics },
      redis: { url: REDIS_URL, keyPrefix: base.redis.keyPrefix },
      ledger: { checkpoint: { privateKeyFile, publicKeyFiles: [publicKeyFile], store: { kind: 'file', path: store } } },
    },
  });
  topics.push(config.kafka.topics.ledger);
  prefixes.push(config.redis.keyPrefix);
  return { config, store };
}

describe('cordon audit verify against checkpoints', () => {
  it('the writer checkpoints every containment change; verify passes, then finds the tail cut', async () => {
    const { config, store } = setup('cp-cli-cut');
    const records = await writeLedger(config);
    // quarantine_applied/extended/released/expired records only; failed (14) and drift (15) are not containment changes
    const seqs = readFileSync(store, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq);
    expect(seqs).toEqual([2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 16]);

    const file = fileFor(config);
    expect(await cordon(file, 'audit', 'verify')).toEqual({
      stdout: `ok: 16 records, head ${records[15]!.hash}; 11 checkpoint(s) in file ${store} agree\n`,
      stderr: '',
      exitCode: 0,
    });

    await replaceTopic(config, records.slice(0, 8));
    const cut = await cordon(file, 'audit', 'verify');
    expect(cut.exitCode).toBe(1);
    expect(cut.stdout).toMatch(
      new RegExp(
        `^FAILED against the checkpoint of ${config.kafka.topics.ledger.replace(/\./g, '\\.')}\\[0\\] at seq 16 \\(offset 16, [^)]+\\) in file ${store.replace(/\./g, '\\.')}: ` +
          'the ledger ends at seq 8, below the checkpointed seq 16: its tail was cut; 8 record\\(s\\) verified\\n$',
      ),
    );
    // An export is checked for its chain only.
    const exported = join(tmp, `${config.redis.keyPrefix}.export.jsonl`);
    await cordon(file, 'audit', 'export', '--out', exported);
    expect(await cordon(file, 'audit', 'verify', '--file', exported)).toMatchObject({ stdout: `ok: 8 records, head ${records[7]!.hash}\n`, exitCode: 0 });
  });

  it('finds a chain rewritten consistently, and checkpoints no configured key signed', async () => {
    const { config, store } = setup('cp-cli-rewrite');
    const records = await writeLedger(config);
    const rewritten = chain(history().map((e, i) => (i === 2 ? { ...e, reason: 'nothing happened here' } : e)));
    await replaceTopic(config, rewritten);
    const result = await cordon(fileFor(config), 'audit', 'verify');
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toContain(`at seq 16 (offset 16, `);
    expect(result.stdout).toContain(`: the record at seq 16 has hash ${rewritten[15]!.hash}, the checkpoint says ${records[15]!.hash}: the chain was rewritten; 16 record(s) verified`);

    const forged = fileFor(config, { ledger: { checkpoint: { publicKeyFiles: [otherPublicKeyFile], store: { kind: 'file', path: store } } } });
    const unsigned = await cordon(forged, 'audit', 'verify');
    expect(unsigned.exitCode).toBe(1);
    expect(unsigned.stdout).toMatch(/^FAILED against the checkpoint of .* at seq 16 .*: its signature is invalid \(no configured public key signed it\); 16 record\(s\) verified\n$/);
  });

  it('names a store that holds something other than checkpoints, without a stack trace', async () => {
    const { config, store } = setup('cp-cli-junk');
    await writeLedger(config);
    writeFileSync(store, `${readFileSync(store, 'utf8')}{"seq":"17"}\n`);
    await expect(cordon(fileFor(config), 'audit', 'verify')).rejects.toThrow(`cordon audit verify: ${store} line 12: `);
  });
});

describe('cordon audit rebuild against the enforcers', () => {
  it('refuses to drop a quarantine still applied on the enforcer, naming it; drops it once the enforcer no longer has it', async () => {
    const { config } = setup('cp-cli-rebuild');
    const records = await writeLedger(config);
    const enforcer = new LabelStoreEnforcer(redis, config.redis.keyPrefix);
    const f = lease('pod:f', { enforcer: 'labelstore' }).ref;
    await enforcer.apply({ target: f, labels: { 'cordon.io/quarantine': 'true' }, expiresAt: T0 + 600_000, leaseId: 'pod:f' });
    const registry = ledgerKeys(config.redis.keyPrefix);
    const before = await redis.hgetall(registry.leases);
    expect(JSON.parse(before['pod:f']!)).toMatchObject({ state: 'pending', enforcer: 'labelstore' });

    // The tail (seq 9..16, pod:f's apply among them) is gone from Kafka; the registry still holds pod:f.
    await replaceTopic(config, records.slice(0, 8));
    const file = fileFor(config);
    const refused = await cordon(file, 'audit', 'rebuild', '--no-record');
    expect(refused).toMatchObject({ stdout: '', exitCode: 1 });
    expect(refused.stderr).toBe(
      'cordon audit rebuild: refused, the registry is left as it was: the rebuilt registry would drop 1 quarantine(s) still in place: ' +
        'pod:f (still quarantined on labelstore; the ledger has no lease for it); run cordon audit verify: the ledger may have lost its tail or been rewritten\n',
    );
    expect(await redis.hgetall(registry.leases)).toEqual(before);

    // Released on the enforcer by hand: nothing is left in place, so the rebuild may drop it.
    await enforcer.setLabels(f, {});
    const rebuilt = await cordon(file, 'audit', 'rebuild', '--no-record', '--json');
    expect(rebuilt.exitCode).toBe(0);
    expect(JSON.parse(rebuilt.stdout)).toMatchObject({ records: 8, head: { seq: 8 } });
    expect(Object.keys(await redis.hgetall(registry.leases)).sort()).toEqual(['pod:a', 'pod:b']);
  });

  it('refuses when the enforcer of a lease it would drop is not configured', async () => {
    const { config } = setup('cp-cli-noenf');
    const records = await writeLedger(config);
    await replaceTopic(config, records.slice(0, 8));
    const refused = await cordon(fileFor(config, { contain: { enforcers: { labelstore: false } } }), 'audit', 'rebuild', '--no-record');
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain('pod:f (applied on labelstore, which is not configured here, so it cannot be checked; the ledger has no lease for it)');
  });
});
