import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Redis from 'ioredis';
import { OUTPUT_DIR, startCordon, writeConfig, type CordonProcess } from '../../bench/support/cordon-process';
import type { Config } from '../../src/config';
import type { FaultPoint } from '../../src/contain/faults';
import { LabelStoreEnforcer } from '../../src/enforcer/label-store';
import type { Target } from '../../src/enforcer/enforcer';
import { sha256Hex } from '../../src/http/auth';
import { QuarantineRegistry } from '../../src/ledger/registry';
import { autoPlaybook, childConfig, leaseStep, ledgerRecords, playbookDir } from '../contain/support';
import { createTopics, deleteTopics, testKafka } from '../support/kafka';
import { REDIS_URL } from '../support/stack';

/**
 * A manual quarantine is crash-safe: the real `cordon run` (built dist/) is killed halfway through
 * one (the lease pending in the ledger, before or after the enforcer's apply) and restarted; the
 * person's retried request completes the same lease, and the target is contained exactly once.
 */
const TOKEN = 'crash-responder-token-0123456789';
const STEPS = `  - id: quarantine-root
    type: quarantine
    target: root
    enforcer: labelstore
    ttl: 1h
`;

describe('manual quarantine across a crash (real cordon run, Kafka, Redis; label-store enforcer)', () => {
  const kafka = testKafka();
  const redis = new Redis(REDIS_URL);
  const configs: Config[] = [];
  const running: CordonProcess[] = [];
  afterAll(async () => {
    for (const p of running) await p.stop();
    for (const c of configs) await deleteTopics(kafka, c).catch(() => undefined);
    redis.disconnect();
  });

  it.each([['before-apply'], ['after-apply']] as Array<[FaultPoint]>)('killed at %s: the retried request completes the pending lease, applied once', async (point) => {
    const name = `manual-crash-${point}`;
    const { file, config, id } = await childConfig(name, playbookDir(name, autoPlaybook(name, STEPS)));
    const raw = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    writeConfig(id, { ...raw, auth: { tokens: [{ name: 'rita', role: 'responder', sha256: sha256Hex(TOKEN) }] } });
    configs.push(config);
    await createTopics(kafka, config);
    const target: Target = { entity: 'ip:10.90.0.5', kind: 'ip', ip: '10.90.0.5' };
    const labels = new LabelStoreEnforcer(redis, config.redis.keyPrefix);
    const registry = new QuarantineRegistry(redis, config.redis.keyPrefix);
    const ask = (url: string) =>
      fetch(`${url}/api/quarantines`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ entity: target.entity, ttl: '1h', reason: 'contain before the crash' }) });

    const env = { CORDON_FAULT: point, CORDON_FAULT_ONCE_FILE: join(OUTPUT_DIR, `${id}.fault`) };
    const first = await startCordon({ name: id, configFile: file, env });
    running.push(first);
    await first.waitReady();
    await expect(ask(first.url)).rejects.toThrow();
    expect(await first.waitExit(30_000)).toEqual({ code: null, signal: 'SIGKILL' });
    const pending = (await registry.get(target.entity))!;
    expect(pending).toMatchObject({ state: 'pending', holders: [expect.stringMatching(/^manual\.rita\./)] });

    const second = await startCordon({ name: id, configFile: file, env });
    running.push(second);
    await second.waitReady(90_000);
    const retried = await ask(second.url);
    expect(retried.status).toBe(201);
    expect(await retried.json()).toMatchObject({ target: target.entity, state: 'applied', holders: pending.holders });
    expect(await labels.changes(target)).toMatchObject({ applied: 1, reverted: 0 });
    await second.stop();

    const steps = (await ledgerRecords(kafka, config)).filter((r) => r.target === target.entity).map((r) => [leaseStep(r), r.actor, r.incidentId]);
    expect(steps).toEqual([
      ['quarantine_applied:pending', 'user:rita', pending.holders[0]],
      ['quarantine_applied:applied', 'user:rita', pending.holders[0]],
    ]);
  }, 150_000);
});
