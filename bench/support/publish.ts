import type { Kafka } from 'kafkajs';
import { hubbleDeniedFlow } from '../telemetry';

/** Publishes `n` denied-flow records (Cilium Hubble JSON, 5,000 source keys) to `topic`; returns records/s. */
export async function publishHubble(kafka: Kafka, topic: string, n: number): Promise<number> {
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const start = performance.now();
  const base = Date.now();
  const batch = 5_000;
  const inFlight: Promise<unknown>[] = [];
  for (let i = 0; i < n; i += batch) {
    const messages = [];
    for (let j = i; j < Math.min(n, i + batch); j++) messages.push({ key: String(j % 5000), value: hubbleDeniedFlow(j, base) });
    inFlight.push(producer.send({ topic, messages, acks: 1 }));
    if (inFlight.length >= 4) await inFlight.shift();
  }
  await Promise.all(inFlight);
  await producer.disconnect();
  return n / ((performance.now() - start) / 1000);
}
