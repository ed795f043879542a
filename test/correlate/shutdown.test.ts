import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Redis from 'ioredis';
import type { Kafka } from 'kafkajs';
import YAML from 'yaml';
import type { Config } from '../../src/config';
import { Correlator } from '../../src/correlate/correlator';
import { entityKey } from '../../src/events';
import { Metrics } from '../../src/metrics';
import { createTopics, deleteTopics, testKafka } from '../support/kafka';
import { REDIS_URL, eventually, testConfig, testLog } from '../support/stack';
import { SEC, T0, denied, host, ip } from './builder';

/**
 * One source attacks N targets; the campaign's denied counter must end at exactly N however the
 * correlator is stopped on the way: nothing lost, nothing applied twice.
 */
const N = 6000;
const attacker = host('ws1', '10.1.0.1', 'workstation');
const key = entityKey(attacker);

async function produceAttack(kafka: Kafka, config: Config): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  const messages = Array.from({ length: N }, (_, i) => {
    const event = denied(attacker, ip(`10.2.${Math.floor(i / 250)}.${i % 250}`), 445, T0 + i * SEC);
    return { key, value: JSON.stringify(event), timestamp: String(event.time) };
  });
  for (let i = 0; i < N; i += 1000) await producer.send({ topic: config.kafka.inputs[0]!.topic, messages: messages.slice(i, i + 1000) });
  await producer.disconnect();
}

function deniedSoFar(c: Correlator): number {
  return c.engine.listIncidents().reduce((n, i) => n + i.counters.denied, 0);
}

/** The group waits out a killed member's session (kafkajs default 30 s) before the replacement gets its partitions. */
const RESUME_TIMEOUT_MS = 120_000;

async function resumeAndCount(kafka: Kafka, redis: Redis, config: Config): Promise<Correlator> {
  const b = new Correlator({ kafka, redis, config, log: testLog, metrics: new Metrics({ defaultMetrics: false }) });
  await b.start();
  await eventually(async () => (deniedSoFar(b) >= N ? true : undefined), RESUME_TIMEOUT_MS, `${N} denied attempts counted`);
  await new Promise((r) => setTimeout(r, 1500)); // anything applied twice would show up now
  await b.stop();
  return b;
}

describe('stopping the correlator mid-stream', () => {
  let kafka: Kafka;
  let redis: Redis;
  const configs: Config[] = [];

  beforeAll(() => {
    kafka = testKafka();
    redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    for (const c of configs) await deleteTopics(kafka, c);
    redis.disconnect();
  });

  async function setup(name: string, overrides: Record<string, unknown> = {}): Promise<Config> {
    const config = testConfig(name, overrides);
    configs.push(config);
    await createTopics(kafka, config);
    return config;
  }

  it('on a graceful stop (SIGTERM) finishes the batch in flight and hands the rest over: exactly N', async () => {
    const config = await setup('graceful', { correlate: { snapshotIntervalMs: 60_000 } });
    await produceAttack(kafka, config);
    const a = new Correlator({ kafka, redis, config, log: testLog, metrics: new Metrics({ defaultMetrics: false }) });
    await a.start();
    await eventually(async () => (a.engine.stats.events > 0 ? true : undefined), 30_000, 'the first batch');
    await a.stop();
    const b = await resumeAndCount(kafka, redis, config);
    expect(deniedSoFar(b)).toBe(N);
    expect(a.engine.stats.events + b.engine.stats.events).toBe(N);
  }, 180_000);

  it('after SIGKILL resumes from the last snapshot and replays the rest once: exactly N', async () => {
    const config = await setup('sigkill', { correlate: { snapshotIntervalMs: 200 } });
    const dir = mkdtempSync(join(tmpdir(), 'cordon-kill-'));
    const file = join(dir, 'config.yaml');
    writeFileSync(file, YAML.stringify(config));
    await produceAttack(kafka, config);
    const child = spawn(process.execPath, [resolve(__dirname, '../../dist/src/cli/main.js'), 'run', '-c', file], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const snapshots = `${config.redis.keyPrefix}:correlate:snapshot:*`;
    await eventually(async () => ((await redis.keys(snapshots)).length > 0 ? true : undefined), 60_000, 'a snapshot from the child');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const b = await resumeAndCount(kafka, redis, config);
    expect(deniedSoFar(b)).toBe(N);
  }, 240_000);
});
