import type { IHeaders, Message } from '../kafka';

/** Where a record came from, as the dead-letter headers name it. */
export interface Origin {
  topic: string;
  partition: number;
  offset: string;
  timestamp: string;
}

export const DLQ_HEADERS = {
  reason: 'cordon-dlq-reason',
  topic: 'cordon-source-topic',
  partition: 'cordon-source-partition',
  offset: 'cordon-source-offset',
  timestamp: 'cordon-source-timestamp',
  format: 'cordon-format',
  at: 'cordon-dlq-at',
} as const;

/**
 * A dead letter keeps the original bytes as its value and key untouched, the original headers,
 * and says in its own headers where the record came from and why it was refused.
 */
export function deadLetter(
  original: { key: Buffer | null; value: Buffer | null; headers?: IHeaders },
  origin: Origin,
  reason: string,
  format: string,
  now: number,
): Message {
  return {
    key: original.key,
    value: original.value,
    headers: {
      ...original.headers,
      [DLQ_HEADERS.reason]: reason,
      [DLQ_HEADERS.topic]: origin.topic,
      [DLQ_HEADERS.partition]: String(origin.partition),
      [DLQ_HEADERS.offset]: origin.offset,
      [DLQ_HEADERS.timestamp]: origin.timestamp,
      [DLQ_HEADERS.format]: format,
      [DLQ_HEADERS.at]: new Date(now).toISOString(),
    },
  };
}

/** Low-cardinality reason class for metrics; the full reason travels in the dead letter. */
export function reasonClass(reason: string): string {
  const m = /^(?:[a-z]+: )?(malformed JSON|forbidden key|unknown format|too large|too deep|not text|empty|stale|future)/i.exec(reason);
  if (m) return m[1]!.toLowerCase().replace(/[^a-z]+/g, '_');
  const format = /^([a-z]+):/.exec(reason);
  return format ? `${format[1]}_invalid_field` : 'invalid';
}
