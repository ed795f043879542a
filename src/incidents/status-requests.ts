import type { Batch, Kafka, Message, Producer } from '../kafka';
import type { IncidentStatus } from '../correlate/incident';
import { deadLetter } from '../ingest/dead-letter';
import { describeIssues, parseJson } from '../validation';
import { StatusRequest } from './lifecycle';

export interface DecodedRequests {
  requests: { request: StatusRequest; origin: string }[];
  dead: Message[];
}

/** Decodes a batch of the lifecycle topic; a request that does not parse becomes a dead letter. */
export function decodeStatusRequests(batch: Batch, now: number): DecodedRequests {
  const out: DecodedRequests = { requests: [], dead: [] };
  for (const m of batch.messages) {
    const decoded = decodeOne(m.value);
    if (decoded.ok) out.requests.push({ request: decoded.request, origin: `${batch.topic}/${batch.partition}/${m.offset}/0` });
    else out.dead.push(deadLetter(m, { topic: batch.topic, partition: batch.partition, offset: m.offset, timestamp: m.timestamp }, decoded.reason, 'status-request', now));
  }
  return out;
}

function decodeOne(value: Buffer | null): { ok: true; request: StatusRequest } | { ok: false; reason: string } {
  if (value === null) return { ok: false, reason: 'empty record (tombstone)' };
  const json = parseJson(value.toString('utf8'));
  if (!json.ok) return json;
  const parsed = StatusRequest.safeParse(json.value);
  return parsed.success ? { ok: true, request: parsed.data } : { ok: false, reason: describeIssues(parsed.error, 'status request') };
}

/**
 * Asks the correlator, which owns incidents, to move one to a new status. The request is keyed by
 * the incident's root entity so it lands on the partition that holds the incident.
 */
export class StatusRequests {
  private readonly producer: Producer;

  constructor(
    kafka: Kafka,
    private readonly topic: string,
    private readonly clock: () => number = Date.now,
  ) {
    this.producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  }

  connect(): Promise<void> {
    return this.producer.connect();
  }

  disconnect(): Promise<void> {
    return this.producer.disconnect();
  }

  async request(incident: { id: string; root: string }, status: IncidentStatus, actor: string, reason: string): Promise<void> {
    const request: StatusRequest = { incident: incident.id, root: incident.root, status, actor, reason, at: this.clock() };
    await this.producer.send({ topic: this.topic, acks: -1, messages: [{ key: incident.root, value: JSON.stringify(request) }] });
  }
}
