import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import { takeCheckpoint, verifyLedgerCheckpoints } from '../../src/ledger/audit';
import { canonicalJson } from '../../src/ledger/canonical';
import { FileCheckpointStore, checkpointSigned, signCheckpoint } from '../../src/ledger/checkpoint';
import type { LedgerRecord } from '../../src/ledger/records';
import { createLedgerTopic, testKafka } from '../support/kafka';
import { testConfig } from '../support/stack';
import { chain, mixedEntries } from './fixtures';

/** Signed checkpoints against the real broker: a cut tail and a rewritten chain are found. */

let kafka: Kafka;
const topics: string[] = [];
const tmp = mkdtempSync(join(tmpdir(), 'cordon-checkpoint-'));
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');

beforeAll(() => {
  kafka = testKafka();
});

afterAll(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics }).catch(() => undefined);
  await admin.disconnect();
  rmSync(tmp, { recursive: true, force: true });
});

/** A fresh ledger topic (as Cordon creates it) holding these records as stored. */
async function ledgerTopic(name: string, records: LedgerRecord[]): Promise<string> {
  const config = testConfig(name);
  const topic = await createLedgerTopic(kafka, config);
  topics.push(topic);
  if (records.length > 0) {
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, acks: -1, messages: records.map((r) => ({ key: r.target, value: canonicalJson(r) })) });
    await producer.disconnect();
  }
  return topic;
}

describe('ledger checkpoints', () => {
  const records = chain(mixedEntries(12));

  it('an intact ledger passes against its checkpoints; the store is JSON lines of signed checkpoints', async () => {
    const topic = await ledgerTopic('cp-intact', records.slice(0, 8));
    const store = new FileCheckpointStore(join(tmp, 'intact.jsonl'));
    const first = await takeCheckpoint(kafka, topic, privateKey, [store], 1000);
    expect(first).toMatchObject({ topic, partition: 0, offset: '7', seq: 8, head: records[7]!.hash, at: 1000 });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, acks: -1, messages: records.slice(8).map((r) => ({ value: canonicalJson(r) })) });
    await producer.disconnect();
    await takeCheckpoint(kafka, topic, privateKey, [store], 2000);
    const lines = readFileSync(store.file, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(2);
    const checkpoints = await store.list();
    expect(checkpoints.map((c) => c.seq)).toEqual([8, 12]);
    expect(checkpoints.every((c) => checkpointSigned(c, [publicKey]))).toBe(true);
    const result = await verifyLedgerCheckpoints(kafka, topic, checkpoints, [publicKey]);
    expect(result).toEqual({ ok: true, count: 12, seq: 12, head: records[11]!.hash });
  });

  it('fails a ledger whose tail was cut below the latest checkpoint, naming the checkpoint', async () => {
    const original = await ledgerTopic('cp-full', records);
    const store = new FileCheckpointStore(join(tmp, 'cut.jsonl'));
    await takeCheckpoint(kafka, original, privateKey, [store], 1000);
    // The cut copy: the first 9 records, as if the last 3 were gone, under the checkpointed name.
    const cut = await ledgerTopic('cp-cut', records.slice(0, 9));
    // Checkpoints name their topic: the genuine checkpoint, signed again for the copy's name.
    const genuine = (await store.list()).map(({ sig: _s, ...body }) => signCheckpoint({ ...body, topic: cut }, privateKey));
    const result = await verifyLedgerCheckpoints(kafka, cut, genuine, [publicKey]);
    expect(result).toMatchObject({ ok: false, checkpoint: { seq: 12, head: records[11]!.hash }, count: 9 });
    expect((result as { reason: string }).reason).toBe('the ledger ends at seq 9, below the checkpointed seq 12: its tail was cut');
  });

  it('fails a whole chain rewritten consistently (head hash differs at the checkpointed seq)', async () => {
    const entries = mixedEntries(12);
    const rewritten = chain(entries.map((e, i) => (i === 3 ? { ...e, reason: 'nothing happened here' } : e)));
    const topic = await ledgerTopic('cp-rewrite', rewritten);
    const checkpoint = signCheckpoint({ topic, partition: 0, offset: '11', seq: 12, head: records[11]!.hash, at: 1000 }, privateKey);
    const result = await verifyLedgerCheckpoints(kafka, topic, [checkpoint], [publicKey]);
    expect(result).toMatchObject({ ok: false, checkpoint: { seq: 12 }, count: 12 });
    expect((result as { reason: string }).reason).toBe(
      `the record at seq 12 has hash ${rewritten[11]!.hash}, the checkpoint says ${records[11]!.hash}: the chain was rewritten`,
    );
  });

  it('fails a checkpoint no configured key signed', async () => {
    const topic = await ledgerTopic('cp-forged', records);
    const store = new FileCheckpointStore(join(tmp, 'forged.jsonl'));
    await takeCheckpoint(kafka, topic, other.privateKey, [store], 1000);
    const result = await verifyLedgerCheckpoints(kafka, topic, await store.list(), [publicKey]);
    expect(result).toMatchObject({ ok: false, checkpoint: { seq: 12 }, reason: 'its signature is invalid (no configured public key signed it)' });
  });
});
