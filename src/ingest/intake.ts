import type { Batch, IHeaders, Message } from '../kafka';
import type { Config } from '../config';
import { isFlow, type CordonEvent } from '../events';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { Format, StreamContext } from '../normalize/normalizer';
import { declareVpcFormat } from '../normalize/vpcflow';
import { admit, type AdmitLimits } from './admit';
import { deadLetter, reasonClass } from './dead-letter';

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
  private readonly streams = new Map<string, StreamContext>();
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
    const ctx = this.streamContext(topic, partition);
    const admitted: Admitted[] = [];
    const refused: Refusal[] = [];
    const tally = new Tally();
    for (let index = 0; index < messages.length; index++) {
      const m = messages[index]!;
      const outcome = admit(m.value, format, ctx, Number(m.timestamp), this.limits);
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
    return { admitted, refused, counts: tally.counts() };
  }

  /** A rebalance may hand a partition's stream to another reader: per-stream state starts over. */
  reset(): void {
    this.streams.clear();
  }

  private streamContext(topic: string, partition: number): StreamContext {
    const key = `${topic}/${partition}`;
    let ctx = this.streams.get(key);
    if (!ctx) {
      this.streams.set(key, (ctx = { state: new Map() }));
      const fields = this.vpcFields.get(topic);
      if (fields) declareVpcFormat(ctx, fields);
    }
    return ctx;
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

/** Admission of a consumer batch in the calling thread, shared by every stage that reads telemetry. */
export class Intake {
  private readonly streams: IntakeStreams;
  private readonly deps: IntakeDeps;

  constructor(config: Config, metrics: Metrics, log: Logger, clock: () => number = Date.now) {
    this.streams = new IntakeStreams(config.ingest, config.kafka.inputs);
    this.deps = { metrics, log, clock };
  }

  admitBatch(batch: Batch, format: Format | 'auto', origin: 'record' | 'header'): BatchIntake {
    const { topic, partition, messages } = batch;
    const verdicts = this.streams.verdicts(topic, partition, messages, format, origin);
    return { admitted: verdicts.admitted, dead: settleBatch(topic, partition, messages, verdicts, format, this.deps) };
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
