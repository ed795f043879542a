import type { Batch, Message } from '../kafka';
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

/**
 * Admission of a consumer batch, shared by every stage that reads telemetry: each record is
 * decoded, normalized and checked; refused ones become dead letters with their bytes and reason.
 * Counts go to the metrics once per batch, not once per record.
 */
export class Intake {
  private readonly streams = new Map<string, StreamContext>();
  private readonly limits: AdmitLimits;
  /** Per topic, the VPC flow log field order its input declares (seeded into every new stream context). */
  private readonly vpcFields: ReadonlyMap<string, readonly string[]>;

  constructor(
    config: Config,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly clock: () => number = Date.now,
  ) {
    this.limits = config.ingest;
    this.vpcFields = new Map(config.kafka.inputs.flatMap((i) => (i.vpcFields ? [[i.topic, i.vpcFields] as const] : [])));
  }

  /**
   * `origin`: `record` names each event by its own record's coordinates; `header` takes the
   * origin a rekeying stage put on it, so a record replayed through either path dedups alike.
   */
  admitBatch(batch: Batch, format: Format | 'auto', origin: 'record' | 'header'): BatchIntake {
    const { topic, partition } = batch;
    const ctx = this.streamContext(topic, partition);
    const admitted: Admitted[] = [];
    const dead: Message[] = [];
    const tally = new Tally();
    for (const m of batch.messages) {
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
        const where = { topic, partition, offset: m.offset, timestamp: m.timestamp };
        dead.push(deadLetter(m, where, outcome.reason, format, this.clock()));
      }
    }
    tally.flush(topic, this.metrics);
    if (dead.length > 0) this.log.warn({ topic, partition, rejected: dead.length, reasons: Object.fromEntries(tally.rejects) }, 'records sent to the dead-letter topic');
    return { admitted, dead };
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
  flush(topic: string, m: Metrics): void {
    for (const [outcome, n] of this.outcomes) m.ingestRecords.inc({ topic, outcome }, n);
    for (const [reason, n] of this.rejects) m.ingestRejects.inc({ topic, reason }, n);
    for (const [type, n] of this.types) m.ingestEvents.inc({ topic, type }, n);
  }
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}
