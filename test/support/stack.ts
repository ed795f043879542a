import { randomBytes } from 'node:crypto';
import { loadConfig, type Config } from '../../src/config';
import { createLogger } from '../../src/logger';

/** The real local stack the tests talk to (started by scripts/stack.sh up). */
export const KAFKA_BROKERS = (process.env.CORDON_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
export const REDIS_URL = process.env.CORDON_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const ES_URL = process.env.CORDON_ES_URL ?? 'http://127.0.0.1:9200';
/** The versions scripts/stack.sh starts (CORDON_ES_VERSION / CORDON_KAFKA_VERSION pick others). */
export const ES_VERSION = process.env.CORDON_ES_VERSION ?? '9.2.0';

export const testLog = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');

/** A short random suffix so each test run has its own topics, groups and Redis keys. */
export function uniq(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/** A config whose topics, consumer groups and Redis prefix belong to this test alone. */
export function testConfig(name: string, overrides: Record<string, unknown> = {}): Config {
  const id = uniq(name);
  return loadConfig({
    env: {},
    overrides: {
      kafka: {
        brokers: KAFKA_BROKERS,
        clientId: id,
        partitions: 3,
        inputs: [
          { topic: `${id}.flows`, format: 'auto' },
          { topic: `${id}.anomalies`, format: 'cordon' },
        ],
        topics: { events: `${id}.events`, dlq: `${id}.dlq`, incidents: `${id}.incidents`, ledger: `${id}.ledger`, lifecycle: `${id}.lifecycle` },
        groups: { ingest: `${id}-ingest`, correlate: `${id}-correlate`, contain: `${id}-contain`, siem: `${id}-siem` },
      },
      redis: { url: REDIS_URL, keyPrefix: id },
      // the SIEM stage writes to Elasticsearch once a URL is set; tests that want it turn it on
      elasticsearch: { url: ES_URL, enabled: false },
      http: { port: 0 },
      ...overrides,
    },
  });
}

export async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
