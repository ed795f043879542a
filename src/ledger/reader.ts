import { randomUUID } from 'node:crypto';
import type { Admin, Kafka } from '../kafka';
import { FETCH } from '../kafka';
import { retry } from '../retry';
import { EpochFence, fenceHeaders, WRITER_HEADER } from './fence';

export { WRITER_HEADER };

/**
 * Reading the ledger topic: a plain consumer in a group of its own that commits nothing, positioned
 * with seek, reading up to the end offset the topic had when the read began. Readers see records
 * only: fence markers and fenced late writes (fence.ts) are skipped.
 */

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
  /** A writer's fence marker, not a record (only `raw` reads yield them). */
  marker?: boolean;
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
  /**
   * First offset to read (default: the beginning of the log). It must follow an admitted message
   * (a record or marker a reader yields): the fence is primed from the message before it.
   */
  from?: bigint;
  /** Read up to this offset, exclusive (default: the end offset at the time of the call). */
  until?: bigint;
  /** Stop with an error when no record arrives for this long (default 30 s). */
  idleTimeoutMs?: number;
  /** Yield every message as it is, markers and fenced late writes included. */
  raw?: boolean;
  /** Called for each fenced late write skipped. */
  onFenced?: (message: LedgerMessage) => void;
}

/**
 * Streams the ledger's records from `from` (default: the beginning) to its end offset at the time
 * of the call, skipping fence markers and fenced late writes (unless `raw`). Backpressure: a
 * fetched batch waits until the caller has taken it. Breaking out of the loop stops and
 * disconnects the consumer.
 */
export async function* readLedger(kafka: Kafka, topic: string, options: ReadOptions = {}): AsyncGenerator<LedgerMessage> {
  const { low, high } = await withAdmin(kafka, (admin) => ledgerOffsets(admin, topic));
  const from = options.from !== undefined && options.from > low ? options.from : low;
  const primed = !options.raw && from > low;
  const end = options.until !== undefined && options.until < high ? options.until : high;
  if (from >= end) return;
  const fence = new EpochFence();
  for await (const m of readMessages(kafka, topic, primed ? from - 1n : from, end, options.idleTimeoutMs ?? 30_000)) {
    if (options.raw) {
      yield m;
      continue;
    }
    const admission = fence.admit(m);
    if (primed && BigInt(m.offset) < from) continue;
    if (admission === 'fenced') options.onFenced?.(m);
    else if (admission === 'record') yield m;
  }
}

/** Every message of [from, high), in offset order. */
async function* readMessages(kafka: Kafka, topic: string, from: bigint, high: bigint, idleTimeoutMs: number): AsyncGenerator<LedgerMessage> {
  let next = from;
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
          messages.push({ offset: m.offset, key: m.key ? m.key.toString() : null, value: m.value, timestamp: m.timestamp, ...fenceHeaders(m.headers) });
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

export interface LedgerHead {
  /** The last admitted record (undefined when the ledger has none). */
  message?: LedgerMessage;
  offsets: LedgerOffsets;
  /** The fence at the end of the log: the highest writer epoch admitted. */
  epoch: number;
  /** Fenced late writes skipped on the way. */
  fenced: number;
}

/**
 * The ledger's last admitted record. The fence depends on everything before, so the read starts at
 * `anchor` (an admitted record, such as the registry's head) when it is still in the log and is the
 * record it names, and at the beginning otherwise.
 */
export async function readHead(kafka: Kafka, topic: string, anchor?: { offset: string; seq: number; hash: string }): Promise<LedgerHead> {
  const offsets = await withAdmin(kafka, (admin) => ledgerOffsets(admin, topic));
  const at = anchor ? BigInt(anchor.offset) : -1n;
  const anchored = at >= offsets.low && at < offsets.high;
  const head = await scanFrom(kafka, topic, anchored ? at : offsets.low);
  if (!anchored || isRecord(head.first, anchor!)) return { ...head.result, offsets };
  return { ...(await scanFrom(kafka, topic, offsets.low)).result, offsets };
}

async function scanFrom(kafka: Kafka, topic: string, from: bigint): Promise<{ first?: LedgerMessage; result: Omit<LedgerHead, 'offsets'> }> {
  const fence = new EpochFence();
  let first: LedgerMessage | undefined;
  let message: LedgerMessage | undefined;
  let fenced = 0;
  for await (const m of readLedger(kafka, topic, { from, raw: true })) {
    first ??= m;
    const admission = fence.admit(m);
    if (admission === 'record') message = m;
    else if (admission === 'fenced') fenced++;
  }
  return { ...(first ? { first } : {}), result: { ...(message ? { message } : {}), epoch: fence.epoch, fenced } };
}

function isRecord(message: LedgerMessage | undefined, head: { seq: number; hash: string }): boolean {
  if (!message?.value || message.marker) return false;
  try {
    const parsed = JSON.parse(message.value.toString()) as { seq?: unknown; hash?: unknown };
    return parsed.seq === head.seq && parsed.hash === head.hash;
  } catch {
    return false;
  }
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
