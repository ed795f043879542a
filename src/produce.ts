import type { Message, Producer } from './kafka';
import { subjectKey } from './events';
import { fileSize } from './io/lines';
import { readRecords } from './io/records';
import { ProgressBar, type ProgressStream } from './io/progress';
import type { Format, StreamContext } from './normalize/normalizer';
import { normalizeRecord } from './normalize/registry';
import { isVpcHeaderLine } from './normalize/vpcflow';
import { isZeekHeaderLine } from './normalize/zeek-tsv';

export interface ProduceOptions {
  format: Format | 'auto';
  /** The Kafka timestamp: the record's own event time (a replay), or the time of sending. */
  timestamp: 'event' | 'now';
  /** Records per second; unpaced when absent. */
  rate?: number;
  /** Progress on stderr: forced on (true) or off (false); unset, only when stderr is a terminal. */
  progress?: boolean;
  /** Where progress goes (default stderr). */
  progressStream?: ProgressStream;
}

/** Publishes one telemetry file (gzip or plain; records as readRecords reads them); returns how many records it sent. */
export async function produceFile(
  producer: Producer,
  file: string,
  topic: string,
  opts: ProduceOptions,
  partitions: number,
): Promise<number> {
  const bar = new ProgressBar(`produce ${file}`, fileSize(file), { force: opts.progress, ...(opts.progressStream ? { stream: opts.progressStream } : {}) });
  const ctx: StreamContext = { state: new Map() };
  const pace = opts.rate ? pacer(opts.rate) : undefined;
  let batch: Message[] = [];
  let count = 0;
  let read = 0;
  const onBytes = (bytes: number) => {
    read = bytes;
    bar.update(bytes, count);
  };
  for await (const line of readRecords(file, onBytes)) {
    batch.push(...toMessages(line, opts.format, ctx, opts.timestamp, partitions));
    count++;
    if (batch.length >= 500 || pace) {
      await producer.send({ topic, messages: batch, acks: -1 });
      batch = [];
      await pace?.();
    }
  }
  if (batch.length > 0) await producer.send({ topic, messages: batch, acks: -1 });
  bar.update(read, count); // the bytes callback runs ahead of the records counted from them
  bar.finish();
  return count;
}

/**
 * Keys a record by its source entity so that one correlator owns each source. A record that does
 * not normalize is still sent as it is (key-less, stamped now): the service must see bad input too.
 * A VPC flow log or Zeek TSV header line goes to every partition, since each partition's reader needs it.
 */
function toMessages(line: string, format: Format | 'auto', ctx: StreamContext, ts: 'event' | 'now', partitions: number): Message[] {
  const outcome = normalizeRecord(line, format, ctx);
  if (isStreamHeader(line, format)) {
    return Array.from({ length: partitions }, (_, partition) => ({ value: line, partition }));
  }
  if (outcome.kind !== 'events' || outcome.events.length === 0) return [{ key: null, value: line }];
  const first = outcome.events[0]!;
  return [{ key: subjectKey(first), value: line, timestamp: String(ts === 'event' ? first.time : Date.now()) }];
}

function isStreamHeader(line: string, format: Format | 'auto'): boolean {
  return ((format === 'vpcflow' || format === 'auto') && isVpcHeaderLine(line)) || ((format === 'zeek' || format === 'auto') && isZeekHeaderLine(line));
}

function pacer(perSecond: number): () => Promise<void> {
  const start = Date.now();
  let n = 0;
  return async () => {
    n++;
    const due = start + (n * 1000) / perSecond;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  };
}
