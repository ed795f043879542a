import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import type { Kafka } from 'kafkajs';
import { ConfigError, loadConfig } from '../../src/config';
import { checkpointSigned, type Checkpoint } from '../../src/ledger/checkpoint';
import { checkpointStage } from '../../src/ledger/checkpoint-stage';
import { checkpointSigningKey, checkpointVerifyKeys, type CheckpointStore } from '../../src/ledger/checkpoint-stores';
import { Checkpointer } from '../../src/ledger/checkpointer';
import { Ledger } from '../../src/ledger/ledger';
import { createLedgerTopic, testKafka } from '../support/kafka';
import { REDIS_URL, eventually, testConfig, testLog } from '../support/stack';
import { mixedEntries, quarantineHistory } from './fixtures';

const tmp = mkdtempSync(join(tmpdir(), 'cordon-checkpointer-'));
const keys = generateKeyPairSync('ed25519');
const PEM = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const keyFile = join(tmp, 'checkpoint.key');
writeFileSync(keyFile, PEM);
const store = { kind: 'file', path: join(tmp, 'cp.jsonl') };

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('ledger.checkpoint config', () => {
  it('is off without the section; defaults for interval and stores', () => {
    expect(loadConfig({ env: {} }).ledger.checkpoint).toBeUndefined();
    const c = loadConfig({ env: {}, overrides: { ledger: { checkpoint: { privateKeyFile: keyFile, store: { kind: 'elasticsearch' } } } } }).ledger.checkpoint!;
    expect(c).toEqual({ privateKeyFile: keyFile, publicKeyFiles: [], intervalMs: 300_000, store: { kind: 'elasticsearch', index: 'cordon-ledger-checkpoints' } });
    const s = loadConfig({ env: {}, overrides: { ledger: { checkpoint: { privateKeyFile: keyFile, store: { kind: 'splunk' } } } } }).ledger.checkpoint!;
    expect(s.store).toEqual({ kind: 'splunk', sourcetype: 'cordon:ledger:checkpoint' });
  });

  it('takes the key from CORDON_LEDGER_CHECKPOINT_KEY or a file, never from the config file', () => {
    const fromEnv = loadConfig({ env: { CORDON_LEDGER_CHECKPOINT_KEY: PEM }, overrides: { ledger: { checkpoint: { store } } } }).ledger.checkpoint!;
    expect(checkpointSigningKey(fromEnv)!.asymmetricKeyType).toBe('ed25519');
    expect(checkpointVerifyKeys(fromEnv)[0]!.export({ type: 'spki', format: 'pem' })).toEqual(keys.publicKey.export({ type: 'spki', format: 'pem' }));
    const file = join(tmp, 'inline.json');
    writeFileSync(file, JSON.stringify({ ledger: { checkpoint: { privateKey: PEM, store } } }));
    expect(() => loadConfig({ file, env: {} })).toThrow(
      `config file ${file}: ledger.checkpoint.privateKey may not be in a config file; set CORDON_LEDGER_CHECKPOINT_KEY or ledger.checkpoint.privateKeyFile`,
    );
  });

  it('refuses a section without a key or with both, without showing the key', () => {
    expect(() => loadConfig({ env: {}, overrides: { ledger: { checkpoint: { store } } } })).toThrow(/ledger\.checkpoint\.privateKeyFile = .*checkpoints need a key/);
    let message = '';
    try {
      loadConfig({ env: { CORDON_LEDGER_CHECKPOINT_KEY: PEM }, overrides: { ledger: { checkpoint: { privateKeyFile: keyFile, store } } } });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      message = (err as Error).message;
    }
    expect(message).toContain('set privateKeyFile or CORDON_LEDGER_CHECKPOINT_KEY, not both');
    expect(message).not.toContain('PRIVATE KEY');
    expect(() => loadConfig({ env: {}, overrides: { ledger: { checkpoint: { privateKeyFile: keyFile, store: { kind: 's3' } } } } })).toThrow(/ledger\.checkpoint\.store/);
  });

  it('a service with the section but only public keys refuses to start its checkpoint stage', async () => {
    const config = loadConfig({ env: {}, overrides: { ledger: { checkpoint: { publicKeyFiles: [keyFile], store } } } });
    const stage = checkpointStage(config, testLog, () => {
      throw new Error('not reached');
    });
    expect(stage.name).toBe('ledger-checkpoints');
    await expect(stage.start()).rejects.toThrow('ledger.checkpoint: the service signs checkpoints: set ledger.checkpoint.privateKeyFile or CORDON_LEDGER_CHECKPOINT_KEY');
  });
});

describe('Checkpointer on a real ledger writer', () => {
  let kafka: Kafka;
  let redis: Redis;
  const config = testConfig('checkpointer');

  beforeAll(async () => {
    kafka = testKafka();
    redis = new Redis(REDIS_URL);
    await createLedgerTopic(kafka, config);
  });
  afterAll(async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [config.kafka.topics.ledger] }).catch(() => undefined);
    await admin.disconnect();
    const found = await redis.keys(`${config.redis.keyPrefix}:*`);
    if (found.length > 0) await redis.del(...found);
    redis.disconnect();
  });

  it('checkpoints on the interval only when the head moved; a store that fails is reported and does not fail appends', async () => {
    const held: Checkpoint[] = [];
    let failing = false;
    const flaky: CheckpointStore = {
      describe: 'test store',
      append: async (c) => {
        if (failing) throw new Error('store down');
        held.push(c);
      },
      list: async () => held,
    };
    const ledger = await Ledger.open({ kafka, redis, log: testLog, topic: config.kafka.topics.ledger, prefix: config.redis.keyPrefix });
    const checkpointer = new Checkpointer({ topic: config.kafka.topics.ledger, key: keys.privateKey, store: flaky, intervalMs: 200, log: testLog });
    try {
      await ledger.append(mixedEntries(1)[0]!); // incident_raised: not a containment change
      await checkpointer.start(ledger);
      expect(held.map((c) => c.seq)).toEqual([1]); // at start
      await new Promise((r) => setTimeout(r, 500));
      expect(held.map((c) => c.seq)).toEqual([1]); // the head did not move: no new checkpoint

      await ledger.append(mixedEntries(2)[1]!); // incident_updated: left to the interval
      expect(held.map((c) => c.seq)).toEqual([1]);
      await eventually(async () => (held.length === 2 ? true : undefined), 2_000, 'the interval checkpoint');
      expect(held[1]).toMatchObject({ seq: 2, head: ledger.head.hash, offset: '2', topic: config.kafka.topics.ledger });
      expect(checkpointSigned(held[1]!, [keys.publicKey])).toBe(true);

      failing = true;
      const applied = await ledger.append(quarantineHistory()[1]!); // quarantine_applied: checkpointed at once, but the store is down
      expect(applied.seq).toBe(3);
      await eventually(async () => checkpointer.trouble, 2_000, 'the failure to be reported');
      expect(checkpointer.trouble).toBe('checkpoint of seq 3 to test store failed: store down');
      failing = false;
      await eventually(async () => (held.at(-1)?.seq === 3 ? true : undefined), 2_000, 'the retry on the next tick');
      expect(checkpointer.trouble).toBeUndefined();

      await ledger.append(mixedEntries(2)[1]!); // seq 4, not a containment change: the stop checkpoints it
      await checkpointer.stop();
      expect(held.at(-1)).toMatchObject({ seq: 4, head: ledger.head.hash });
    } finally {
      await checkpointer.stop();
      await ledger.close();
    }
  });
});
