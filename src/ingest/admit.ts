import type { CordonEvent } from '../events';
import type { Format, Outcome, StreamContext } from '../normalize/normalizer';
import { normalizeRecord } from '../normalize/registry';

export interface AdmitLimits {
  maxRecordBytes: number;
  maxJsonDepth: number;
  maxFutureSkewMs: number;
  /** 0 disables the age check. */
  maxEventAgeMs: number;
}

/**
 * Everything ingest decides about one record, with no I/O: size, decoding, JSON depth, format,
 * schema, and whether its event time is plausible against the time Kafka stamped on the record.
 */
export function admit(
  value: Buffer | null,
  format: Format | 'auto',
  ctx: StreamContext,
  recordTime: number,
  limits: AdmitLimits,
): Outcome {
  if (value === null || value.length === 0) return { kind: 'reject', reason: 'empty record' };
  if (value.length > limits.maxRecordBytes) {
    return { kind: 'reject', reason: `too large: ${value.length} bytes, the limit is ${limits.maxRecordBytes}` };
  }
  const outcome = normalizeRecord(value.toString('utf8'), format, ctx, { maxBytes: limits.maxRecordBytes, maxDepth: limits.maxJsonDepth });
  if (outcome.kind !== 'events') return outcome;
  for (const event of outcome.events) {
    const late = freshness(event, recordTime, limits);
    if (late) return { kind: 'reject', reason: late };
  }
  return outcome;
}

function freshness(event: CordonEvent, recordTime: number, limits: AdmitLimits): string | undefined {
  if (event.time > recordTime + limits.maxFutureSkewMs) {
    return `future: time ${iso(event.time)} is ahead of the record's Kafka timestamp ${iso(recordTime)} by more than ${limits.maxFutureSkewMs} ms`;
  }
  if (limits.maxEventAgeMs > 0 && event.time < recordTime - limits.maxEventAgeMs) {
    return `stale: time ${iso(event.time)} is older than the record's Kafka timestamp ${iso(recordTime)} by more than ${limits.maxEventAgeMs} ms`;
  }
  return undefined;
}

const iso = (ms: number) => new Date(ms).toISOString();
