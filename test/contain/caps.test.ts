import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import type { Config } from '../../src/config';
import type { Approval } from '../../src/approvals/store';
import type { Incident } from '../../src/correlate/incident';
import { sha256Hex } from '../../src/http/auth';
import { Service } from '../../src/service';
import { createTopics, deleteTopics, testKafka } from '../support/kafka';
import { eventually, testConfig, testLog } from '../support/stack';
import { ledgerRecords, publishIncident, syntheticIncident } from './support';

/**
 * The playbook's max_concurrent_quarantines and circuit_breaker, and the service's breaker, hold
 * when each quarantine is applied (real Kafka, Redis, BullMQ; the label-store enforcer): past a
 * limit an automatic quarantine becomes an approval naming the limit, and an approved one is exempt.
 */

const APPROVER = 'approver-token-0123456789abcdef';
const RESPONDER = 'responder-token-0123456789abcdef';

function autoPlaybook(name: string, safety: string): string {
  return `apiVersion: cordon.io/v1
kind: Playbook
name: ${name}
description: caps test playbook ${name}
priority: 100
mode: auto
match:
  severity: high
safety:
  protected_approval:
    approvers: [soc-oncall]
    deadline: 15m
${safety}
steps:
  - id: quarantine-root
    type: quarantine
    target: root
    enforcer: labelstore
    ttl: 1h
`;
}

describe('caps and breakers at runtime (real Kafka, Redis, BullMQ)', () => {
  let kafka: Kafka;
  const services: Service[] = [];
  const configs: Config[] = [];

  beforeAll(() => {
    kafka = testKafka();
  });
  afterAll(async () => {
    for (const s of services) await s.stop();
    for (const c of configs) await deleteTopics(kafka, c);
  });

  async function start(name: string, yaml: string, breaker: Record<string, number> = {}) {
    while (services.length > 0) await services.pop()!.stop();
    const dir = mkdtempSync(join(tmpdir(), 'cordon-caps-'));
    writeFileSync(join(dir, `${name}.yaml`), yaml);
    const config = testConfig(name, {
      contain: { playbooks: dir, reconcileIntervalMs: 500, enforcers: { labelstore: true }, breaker },
      auth: {
        tokens: [
          { name: 'approver-1', role: 'approver', sha256: sha256Hex(APPROVER), groups: ['soc-oncall'] },
          { name: 'responder-1', role: 'responder', sha256: sha256Hex(RESPONDER), groups: [] },
        ],
      },
    });
    configs.push(config);
    await createTopics(kafka, config);
    const service = new Service(config, testLog);
    services.push(service);
    await service.start();
    const url = `http://127.0.0.1:${(service.http.server.address() as { port: number }).port}`;
    const post = (path: string, token: string, body: unknown) =>
      fetch(`${url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const c = service.containment!;
    const lease = (i: Incident) => c.quarantines.registry.get(i.root);
    const applied = (i: Incident) => eventually(async () => ((await lease(i))?.state === 'applied' ? true : undefined), 20_000, `${i.root} applied`);
    const asked = (i: Incident) => eventually(async (): Promise<Approval | undefined> => (await c.approvals.forIncident(i.id))[0], 20_000, `an approval for ${i.id}`);
    return { config, service, post, lease, applied, asked };
  }

  const incidents = (tag: string, n: number): Incident[] => {
    const out = Array.from({ length: n }, (_, i) => syntheticIncident(`${tag}-${'x'.repeat(i)}`));
    expect(new Set(out.map((i) => i.root)).size).toBe(n);
    return out;
  };

  it('max_concurrent_quarantines: the next automatic quarantine is an approval naming the cap; the count is of live quarantines now; an approved one is exempt', async () => {
    const { config, post, lease, applied, asked } = await start('caps-conc', autoPlaybook('caps-conc', '  max_concurrent_quarantines: 1'));
    const [a, b, c] = incidents('conc', 3) as [Incident, Incident, Incident];
    await publishIncident(kafka, config, a);
    await applied(a);
    // the run's plan states what the configured layer can do: the label store cuts no connection
    const run = await services[0]!.containment!.runner.run(a.id);
    expect(run!.steps[0]).toMatchObject({ type: 'quarantine', cutConnections: true, cutsConnections: false, notes: [expect.stringMatching(/^labelstore cannot cut existing connections/)] });

    await publishIncident(kafka, config, b);
    const approval = await asked(b);
    expect(approval).toMatchObject({ subject: 'target', state: 'pending', approvers: ['soc-oncall'], targets: [{ key: b.root }] });
    expect(approval.question).toContain('max_concurrent_quarantines 1 reached: 1 live quarantines of playbook caps-conc');
    expect(approval.id.endsWith(`.quarantine-root.approve.${b.root.replace(':', '_')}`)).toBe(true);
    expect(approval.deadline - approval.createdAt).toBe(15 * 60_000);
    expect(await lease(b)).toBeUndefined();

    // Counted when applied, from the live leases: once a's quarantine ends, c goes through at once.
    expect((await post(`/api/quarantines/${encodeURIComponent(a.root)}/release`, RESPONDER, { reason: 'false positive' })).status).toBe(200);
    await publishIncident(kafka, config, c);
    await applied(c);
    expect(await (await services[0]!.containment!.approvals.forIncident(c.id)).length).toBe(0);

    // The cap is reached again (c is live), but a person approved b: it is applied.
    expect((await post(`/api/approvals/${approval.id}/approve`, APPROVER, { reason: 'contain it anyway' })).status).toBe(200);
    await applied(b);

    await services.pop()!.stop();
    const records = await ledgerRecords(kafka, config);
    const requested = records.filter((r) => r.action === 'approval_requested');
    expect(requested).toHaveLength(1);
    expect(requested[0]!.reason).toContain('max_concurrent_quarantines 1 reached');
    expect(records.some((r) => r.action === 'playbook_step' && /not quarantined/.test(r.reason))).toBe(false);
  });

  it('circuit_breaker: past the rate an automatic quarantine is an approval naming the breaker, even with nothing live', async () => {
    const { config, post, lease, applied, asked } = await start('caps-rate', autoPlaybook('caps-rate', '  circuit_breaker: { max_new_quarantines: 1, per: 10m }'));
    const [a, b] = incidents('rate', 2) as [Incident, Incident];
    await publishIncident(kafka, config, a);
    await applied(a);
    expect((await post(`/api/quarantines/${encodeURIComponent(a.root)}/release`, RESPONDER, { reason: 'false positive' })).status).toBe(200);

    await publishIncident(kafka, config, b);
    const approval = await asked(b);
    expect(approval.question).toContain('circuit breaker tripped: 1 quarantines in 10m (playbook caps-rate, circuit_breaker 1 per 10m)');
    expect(await lease(b)).toBeUndefined();
    expect((await post(`/api/approvals/${approval.id}/approve`, APPROVER, { reason: 'yes' })).status).toBe(200);
    await applied(b);
  });

  it('the service breaker (contain.breaker): tripped, a quarantine becomes an approval instead of being skipped; the ledger records the trip', async () => {
    const { config, lease, post, applied, asked } = await start('caps-service', autoPlaybook('caps-service', ''), { maxNew: 1 });
    const [a, b] = incidents('svc', 2) as [Incident, Incident];
    await publishIncident(kafka, config, a);
    await applied(a);

    await publishIncident(kafka, config, b);
    const approval = await asked(b);
    expect(approval.question).toContain('service circuit breaker tripped: 1 new quarantines within 600 s (limit 1)');
    expect(await lease(b)).toBeUndefined();
    expect((await post(`/api/approvals/${approval.id}/approve`, APPROVER, { reason: 'yes' })).status).toBe(200);
    await applied(b);

    await services.pop()!.stop();
    const actions = (await ledgerRecords(kafka, config)).map((r) => r.action);
    expect(actions.filter((x) => x === 'circuit_breaker_opened')).toHaveLength(1);
    expect(actions.filter((x) => x === 'quarantine_applied').length).toBeGreaterThanOrEqual(2);
  });
});
