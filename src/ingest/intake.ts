import type { Batch, IHeaders, Message } from '../kafka';
import type { Config } from '../config';
import { isFlow, type CordonEvent } from '../events';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { Format } from '../normalize/normalizer';
import { declareVpcFormat } from '../normalize/vpcflow';
import { admit, type AdmitLimits } from './admit';
import { deadLetter, reasonClass } from './dead-letter';
import { StreamHeaders, carriesHeaders, linesFor, type StoredHeaders, type StreamHeaderStore } from './stream-headers';

/** Header on a rekeyed event naming the input record it came from: `topic/partition/offset/index`. */
export const ORIGIN_HEADER = 'cordon-origin';

/** A normalized event, where it came from, and the Kafka timestamp of its record. */
export interface Admitted {
  event: CordonEvent;
  origin: string;
  recordTime: string;
}

export interface BatchIntake {
  admitted: Admitted[];
  /** Dead letters for the records refused, ready for the dead-letter topic. */
  dead: Message[];
}

/** The parts of a consumer record intake reads. */
export interface RecordIn {
  key: Buffer | null;
  value: Buffer | null;
  offset: string;
  timestamp: string;
  headers?: IHeaders;
}

export interface Refusal {
  /** The refused record's index in its batch. */
  index: number;
  reason: string;
}

/** What one batch adds to the ingest counters, as [label, count] pairs. */
export interface IntakeCounts {
  outcomes: Array<[string, number]>;
  rejects: Array<[string, number]>;
  types: Array<[string, number]>;
}

export interface Verdicts {
  admitted: Admitted[];
  refused: Refusal[];
  counts: IntakeCounts;
  /** The stream's header lines to store, when a record of the batch changed them. */
  headers?: StoredHeaders;
}

/** A stream's state, with a count of the changes made to it (a normalizer replaces a value to change it). */
class StreamState extends Map<string, unknown> {
  changes = 0;
  override set(key: string, value: unknown): this {
    this.changes++;
    return super.set(key, value);
  }
}

interface Stream {
  ctx: { state: StreamState };
  headers: StreamHeaders;
  /** The offset after the last record read. */
  next: number;
}

/**
 * What intake decides about the records of each stream, with no I/O: each record is decoded,
 * normalized and checked, in order, with the stream's state (a VPC or Zeek header applies to the
 * lines after it). Pure enough to run in a worker thread (src/ingest/intake-pool.ts).
 */
/** What IntakeStreams is built from, as a worker thread receives it. */
export interface AdmitLimitsAndInputs {
  limits: AdmitLimits;
  inputs: ReadonlyArray<{ topic: string; vpcFields?: readonly string[] | undefined }>;
}

export class IntakeStreams {
  private readonly streams = new Map<string, Stream>();
  /** Per topic, the VPC flow log field order its input declares (seeded into every new stream context). */
  private readonly vpcFields: ReadonlyMap<string, readonly string[]>;

  constructor(
    private readonly limits: AdmitLimits,
    inputs: ReadonlyArray<{ topic: string; vpcFields?: readonly string[] | undefined }>,
  ) {
    this.vpcFields = new Map(inputs.flatMap((i) => (i.vpcFields ? [[i.topic, i.vpcFields] as const] : [])));
  }

  /**
   * `origin`: `record` names each event by its own record's coordinates; `header` takes the
   * origin a rekeying stage put on it, so a record replayed through either path dedups alike.
   */
  verdicts(topic: string, partition: number, messages: readonly RecordIn[], format: Format | 'auto', origin: 'record' | 'header'): Verdicts {
    const stream = this.stream(topic, partition);
    const { ctx, headers } = stream;
    const admitted: Admitted[] = [];
    const refused: Refusal[] = [];
    const tally = new Tally();
    for (let index = 0; index < messages.length; index++) {
      const m = messages[index]!;
      const changes = ctx.state.changes;
      const outcome = admit(m.value, format, ctx, Number(m.timestamp), this.limits);
      if (ctx.state.changes !== changes) headers.note(m.value!.toString('utf8'), Number(m.offset));
      tally.outcome(outcome.kind);
      if (outcome.kind === 'events') {
        const base = origin === 'header' ? String(m.headers?.[ORIGIN_HEADER] ?? '') : `${topic}/${partition}/${m.offset}`;
        outcome.events.forEach((event, i) => {
          admitted.push({ event, origin: origin === 'header' ? base : `${base}/${i}`, recordTime: m.timestamp });
          tally.event(event);
        });
      } else if (outcome.kind === 'reject') {
        tally.reject(reasonClass(outcome.reason));
        refused.push({ index, reason: outcome.reason });
      }
    }
    if (messages.length > 0) stream.next = Number(messages.at(-1)!.offset) + 1;
    const stored = headers.take();
    return { admitted, refused, counts: tally.counts(), ...(stored ? { headers: stored } : {}) };
  }

  /**
   * Whether a batch from `first` needs the stream's stored headers: its stream is new here (a
   * rebalance, a restart, another thread), or is read again from an earlier offset (its state then
   * holds lines the batch's records came before).
   */
  needsPrime(topic: string, partition: number, first: number): boolean {
    const stream = this.streams.get(`${topic}/${partition}`);
    return stream === undefined || first < stream.next;
  }

  /**
   * Starts the stream over with the header state it had before offset `first`: the stored lines
   * that apply there (stream-headers.ts) replayed through the normalizer, as if just read.
   * Returns how many lines were replayed.
   */
  prime(topic: string, partition: number, format: Format | 'auto', stored: StoredHeaders | undefined, first: number): number {
    const stream = this.fresh(topic, partition, stored);
    const lines = linesFor(stored, first) ?? [];
    for (const line of lines) admit(Buffer.from(line.text, 'utf8'), format, stream.ctx, 0, this.limits);
    stream.next = first;
    return lines.length;
  }

  /** A rebalance may hand a partition's stream to another reader: per-stream state starts over. */
  reset(): void {
    this.streams.clear();
  }

  private stream(topic: string, partition: number): Stream {
    return this.streams.get(`${topic}/${partition}`) ?? this.fresh(topic, partition, undefined);
  }

  private fresh(topic: string, partition: number, stored: StoredHeaders | undefined): Stream {
    const stream: Stream = { ctx: { state: new StreamState() }, headers: new StreamHeaders(stored), next: 0 };
    const fields = this.vpcFields.get(topic);
    if (fields) declareVpcFormat(stream.ctx, fields);
    this.streams.set(`${topic}/${partition}`, stream);
    return stream;
  }
}

export interface IntakeDeps {
  metrics: Metrics;
  log: Logger;
  clock: () => number;
}

/**
 * The I/O side of a batch's verdicts: the refused records become dead letters with their bytes
 * and reason, and the counts go to the metrics once per batch, not once per record.
 */
export function settleBatch(topic: string, partition: number, messages: readonly RecordIn[], verdicts: Omit<Verdicts, 'admitted'>, format: Format | 'auto', deps: IntakeDeps): Message[] {
  const { metrics, log, clock } = deps;
  const { refused, counts } = verdicts;
  for (const [outcome, n] of counts.outcomes) metrics.ingestRecords.inc({ topic, outcome }, n);
  for (const [reason, n] of counts.rejects) metrics.ingestRejects.inc({ topic, reason }, n);
  for (const [type, n] of counts.types) metrics.ingestEvents.inc({ topic, type }, n);
  if (refused.length === 0) return [];
  const dead = refused.map(({ index, reason }) => {
    const m = messages[index]!;
    return deadLetter(m, { topic, partition, offset: m.offset, timestamp: m.timestamp }, reason, format, clock());
  });
  log.warn({ topic, partition, rejected: dead.length, reasons: Object.fromEntries(counts.rejects) }, 'records sent to the dead-letter topic');
  return dead;
}

/**
 * Admission of a consumer batch in the calling thread, shared by every stage that reads telemetry.
 * With a header store, `admit` keeps each stream's header lines in Redis and restores them.
 */
export class Intake {
  private readonly streams: IntakeStreams;
  private readonly deps: IntakeDeps;
  /** Per stream, the header lines to store that are not stored yet. */
  private readonly unsaved = new Map<string, { topic: string; partition: number; headers: StoredHeaders }>();

  constructor(
    config: Config,
    metrics: Metrics,
    log: Logger,
    clock: () => number = Date.now,
    private readonly headers?: StreamHeaderStore,
  ) {
    this.streams = new IntakeStreams(config.ingest, config.kafka.inputs);
    this.deps = { metrics, log, clock };
  }

  /**
   * The batch's verdicts. With a header store, the header lines it changed wait in memory for
   * `persist`; without `restore` before it, a stream's state is this process's alone.
   */
  admitBatch(batch: Batch, format: Format | 'auto', origin: 'record' | 'header'): BatchIntake {
    const { topic, partition, messages } = batch;
    const verdicts = this.streams.verdicts(topic, partition, messages, format, origin);
    if (this.headers && verdicts.headers) this.unsaved.set(`${topic}/${partition}`, { topic, partition, headers: verdicts.headers });
    return { admitted: verdicts.admitted, dead: settleBatch(topic, partition, messages, verdicts, format, this.deps) };
  }

  /**
   * Before a batch: the header lines not stored yet are stored, then, when the batch's stream is
   * new here (or read again from an earlier offset), its stored lines are replayed.
   * `format` undefined: a topic of no telemetry.
   */
  async restore(batch: Batch, format: Format | 'auto' | undefined): Promise<void> {
    if (!this.headers || format === undefined || !carriesHeaders(format) || batch.messages.length === 0) return;
    await this.persist();
    const { topic, partition } = batch;
    const first = Number(batch.messages[0]!.offset);
    if (!this.streams.needsPrime(topic, partition, first)) return;
    const replayed = this.streams.prime(topic, partition, format, await this.headers.load(topic, partition), first);
    if (replayed > 0) this.deps.log.info({ topic, partition, offset: first, lines: replayed }, 'stream header restored');
  }

  /** Stores the header lines batches changed; before their offsets are committed. */
  async persist(): Promise<void> {
    for (const [key, entry] of [...this.unsaved]) {
      await this.headers!.save(entry.topic, entry.partition, entry.headers);
      if (this.unsaved.get(key) === entry) this.unsaved.delete(key);
    }
  }

  /** restore, admitBatch and persist: a batch whose streams' header lines are stored when it returns. */
  async admit(batch: Batch, format: Format | 'auto', origin: 'record' | 'header'): Promise<BatchIntake> {
    await this.restore(batch, format);
    const result = this.admitBatch(batch, format, origin);
    if (this.unsaved.size > 0) await this.persist();
    return result;
  }

  reset(): void {
    this.streams.reset();
  }
}

class Tally {
  readonly outcomes = new Map<string, number>();
  readonly rejects = new Map<string, number>();
  readonly types = new Map<string, number>();

  outcome(kind: 'events' | 'skip' | 'reject'): void {
    bump(this.outcomes, kind === 'events' ? 'event' : kind);
  }
  event(event: CordonEvent): void {
    bump(this.types, isFlow(event) ? `${event.action}_flow` : 'anomaly');
  }
  reject(reason: string): void {
    bump(this.rejects, reason);
  }
  counts(): IntakeCounts {
    return { outcomes: [...this.outcomes], rejects: [...this.rejects], types: [...this.types] };
  }
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}
