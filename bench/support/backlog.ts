import type { Kafka, Message } from 'kafkajs';
import type { Config } from '../../src/config';
import { presetConfig } from '../../src/simulate/presets';
import { Scenario } from '../../src/simulate/scenario';
import { isolatedKafka } from '../run-config';
import type { CordonProcess } from './cordon-process';

/**
 * The generator's enterprise background as a backlog: a pool of records generated up front, sent
 * to the input topics before Cordon starts, and how fast a running Cordon takes them in.
 */

export interface PoolRecord {
  /** 0: the flows input, 1: the anomalies input. */
  topic: 0 | 1;
  key: string;
  value: Buffer;
  time: number;
}

/**
 * `cordon run`'s config for a drain: topics, groups and Redis keys of the run `run` alone; reading
 * the inputs of the run `inputsOf` (default: its own), so several runs can drain one backlog.
 */
export function drainConfig(run: string, o: { brokers: string[]; port: number; playbook: string; inputsOf?: string }): object {
  const inputs = o.inputsOf ?? run;
  return {
    log: { level: 'warn' },
    kafka: {
      brokers: o.brokers,
      partitions: 6,
      inputs: [{ topic: `${inputs}.flows`, format: 'auto' }, { topic: `${inputs}.anomalies`, format: 'cordon' }],
      ...isolatedKafka(run),
    },
    redis: { keyPrefix: run },
    http: { port: o.port },
    // The pool's event times are the generator's, replayed: no freshness rejects.
    ingest: { maxEventAgeMs: 0 },
    contain: {
      playbooks: o.playbook,
      enforcers: { labelstore: true },
      breaker: { maxConcurrent: 1_000_000, maxNew: 1_000_000 },
    },
  };
}

/** One produce request per this many records keeps every partition's record batch well under the broker's limit. */
export const SEND_RECORDS = 2_000;

export function generatePool(size: number): PoolRecord[] {
  const scenario = new Scenario(presetConfig('enterprise', { seed: 1, maxRecords: size }));
  const pool: PoolRecord[] = [];
  for (const r of scenario.records()) {
    pool.push({ topic: r.expect === 'anomaly' ? 1 : 0, key: r.key, value: Buffer.from(r.text), time: r.time });
    if (pool.length >= size) break;
  }
  return pool;
}

/** Sends `count` records of the pool (round and round) to the config's two inputs as fast as the producer goes. */
export async function produceBacklog(kafka: Kafka, config: Config, pool: PoolRecord[], count: number): Promise<{ produced: number; perSecond: number }> {
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const topics = [config.kafka.inputs[0]!.topic, config.kafka.inputs[1]!.topic];
  const start = Date.now();
  const inFlight: Promise<unknown>[] = [];
  for (let i = 0; i < count; i += SEND_RECORDS) {
    const batches: [Message[], Message[]] = [[], []];
    for (let j = i; j < Math.min(count, i + SEND_RECORDS); j++) {
      const r = pool[j % pool.length]!;
      batches[r.topic].push({ key: r.key, value: r.value });
    }
    const topicMessages = batches.map((messages, t) => ({ topic: topics[t]!, messages })).filter((t) => t.messages.length > 0);
    inFlight.push(producer.sendBatch({ topicMessages, acks: 1 }));
    while (inFlight.length >= 8) await inFlight.shift();
  }
  await Promise.all(inFlight);
  await producer.disconnect();
  return { produced: count, perSecond: count / ((Date.now() - start) / 1000) };
}

/** Records a running Cordon has taken in (its /metrics), every input topic. */
export async function consumed(cordon: CordonProcess): Promise<number> {
  const text = await (await fetch(`${cordon.url}/metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(/^cordon_ingest_records_total\{[^}]*\} (\d+(?:\.\d+)?(?:e\+\d+)?)$/gm)) n += Number(m[1]);
  return n;
}
