import { describeIssues, parseJson } from '../validation';
import { canonicalJson, sha256Hex } from './canonical';
import { LedgerEntry, LedgerRecord } from './records';

/**
 * The hash chain, pure: building the next record and verifying a sequence of records.
 * No I/O and no clock: the time of a record is passed in.
 */

/** prevHash of the first record. */
export const GENESIS_HASH = '0'.repeat(64);

/** Where a chain ends: the last record's seq and hash (seq 0 and GENESIS_HASH for an empty chain). */
export interface ChainHead {
  seq: number;
  hash: string;
}
export const GENESIS: ChainHead = Object.freeze({ seq: 0, hash: GENESIS_HASH });

export class LedgerEntryError extends Error {
  override name = 'LedgerEntryError';
}

/** SHA-256 hex over the canonical JSON of the record without its `hash` member. */
export function hashRecord(record: object): string {
  const { hash: _ignored, ...body } = record as { hash?: unknown };
  return sha256Hex(canonicalJson(body));
}

/**
 * The record that follows `prev` (undefined: the first record of a chain). The entry is validated
 * with the same rules records are read back with; an invalid entry throws LedgerEntryError.
 */
export function nextRecord(prev: ChainHead | undefined, entry: LedgerEntry, at: number): LedgerRecord {
  const parsed = LedgerEntry.safeParse(entry);
  if (!parsed.success) throw new LedgerEntryError(`invalid ledger entry: ${describeIssues(parsed.error)}`);
  const head = prev ?? GENESIS;
  const body = { seq: head.seq + 1, prevHash: head.hash, at, ...parsed.data };
  const record = LedgerRecord.safeParse({ ...body, hash: hashRecord(body) });
  if (!record.success) throw new LedgerEntryError(`invalid ledger record: ${describeIssues(record.error)}`);
  return record.data;
}

export type VerifyFailureReason =
  | 'hash mismatch'
  | 'broken link'
  | `missing record (gap from ${number} to ${number})`
  | 'duplicate seq'
  | `invalid record: ${string}`;

export interface VerifyFailure {
  ok: false;
  /** The seq of the first broken record; for a gap, the first missing seq. */
  seq: number;
  reason: VerifyFailureReason;
  /** 0-based position of the offending item in the input. */
  index: number;
  /** Records that verified before the break. */
  count: number;
}
export interface VerifySuccess {
  ok: true;
  count: number;
  /** Hash of the last record (GENESIS_HASH for an empty chain). */
  head: string;
  /** Seq of the last record (0 for an empty chain). */
  seq: number;
}
export type VerifyResult = VerifySuccess | VerifyFailure;

/**
 * Verifies a chain one record at a time, so a stream of any length is checked in constant memory.
 * Each item is a record object, or its JSON text (string or Buffer) as stored in the topic.
 * Checks, in this order, for each record: it parses as a ledger record; its seq is the next one
 * (lower: 'duplicate seq'; higher: 'missing record (gap from <last good seq> to <seq found>)');
 * its hash matches its contents ('hash mismatch'); its prevHash is the previous record's hash
 * ('broken link'). The first break is final: later items are not looked at.
 */
export class ChainVerifier {
  private last: ChainHead;
  private lastRecord: LedgerRecord | undefined;
  private index = 0;
  private verified = 0;
  private failure: VerifyFailure | undefined;

  /** `from`: the head the input continues (GENESIS: the input starts at seq 1). */
  constructor(from: ChainHead = GENESIS) {
    this.last = { seq: from.seq, hash: from.hash };
  }

  /** Checks the next item; returns the failure when this item (or an earlier one) broke the chain. */
  push(item: unknown): VerifyFailure | undefined {
    if (this.failure) return this.failure;
    const index = this.index++;
    const expected = this.last.seq + 1;
    const fail = (seq: number, reason: VerifyFailureReason) =>
      (this.failure = { ok: false, seq, reason, index, count: this.verified });

    const read = readRecord(item);
    if (!read.ok) return fail(read.seq ?? expected, read.reason);
    const { record, raw } = read;
    if (record.seq < expected) return fail(record.seq, 'duplicate seq');
    if (record.seq > expected) return fail(expected, `missing record (gap from ${this.last.seq} to ${record.seq})`);
    // The hash is over what was stored, not over what the schema made of it.
    if (hashRecord(raw) !== record.hash) return fail(record.seq, 'hash mismatch');
    if (record.prevHash !== this.last.hash) return fail(record.seq, 'broken link');
    this.last = { seq: record.seq, hash: record.hash };
    this.lastRecord = record;
    this.verified++;
    return undefined;
  }

  /** The last record that verified (undefined before the first). */
  get record(): LedgerRecord | undefined {
    return this.lastRecord;
  }

  /** The head so far (the last record that verified). */
  get head(): ChainHead {
    return { ...this.last };
  }

  result(): VerifyResult {
    return this.failure ?? { ok: true, count: this.verified, head: this.last.hash, seq: this.last.seq };
  }
}

export type ReadRecord =
  | { ok: true; record: LedgerRecord; raw: object }
  | { ok: false; reason: `invalid record: ${string}`; seq: number | undefined };

/**
 * Parses one stored record (object, or JSON text as stored): its shape and payload rules only, not
 * its hash or its place in a chain. `raw` is the document as stored: hashes are computed over it.
 */
export function readRecord(item: unknown): ReadRecord {
  let raw = item;
  if (typeof item === 'string' || Buffer.isBuffer(item)) {
    const parsed = parseJson(item.toString());
    if (!parsed.ok) return { ok: false, reason: `invalid record: ${parsed.reason}`, seq: undefined };
    raw = parsed.value;
  }
  const parsed = LedgerRecord.safeParse(raw);
  if (!parsed.success) return { ok: false, reason: `invalid record: ${describeIssues(parsed.error)}`, seq: claimedSeq(raw) };
  return { ok: true, record: parsed.data, raw: raw as object };
}

function claimedSeq(raw: unknown): number | undefined {
  const seq = raw !== null && typeof raw === 'object' ? (raw as { seq?: unknown }).seq : undefined;
  return typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 1 ? seq : undefined;
}

/** Verifies a whole chain (records or their JSON text), naming the first break. */
export function verify(records: Iterable<unknown>, from: ChainHead = GENESIS): VerifyResult {
  const verifier = new ChainVerifier(from);
  for (const record of records) if (verifier.push(record)) break;
  return verifier.result();
}

/** verify() over an async source (a topic, a file). */
export async function verifyAsync(records: AsyncIterable<unknown>, from: ChainHead = GENESIS): Promise<VerifyResult> {
  const verifier = new ChainVerifier(from);
  for await (const record of records) if (verifier.push(record)) break;
  return verifier.result();
}
