import type { Kafka } from 'kafkajs';
import { ChainVerifier, GENESIS, type ChainHead, type VerifyFailure, type VerifyResult } from './chain';
import { readLedger, type ReadOptions } from './reader';
import type { LedgerRecord } from './records';

/** Auditing the ledger topic: verifying the chain, exporting it, and reading it verified. */

/** A verify failure, with the Kafka offset of the record where the chain broke. */
export type LedgerVerifyResult = VerifyResult | (VerifyFailure & { offset: string });

export class LedgerBrokenError extends Error {
  override name = 'LedgerBrokenError';
  constructor(
    readonly failure: VerifyFailure & { offset: string },
    context: string,
  ) {
    super(`${context}: ledger broken at seq ${failure.seq} (offset ${failure.offset}): ${failure.reason}`);
  }
}

/** Walks the whole ledger topic and names the first break. */
export async function verifyLedger(kafka: Kafka, topic: string, options: ReadOptions = {}): Promise<LedgerVerifyResult> {
  const verifier = new ChainVerifier();
  for await (const m of readLedger(kafka, topic, options)) {
    const failure = verifier.push(m.value ?? 'null');
    if (failure) return { ...failure, offset: m.offset };
  }
  return verifier.result();
}

/**
 * Writes every record of the ledger topic, as stored (canonical JSON), one a line. A record that is
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
