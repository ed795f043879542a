import { randomUUID } from 'node:crypto';
import type { Admin, Kafka } from '../kafka';
import { FETCH } from '../kafka';
import { retry } from '../retry';

/**
 * Reading the ledger topic: a plain consumer in a group of its own that commits nothing, positioned
 * with seek, reading up to the end offset the topic had when the read began.
 */

/** The header every append carries: the writer lock's token (`<owner>#<epoch>`). */
export const WRITER_HEADER = 'cordon-ledger-writer';

export class LedgerTopicError extends Error {
  override name = 'LedgerTopicError';
}

export interface LedgerMessage {
  /** The Kafka offset, as a decimal string. */
  offset: string;
  key: string | null;
  value: Buffer | null;
  timestamp: string;
  /** The token of the writer that appended it (its `cordon-ledger-writer` header), when it has one. */
  writer?: string;
}

export interface LedgerOffsets {
  /** First offset still in the log (0 unless records were deleted). */
  low: bigint;
  /** The offset the next record will get (high watermark). */
  high: bigint;
}

/**
 * The ledger partition's offsets. The chain needs exactly one partition: anything else is refused.
 * Errors the broker calls retriable (a leader not elected yet on a new topic, a leader moving) are
 * retried for a few seconds.
 */
export async function ledgerOffsets(admin: Admin, topic: string): Promise<LedgerOffsets> {
  const partitions = await retry(() => admin.fetchTopicOffsets(topic), {
    retries: 8,
    initialMs: 100,
    maxMs: 1_000,
    retriable: (err) => (err as { retriable?: unknown }).retriable === true,
  });
  if (partitions.length !== 1) {
    throw new LedgerTopicError(`ledger topic ${topic} has ${partitions.length} partitions; the hash chain needs exactly one`);
  }
  const p = partitions[0]!;
  return { low: BigInt(p.low), high: BigInt(p.high) };
}

export async function withAdmin<T>(kafka: Kafka, use: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await use(admin);
  } finally {
    await admin.disconnect();
  }
}

export interface ReadOptions {
  /** First offset to read (default: the beginning of the log). */
  from?: bigint;
  /** Stop with an error when no record arrives for this long (default 30 s). */
  idleTimeoutMs?: number;
}

/**
 * Streams the ledger topic from `from` (default: the beginning) to its end offset at the time of
 * the call. Backpressure: a fetched batch waits until the caller has taken it. Breaking out of the
 * loop stops and disconnects the consumer.
 */
export async function* readLedger(kafka: Kafka, topic: string, options: ReadOptions = {}): AsyncGenerator<LedgerMessage> {
  const { low, high } = await withAdmin(kafka, (admin) => ledgerOffsets(admin, topic));
  let next = options.from !== undefined && options.from > low ? options.from : low;
  if (next >= high) return;
  const idleTimeoutMs = options.idleTimeoutMs ?? 30_000;

  const handoff = new Handoff<LedgerMessage[]>();
  const consumer = kafka.consumer({
    groupId: `cordon-ledger-reader-${randomUUID()}`,
    maxBytesPerPartition: FETCH.maxBytesPerPartition,
    maxBytes: FETCH.maxBytes,
    allowAutoTopicCreation: false,
    // The end is known: a long-poll past it would only delay disconnect by its full wait.
    maxWaitTimeInMs: 100,
  });
  consumer.on(consumer.events.CRASH, (e) => handoff.fail(e.payload.error));
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    // Offsets already handed over: a re-delivery (after a rebalance, say) is dropped, not repeated.
    let delivered = next;
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch, heartbeat }) => {
        const messages: LedgerMessage[] = [];
        for (const m of batch.messages) {
          const offset = BigInt(m.offset);
          if (offset < delivered || offset >= high) continue;
          const writer = m.headers?.[WRITER_HEADER]?.toString();
          messages.push({ offset: m.offset, key: m.key ? m.key.toString() : null, value: m.value, timestamp: m.timestamp, ...(writer ? { writer } : {}) });
          delivered = offset + 1n;
        }
        if (messages.length > 0) await handoff.put(messages, heartbeat);
      },
    });
    consumer.seek({ topic, partition: 0, offset: next.toString() });
    while (next < high) {
      const messages = await handoff.take(idleTimeoutMs);
      if (messages === undefined) {
        throw new LedgerTopicError(`reading ${topic}: no record for ${idleTimeoutMs} ms at offset ${next} (end offset ${high})`);
      }
      for (const m of messages) {
        yield m;
        next = BigInt(m.offset) + 1n;
      }
    }
  } finally {
    handoff.close();
    await consumer.disconnect();
  }
}

/** The last record of the ledger topic (undefined when the log is empty), with the offsets read. */
export async function readLastMessage(kafka: Kafka, topic: string): Promise<{ message?: LedgerMessage; offsets: LedgerOffsets }> {
  const offsets = await withAdmin(kafka, (admin) => ledgerOffsets(admin, topic));
  if (offsets.high <= offsets.low) return { offsets };
  let message: LedgerMessage | undefined;
  for await (const m of readLedger(kafka, topic, { from: offsets.high - 1n })) message = m;
  return { message, offsets };
}

/**
 * Hands fetched batches from kafkajs's push loop to a pulling reader, one at a time. While a batch
 * waits, the consumer keeps heartbeating so a slow reader does not cost it its group membership.
 */
class Handoff<T> {
  private item: { value: T; taken: () => void } | undefined;
  private taker: ((value: T | undefined) => void) | undefined;
  private error: unknown;
  private closed = false;

  async put(value: T, heartbeat: () => Promise<void>): Promise<void> {
    if (this.closed) return;
    const taker = this.taker;
    if (taker) {
      this.taker = undefined;
      taker(value);
      return;
    }
    const beat = setInterval(() => void heartbeat().catch(() => undefined), 3_000);
    try {
      await new Promise<void>((taken) => (this.item = { value, taken }));
    } finally {
      clearInterval(beat);
    }
  }

  take(timeoutMs: number): Promise<T | undefined> {
    if (this.error) return Promise.reject(this.error);
    if (this.item) {
      const { value, taken } = this.item;
      this.item = undefined;
      taken();
      return Promise.resolve(value);
    }
    if (this.closed) return Promise.resolve(undefined);
    return new Promise<T | undefined>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.taker = undefined;
        resolve(undefined);
      }, timeoutMs);
      this.taker = (value) => {
        clearTimeout(timer);
        if (this.error) reject(this.error);
        else resolve(value);
      };
    });
  }

  fail(error: unknown): void {
    this.error = error ?? new Error('consumer crashed');
    this.taker?.(undefined);
    this.taker = undefined;
  }

  close(): void {
    this.closed = true;
    this.item?.taken();
    this.item = undefined;
    this.taker?.(undefined);
    this.taker = undefined;
  }
}
