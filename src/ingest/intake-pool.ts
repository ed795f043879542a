import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Batch, Message } from '../kafka';
import type { Format } from '../normalize/normalizer';
import { murmur2 } from '../partition';
import { ORIGIN_HEADER, settleBatch, type AdmitLimitsAndInputs, type IntakeCounts, type IntakeDeps, type Refusal } from './intake';
import { carriesHeaders, type StoredHeaders, type StreamHeaderStore } from './stream-headers';

export interface RekeyRequest {
  kind: 'rekey';
  id: number;
  topic: string;
  partition: number;
  format: string;
  eventPartitions: number;
  /** The batch's values, one after another; `ends[i]` is where value i ends, -1 for a null value. */
  buffer: ArrayBuffer;
  ends: Int32Array;
  offsets: string[];
  timestamps: string[];
  /** The stream's header lines are kept (stream-headers.ts): a new stream is primed, changes reported. */
  keepHeaders: boolean;
  /** The stream's stored header lines (null: none), sent when the thread asked for them. */
  primed?: StoredHeaders | null;
}

export type ThreadRequest = RekeyRequest | { kind: 'reset' };

export interface RekeyReply {
  id: number;
  keys: string[];
  partitions: number[];
  values: string[];
  origins: string[];
  recordTimes: string[];
  refused: Refusal[];
  counts: IntakeCounts;
  /** The header lines to store, when the batch changed them. */
  headers?: StoredHeaders;
  /** How many stored header lines were replayed before the batch. */
  restored?: number;
}

/** The thread's state of the batch's stream is new (or read again): it wants the stored header lines first. */
export interface PrimeWanted {
  id: number;
  needsPrime: true;
}

type Reply = RekeyReply | PrimeWanted | { id: number; error: string };

export interface Rekeyed {
  events: Message[];
  dead: Message[];
}

/** `auto`: one thread a core beyond two (the main thread and the broker's share), at most four. */
export function intakeThreads(setting: number | 'auto', cores = availableParallelism()): number {
  return setting === 'auto' ? Math.max(0, Math.min(4, cores - 2)) : setting;
}

interface Pending {
  resolve: (reply: RekeyReply | PrimeWanted) => void;
  reject: (err: Error) => void;
}

/**
 * Intake on worker threads: parse, validation, normalization and the events topic records.
 * Every batch of one partition goes to the same thread, which holds that stream's state and
 * answers in arrival order; the caller's await per batch keeps a partition's batches in order.
 * A thread that dies fails its batches in flight (the consumer then reads them again) and is
 * replaced. The original records never leave the main thread, so a dead letter keeps their bytes.
 */
export class IntakePool {
  private readonly threads: Array<{ worker: Worker; pending: Map<number, Pending> }> = [];
  private nextId = 1;
  private closing = false;

  constructor(
    private readonly setup: AdmitLimitsAndInputs,
    size: number,
    private readonly deps: IntakeDeps,
    private readonly headers?: StreamHeaderStore,
  ) {
    for (let i = 0; i < size; i++) this.threads.push(this.spawn(i));
  }

  get size(): number {
    return this.threads.length;
  }

  async rekey(batch: Batch, format: Format | 'auto', eventPartitions: number): Promise<Rekeyed> {
    const { topic, partition, messages } = batch;
    const thread = this.route(topic, partition);
    const keep = this.headers !== undefined && carriesHeaders(format);
    let reply = await this.ask(thread, request(batch, format, eventPartitions, this.nextId++, keep));
    if ('needsPrime' in reply) {
      const primed = (await this.headers!.load(topic, partition)) ?? null;
      reply = await this.ask(thread, { ...request(batch, format, eventPartitions, this.nextId++, keep), primed });
    }
    if ('needsPrime' in reply) throw new Error(`intake thread ${thread}: asked for the stream's header lines twice`);
    if (reply.restored) this.deps.log.info({ topic, partition, offset: messages[0]?.offset, lines: reply.restored }, 'stream header restored');
    if (reply.headers) await this.headers!.save(topic, partition, reply.headers);
    const events = reply.values.map((value, i) => ({
      key: reply.keys[i]!,
      partition: reply.partitions[i]!,
      value,
      timestamp: reply.recordTimes[i]!,
      headers: { [ORIGIN_HEADER]: reply.origins[i]! },
    }));
    return { events, dead: settleBatch(topic, partition, messages, reply, format, this.deps) };
  }

  /** A rebalance may hand a partition's stream to another reader: every thread's stream state starts over. */
  reset(): void {
    for (const { worker } of this.threads) worker.postMessage({ kind: 'reset' } satisfies ThreadRequest);
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.threads.map(({ worker }) => worker.terminate()));
  }

  private route(topic: string, partition: number): number {
    return (murmur2(Buffer.from(`${topic}/${partition}`)) & 0x7fffffff) % this.threads.length;
  }

  private ask(index: number, req: RekeyRequest): Promise<RekeyReply | PrimeWanted> {
    const thread = this.threads[index]!;
    return new Promise((resolve, reject) => {
      thread.pending.set(req.id, { resolve, reject });
      thread.worker.ref();
      thread.worker.postMessage(req, [req.buffer]);
    });
  }

  private spawn(index: number): { worker: Worker; pending: Map<number, Pending> } {
    const worker = new Worker(threadScript(), { workerData: this.setup, name: `cordon-intake-${index}` });
    const pending = new Map<number, Pending>();
    worker.on('message', (reply: Reply) => {
      const waiting = pending.get(reply.id);
      pending.delete(reply.id);
      // an idle pool does not keep the process alive; a batch in flight does
      if (pending.size === 0) worker.unref();
      if ('error' in reply) waiting?.reject(new Error(`intake thread ${index}: ${reply.error}`));
      else waiting?.resolve(reply);
    });
    worker.on('error', (err) => this.deps.log.error({ err, thread: index }, 'intake thread failed'));
    worker.on('exit', (code) => {
      for (const p of pending.values()) p.reject(new Error(`intake thread ${index} exited with code ${code}`));
      pending.clear();
      if (!this.closing) this.threads[index] = this.spawn(index);
    });
    worker.unref();
    return { worker, pending };
  }
}

function request(batch: Batch, format: Format | 'auto', eventPartitions: number, id: number, keepHeaders: boolean): RekeyRequest {
  const { messages } = batch;
  let total = 0;
  for (const m of messages) total += m.value?.length ?? 0;
  const bytes = Buffer.allocUnsafeSlow(total);
  const ends = new Int32Array(messages.length);
  let at = 0;
  messages.forEach((m, i) => {
    if (m.value === null) return void (ends[i] = -1);
    m.value.copy(bytes, at);
    ends[i] = at += m.value.length;
  });
  const buffer = bytes.buffer as ArrayBuffer;
  return { kind: 'rekey', id, topic: batch.topic, partition: batch.partition, format, eventPartitions, buffer, ends, offsets: messages.map((m) => m.offset), timestamps: messages.map((m) => m.timestamp), keepHeaders };
}

/** The built thread script beside this module; under ts-jest, which runs the sources, the build's. */
function threadScript(): string {
  const beside = path.join(__dirname, 'intake-thread.js');
  return existsSync(beside) ? beside : path.resolve(__dirname, '../../dist/src/ingest/intake-thread.js');
}
