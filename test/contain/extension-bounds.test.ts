import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import { loadConfig, type Config } from '../../src/config';
import { CHANGE_HEADER } from '../../src/correlate/correlator';
import type { Incident } from '../../src/correlate/incident';
import { sha256Hex } from '../../src/http/auth';
import { Service } from '../../src/service';
import { createTopics, deleteTopics, testKafka } from '../support/kafka';
import { eventually, testConfig, testLog, uniq } from '../support/stack';
import { autoPlaybook, syntheticIncident } from './support';

const RESPONDER = 'responder-token-0123456789abcdef';

const playbook = (name: string, bounds: string) =>
  autoPlaybook(
    name,
    `  - id: quarantine-root
    type: quarantine
    target: root
    enforcer: labelstore
    ttl: 30m
${bounds}`,
  );

describe('extensions are bounded by the playbook and the config, the lower winning (real Kafka, Redis; label-store enforcer)', () => {
  const kafka: Kafka = testKafka();
  const running: Array<{ service: Service; config: Config }> = [];
  afterAll(async () => {
    for (const { service, config } of running) {
      await service.stop();
      await deleteTopics(kafka, config);
    }
  });

  /** A service with one playbook; an incident quarantined by it; a function that asks for an extension of its root. */
  async function quarantined(name: string, bounds: string, contain: Record<string, unknown> = {}) {
    const dir = mkdtempSync(join(tmpdir(), 'cordon-extend-'));
    writeFileSync(join(dir, `${name}.yaml`), playbook(name, bounds));
    const config = testConfig(name, {
      contain: { playbooks: dir, reconcileIntervalMs: 500, enforcers: { labelstore: true }, ...contain },
      auth: { tokens: [{ name: 'responder-1', role: 'responder', sha256: sha256Hex(RESPONDER) }] },
    });
    await createTopics(kafka, config);
    const service = new Service(config, testLog);
    running.push({ service, config });
    await service.start();
    const incident = syntheticIncident(uniq(name), { version: 1 }) as Incident;
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: config.kafka.topics.incidents, messages: [{ key: incident.id, value: JSON.stringify(incident), headers: { [CHANGE_HEADER]: 'incident_opened' } }] });
    await producer.disconnect();
    await eventually(async () => ((await service.containment!.quarantines.registry.get(incident.root))?.state === 'applied' ? true : undefined), 20_000, 'quarantine applied');
    const url = `http://127.0.0.1:${(service.http.server.address() as { port: number }).port}`;
    const extend = async (ttl: string) => {
      const res = await fetch(`${url}/api/quarantines/${encodeURIComponent(incident.root)}/extend`, {
        method: 'POST',
        headers: { authorization: `Bearer ${RESPONDER}`, 'content-type': 'application/json' },
        body: JSON.stringify({ ttl, reason: 'still investigating' }),
      });
      return { status: res.status, body: (await res.json()) as { detail?: string; expiresAt?: number } };
    };
    return { extend, playbookId: service.containment!.runner.run(incident.id).then((r) => r!.playbookId), lease: () => service.containment!.quarantines.registry.get(incident.root) };
  }

  it('max_extension below contain.maxExtensionMs refuses naming the step; contain.maxLifetimeMs below max_lifetime refuses naming the config', async () => {
    const { extend, playbookId, lease } = await quarantined('ext-bounds', '    max_extension: 1h\n    max_lifetime: 3h\n', { maxExtensionMs: 90 * 60_000, maxLifetimeMs: 50 * 60_000 });
    const id = await playbookId;
    const before = (await lease())!.expiresAt;

    const tooLong = await extend('80m');
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.detail).toBe(`body.ttl: 80m is longer than the longest extension, 1h (playbook ${id} step quarantine-root max_extension)`);
    const tooLate = await extend('55m');
    expect(tooLate.status).toBe(400);
    expect(tooLate.body.detail).toMatch(/^body\.ttl: 55m would keep the quarantine past its longest lifetime, 50m from its first apply at \S+ \(contain\.maxLifetimeMs\): at most until \S+$/);
    expect((await lease())!.expiresAt).toBe(before);

    const ok = await extend('40m');
    expect(ok.status).toBe(200);
    expect((await lease())!.expiresAt).toBeGreaterThan(before);
  });

  it('max_lifetime below contain.maxLifetimeMs refuses naming the step; contain.maxExtensionMs below max_extension refuses naming the config', async () => {
    const { extend, playbookId } = await quarantined('life-bounds', '    max_extension: 3h\n    max_lifetime: 1h\n', { maxExtensionMs: 2 * 3_600_000 });
    const id = await playbookId;
    const overLife = await extend('90m');
    expect(overLife.status).toBe(400);
    expect(overLife.body.detail).toContain(`past its longest lifetime, 1h from its first apply`);
    expect(overLife.body.detail).toContain(`(playbook ${id} step quarantine-root max_lifetime)`);
    const overConfig = await extend('150m');
    expect(overConfig.body.detail).toBe('body.ttl: 150m is longer than the longest extension, 2h (contain.maxExtensionMs)');
    expect((await extend('50m')).status).toBe(200);
  });

  it('by default one extension is at most 1d and a quarantine lives at most 30d from its first apply', () => {
    expect(loadConfig({ env: {} }).contain).toMatchObject({ maxExtensionMs: 86_400_000, maxLifetimeMs: 30 * 86_400_000 });
  });
});
