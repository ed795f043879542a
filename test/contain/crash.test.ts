import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Redis from 'ioredis';
import type { Kafka } from 'kafkajs';
import { OUTPUT_DIR, startCordon, type CordonProcess } from '../../bench/support/cordon-process';
import type { Config } from '../../src/config';
import { FAULT_POINTS, type FaultPoint } from '../../src/contain/faults';
import type { Target } from '../../src/enforcer/enforcer';
import { LabelStoreEnforcer } from '../../src/enforcer/label-store';
import { verifyLedger } from '../../src/ledger/audit';
import { QuarantineRegistry } from '../../src/ledger/registry';
import { createTopics, deleteTopics, testKafka } from '../support/kafka';
import { eventually, REDIS_URL } from '../support/stack';
import { autoPlaybook, childConfig, leaseStep, ledgerRecords, playbookDir, publishIncident, syntheticIncident } from './support';

/**
 * The built `cordon run` is SIGKILLed at each fault point of a playbook run (contain, then release
 * by a release step), restarted, and must end with exactly one quarantine applied, exactly one
 * release, the original labels back, and a ledger that verifies. Needs `npm run -s build`.
 */

const STEPS = `  - id: quarantine-root
    type: quarantine
    target: root
    enforcer: labelstore
    ttl: 1h
  - id: hold
    type: wait
    duration: 1s
  - id: release-root
    type: release
    target: root
`;

jest.setTimeout(240_000);

describe('SIGKILL at every step of a playbook run (real cordon process, Kafka, Redis)', () => {
  let kafka: Kafka;
  let redis: Redis;
  const configs: Config[] = [];
  const running: CordonProcess[] = [];

  beforeAll(() => {
    kafka = testKafka();
    redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    for (const p of running) await p.stop();
    for (const c of configs) await deleteTopics(kafka, c).catch(() => undefined);
    redis.disconnect();
  });

  it.each(FAULT_POINTS.map((p) => [p]))('killed at %s: one quarantine, one release, ledger verifies', async (point: FaultPoint) => {
    const name = `crash-${point}`;
    const { file, config, id } = await childConfig(name, playbookDir(name, autoPlaybook(name, STEPS)));
    configs.push(config);
    await createTopics(kafka, config);
    const incident = syntheticIncident(id);
    const target: Target = { entity: incident.root, kind: 'ip', ip: incident.root.slice(3) };
    const labels = new LabelStoreEnforcer(redis, config.redis.keyPrefix);
    await labels.setLabels(target, { app: 'crm', 'cordon.io/quarantine': 'false' });

    const marker = join(OUTPUT_DIR, `${id}.fault`);
    const env = { CORDON_FAULT: point, CORDON_FAULT_ONCE_FILE: marker };
    const first = await startCordon({ name: id, configFile: file, env });
    running.push(first);
    await first.waitReady();
    await publishIncident(kafka, config, incident);
    const exit = await first.waitExit(60_000);
    expect(exit).toEqual({ code: null, signal: 'SIGKILL' });
    expect(readFileSync(marker, 'utf8')).toBe(point);

    const second = await startCordon({ name: id, configFile: file, env });
    running.push(second);
    await second.waitReady(90_000);
    const registry = new QuarantineRegistry(redis, config.redis.keyPrefix);
    await eventually(async () => ((await registry.get(incident.root))?.state === 'released' ? true : undefined), 60_000, `${incident.root} released`);
    await second.stop();
    expect(second.exitStatus).toEqual({ code: 0, signal: null });

    expect(await labels.changes(target)).toMatchObject({ applied: 1, reverted: 1 });
    expect((await labels.observe(target)).labels).toEqual({ app: 'crm', 'cordon.io/quarantine': 'false' });
    const records = await ledgerRecords(kafka, config);
    const quarantine = records.filter((r) => r.target === incident.root && r.action.startsWith('quarantine_')).map(leaseStep);
    expect(quarantine).toEqual(['quarantine_applied:pending', 'quarantine_applied:applied', 'quarantine_released:released']);
    expect(records.filter((r) => r.action === 'incident_raised')).toHaveLength(1);
    expect(await verifyLedger(kafka, config.kafka.topics.ledger)).toMatchObject({ ok: true, count: records.length, seq: records.length, head: records.at(-1)!.hash });
  });
});
