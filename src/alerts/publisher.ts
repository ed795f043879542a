import type { Kafka, Producer } from '../kafka';
import type { Config } from '../config';
import { subjectKey, type Anomaly } from '../events';
import { partitionCount } from '../kafka';
import { partitionFor } from '../partition';

/** Where an anomaly landed: enough for the caller to find it again. */
export interface Published {
  id: string;
  entity: string;
  topic: string;
  partition: number;
  offset: string;
}

/**
 * The input topic alerts go to: `alerts.topic`, else the input whose format is `cordon`, else the
 * first `auto` one (auto-detection reads canonical Cordon JSON); undefined when there is none (the
 * endpoints are then not offered). A configured topic must be such an input, or no stage would
 * ever read what the alerts produce: that is a start-up error.
 */
export function alertTopic(config: Config): string | undefined {
  const inputs = config.kafka.inputs;
  const topic = config.alerts.topic ?? inputs.find((i) => i.format === 'cordon')?.topic ?? inputs.find((i) => i.format === 'auto')?.topic;
  if (topic === undefined) return undefined;
  const input = inputs.find((i) => i.topic === topic);
  if (!input) throw new Error(`alerts.topic ${topic} is not one of kafka.inputs`);
  if (input.format !== 'cordon' && input.format !== 'auto') throw new Error(`alerts.topic ${topic} is an input of format ${input.format}; anomalies need cordon or auto`);
  return topic;
}

/**
 * Produces anomalies to the input topic as `cordon produce` does: the canonical JSON, keyed by the
 * subject's entity key, on the partition Kafka's default partitioner gives that key (murmur2,
 * src/partition.ts), which is the partition that owns the entity. Resolves once every in-sync
 * replica has them.
 */
export class AlertPublisher {
  private producer: Producer | undefined;
  private partitions = 0;

  constructor(
    private readonly kafka: Kafka,
    readonly topic: string,
  ) {}

  async start(): Promise<void> {
    this.partitions = await partitionCount(this.kafka, this.topic);
    const producer = this.kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    this.producer = producer;
  }

  async stop(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    await producer?.disconnect();
  }

  isRunning(): boolean {
    return this.producer !== undefined;
  }

  async publish(anomalies: readonly Anomaly[]): Promise<Published[]> {
    if (!this.producer) throw new Error('alert publisher is not running');
    const timestamp = String(Date.now());
    const messages = anomalies.map((a) => {
      const key = subjectKey(a);
      return { key, partition: partitionFor(key, this.partitions), value: JSON.stringify({ type: 'anomaly', ...a }), timestamp };
    });
    const meta = await this.producer.send({ topic: this.topic, messages, acks: -1 });
    // the broker answers per partition with the offset of the first record appended there; the
    // records of one partition follow it in send order
    const base = new Map(meta.map((m) => [m.partition, BigInt(m.baseOffset ?? '0')]));
    const seen = new Map<number, bigint>();
    return messages.map((m, i) => {
      const k = seen.get(m.partition) ?? 0n;
      seen.set(m.partition, k + 1n);
      return { id: anomalies[i]!.id, entity: m.key, topic: this.topic, partition: m.partition, offset: String((base.get(m.partition) ?? 0n) + k) };
    });
  }
}
