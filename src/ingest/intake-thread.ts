import { parentPort, workerData } from 'node:worker_threads';
import type { Format } from '../normalize/normalizer';
import { eventRecord } from './event-record';
import { IntakeStreams, type AdmitLimitsAndInputs, type RecordIn } from './intake';
import type { PrimeWanted, RekeyReply, RekeyRequest, ThreadRequest } from './intake-pool';

/**
 * An intake worker thread: verdicts on the batches of the partitions routed to it, in the order
 * they arrive, and the events topic records of what it admitted. Its replies are strings and
 * numbers only: they cross to the main thread for the price of a copy, where objects would be
 * rebuilt field by field.
 */
const { limits, inputs } = workerData as AdmitLimitsAndInputs;
const streams = new IntakeStreams(limits, inputs);

parentPort!.on('message', (request: ThreadRequest) => {
  if (request.kind === 'reset') {
    streams.reset();
    return;
  }
  try {
    parentPort!.postMessage(rekey(request));
  } catch (err) {
    parentPort!.postMessage({ id: request.id, error: (err as Error).stack ?? String(err) });
  }
});

function rekey(r: RekeyRequest): RekeyReply | PrimeWanted {
  const format = r.format as Format | 'auto';
  const first = Number(r.offsets[0] ?? 0);
  let restored = 0;
  if (r.keepHeaders && r.offsets.length > 0 && streams.needsPrime(r.topic, r.partition, first)) {
    if (r.primed === undefined) return { id: r.id, needsPrime: true };
    restored = streams.prime(r.topic, r.partition, format, r.primed ?? undefined, first);
  }
  const verdicts = streams.verdicts(r.topic, r.partition, records(r), format, 'record');
  const reply: RekeyReply = { id: r.id, keys: [], partitions: [], values: [], origins: [], recordTimes: [], refused: verdicts.refused, counts: verdicts.counts, restored };
  if (r.keepHeaders && verdicts.headers) reply.headers = verdicts.headers;
  for (const a of verdicts.admitted) {
    const record = eventRecord(a, r.eventPartitions);
    reply.keys.push(record.key);
    reply.partitions.push(record.partition);
    reply.values.push(record.value);
    reply.origins.push(a.origin);
    reply.recordTimes.push(a.recordTime);
  }
  return reply;
}

/** The batch's records over the one buffer their values were copied into. */
function records(r: RekeyRequest): RecordIn[] {
  const bytes = Buffer.from(r.buffer);
  const out: RecordIn[] = [];
  let start = 0;
  for (let i = 0; i < r.offsets.length; i++) {
    const end = r.ends[i]!;
    const value = end < 0 ? null : bytes.subarray(start, end);
    if (end >= 0) start = end;
    out.push({ key: null, value, offset: r.offsets[i]!, timestamp: r.timestamps[i]! });
  }
  return out;
}
