import type { KeyObject } from 'node:crypto';
import type { Kafka } from '../kafka';
import { ChainVerifier, GENESIS, hashRecord, readRecord, type ChainHead, type VerifyFailure, type VerifyResult } from './chain';
import { checkCheckpoints, signCheckpoint, type Checkpoint } from './checkpoint';
import { readHead, readLedger, type ReadOptions } from './reader';
import type { LedgerRecord } from './records';

/** Auditing the ledger topic: verifying the chain, exporting it, and reading it verified. */

/**
 * A verify failure, with the Kafka offset of the record where the chain broke; `fenced` counts the
 * late writes of replaced writers that the read skipped (fence.ts).
 */
export type LedgerVerifyResult = (VerifyResult | (VerifyFailure & { offset: string })) & { fenced?: number };

export class LedgerBrokenError extends Error {
  override name = 'LedgerBrokenError';
  constructor(
    readonly failure: VerifyFailure & { offset: string },
    context: string,
  ) {
    super(`${context}: ledger broken at seq ${failure.seq} (offset ${failure.offset}): ${failure.reason}`);
  }
}

function counted(fenced: number): { fenced?: number } {
  return fenced > 0 ? { fenced } : {};
}

/** Walks the whole ledger topic and names the first break. */
export async function verifyLedger(kafka: Kafka, topic: string, options: ReadOptions = {}): Promise<LedgerVerifyResult> {
  const verifier = new ChainVerifier();
  let fenced = 0;
  for await (const m of readLedger(kafka, topic, { ...options, onFenced: () => fenced++ })) {
    const failure = verifier.push(m.value ?? 'null');
    if (failure) return { ...failure, offset: m.offset, ...counted(fenced) };
  }
  return { ...verifier.result(), ...counted(fenced) };
}

/**
 * Writes every record of the ledger topic (fenced late writes left out), as stored (canonical JSON), one a line. A record that is
 * not one line of text (only a tampered one can be) is written as a JSON string, so the export stays
 * JSON lines and verifying it still names that record. Returns the number of lines written.
 */
export async function exportLedger(kafka: Kafka, topic: string, write: (line: string) => Promise<void> | void): Promise<number> {
  let lines = 0;
  for await (const m of readLedger(kafka, topic)) {
    const text = m.value ? m.value.toString('utf8') : 'null';
    await write(/[\r\n\u2028\u2029]/.test(text) ? JSON.stringify(text) : text);
    lines++;
  }
  return lines;
}

/**
 * The ledger's records in order, each verified against the one before; throws LedgerBrokenError at
 * the first break. `from`: continue after this head (its record is at `from.offset`) instead of
 * starting at seq 1.
 */
export async function* verifiedRecords(
  kafka: Kafka,
  topic: string,
  context: string,
  from?: ChainHead & { offset: string },
): AsyncGenerator<{ record: LedgerRecord; offset: string }> {
  const verifier = new ChainVerifier(from ?? GENESIS);
  for await (const m of readLedger(kafka, topic, from ? { from: BigInt(from.offset) + 1n } : {})) {
    const failure = verifier.push(m.value ?? 'null');
    if (failure) throw new LedgerBrokenError({ ...failure, offset: m.offset }, context);
    yield { record: verifier.record!, offset: m.offset };
  }
}

/** A chain that verified, but disagrees with a signed checkpoint. */
export interface CheckpointMismatch {
  ok: false;
  checkpoint: Checkpoint;
  reason: string;
  /** Records that verified. */
  count: number;
}

/**
 * verifyLedger, then the chain against the signed checkpoints of this topic: a tail cut below a
 * checkpoint, a head hash that differs at a checkpointed seq, or a signature no key made, fails.
 */
export async function verifyLedgerCheckpoints(
  kafka: Kafka,
  topic: string,
  checkpoints: Checkpoint[],
  keys: KeyObject[],
): Promise<LedgerVerifyResult | CheckpointMismatch> {
  const wanted = new Set(checkpoints.filter((c) => c.topic === topic).map((c) => c.seq));
  const hashes = new Map<number, string>();
  const verifier = new ChainVerifier();
  let fenced = 0;
  for await (const m of readLedger(kafka, topic, { onFenced: () => fenced++ })) {
    const failure = verifier.push(m.value ?? 'null');
    if (failure) return { ...failure, offset: m.offset, ...counted(fenced) };
    const head = verifier.head;
    if (wanted.has(head.seq)) hashes.set(head.seq, head.hash);
  }
  const result = verifier.result();
  if (!result.ok) return { ...result, ...counted(fenced) };
  const mismatch = checkCheckpoints(checkpoints, topic, { seq: result.seq, hash: result.head }, (seq) => hashes.get(seq), keys);
  return mismatch ? { ok: false, checkpoint: mismatch.checkpoint, reason: mismatch.reason, count: result.count } : { ...result, ...counted(fenced) };
}

/** Signs where the ledger's chain stands now (its last record, verified by hash) and stores it. */
export async function takeCheckpoint(
  kafka: Kafka,
  topic: string,
  key: KeyObject,
  stores: Array<{ append(c: Checkpoint): Promise<void> }>,
  now: number = Date.now(),
): Promise<Checkpoint> {
  const { message, offsets } = await readHead(kafka, topic);
  let seq = 0;
  let head = GENESIS.hash;
  if (message) {
    const read = readRecord(message.value ?? 'null');
    if (!read.ok) throw new Error(`checkpoint of ${topic}: the last record (offset ${message.offset}) is not a ledger record: ${read.reason}`);
    if (hashRecord(read.raw) !== read.record.hash) throw new Error(`checkpoint of ${topic}: the last record (offset ${message.offset}) fails its hash`);
    seq = read.record.seq;
    head = read.record.hash;
  }
  const offset = message ? message.offset : (offsets.high - 1n < 0n ? 0n : offsets.high - 1n).toString();
  const checkpoint = signCheckpoint({ topic, partition: 0, offset, seq, head, at: now }, key);
  for (const store of stores) await store.append(checkpoint);
  return checkpoint;
}
