import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import type { Config } from '../../src/config';
import { CHANGE_HEADER } from '../../src/correlate/correlator';
import type { Incident } from '../../src/correlate/incident';
import { exportLedger } from '../../src/ledger/audit';
import type { LedgerRecord, PlaybookChangedPayload } from '../../src/ledger/records';
import { sha256Hex } from '../../src/http/auth';
import { switchRun, type SwitchedRun } from '../../src/contain/switch-plan';
import { loadPlaybooks } from '../../src/playbook/load';
import { select } from '../../src/playbook/match';
import { Service } from '../../src/service';
import { createTopics, deleteTopics, testKafka } from '../support/kafka';
import { eventually, testConfig, testLog, uniq } from '../support/stack';
import { syntheticIncident } from './support';

const APPROVER = 'approver-token-0123456789abcdef';
const RESPONDER = 'responder-token-0123456789abcdef';

/** notify-only for low and medium; approve-then-contain for high; auto for critical. All notify with the same step. */
const NOTIFY = `  - id: notify-soc
    type: notify
    channels: [splunk]
    message: "{{ incident.severity }} incident {{ incident.id }}"
`;
const QUARANTINE = `  - id: quarantine-root
    type: quarantine
    target: root
    enforcer: labelstore
    ttl: 1h
    max_extension: 20m
`;
const header = (name: string, priority: number, mode: string, severity: string) => `apiVersion: cordon.io/v1
kind: Playbook
name: ${name}
description: switch test ${name}
priority: ${priority}
mode: ${mode}
match:
  severity: ${severity}
safety:
  protected_approval:
    approvers: [soc-oncall]
    deadline: 15m
steps:
`;
/** What watch says 3s after its first notify: a step still queued when the run switches away from watch. */
const LATER = `  - id: pause
    type: wait
    duration: 3s
  - id: notify-later
    type: notify
    channels: [splunk]
    message: "still {{ incident.severity }}"
`;
const PLAYBOOKS = {
  watch: header('watch', 100, 'notify-only', '[low, medium]') + NOTIFY + LATER,
  ask: `${header('ask', 200, 'approve-then-contain', '[high]') + NOTIFY}  - id: ask-oncall
    type: approve
    approvers: [soc-oncall]
    deadline: 1h
    on_timeout: release
${QUARANTINE}`,
  contain: `${header('contain', 300, 'auto', 'critical') + NOTIFY + QUARANTINE}  - id: notify-contained
    type: notify
    channels: [splunk]
    message: contained
  - id: notify-last
    type: notify
    channels: [splunk]
    message: last
`,
};

describe('the playbook is chosen again on every incident version (real Kafka, Redis, BullMQ; label-store enforcer)', () => {
  let kafka: Kafka;
  let service: Service;
  let config: Config;
  let dir: string;

  beforeAll(async () => {
    kafka = testKafka();
    dir = mkdtempSync(join(tmpdir(), 'cordon-switch-'));
    for (const [name, yaml] of Object.entries(PLAYBOOKS)) writeFileSync(join(dir, `${name}.yaml`), yaml);
    config = testConfig('switch', {
      contain: { playbooks: dir, reconcileIntervalMs: 500, enforcers: { labelstore: true } },
      auth: {
        tokens: [
          { name: 'approver-1', role: 'approver', sha256: sha256Hex(APPROVER), groups: ['soc-oncall'] },
          { name: 'responder-1', role: 'responder', sha256: sha256Hex(RESPONDER) },
        ],
      },
    });
    await createTopics(kafka, config);
    service = new Service(config, testLog);
    await service.start();
  });
  afterAll(async () => {
    await service.stop();
    await deleteTopics(kafka, config);
  });

  async function publish(...incidents: Incident[]): Promise<void> {
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: config.kafka.topics.incidents,
      messages: incidents.map((i) => ({ key: i.id, value: JSON.stringify(i), headers: { [CHANGE_HEADER]: i.version === 1 ? 'incident_opened' : 'incident_updated' } })),
    });
    await producer.disconnect();
  }
  async function ledgerOf(incidentId: string): Promise<LedgerRecord[]> {
    const lines: string[] = [];
    await exportLedger(kafka, config.kafka.topics.ledger, (l) => void lines.push(l));
    return lines.map((l) => JSON.parse(l) as LedgerRecord).filter((r) => r.incidentId === incidentId || r.target === incidentId);
  }
  const changed0 = (records: LedgerRecord[]) => changes(records)[0]!;
  const changes = (records: LedgerRecord[]) => records.filter((r) => r.action === 'playbook_changed').map((r) => r.after as PlaybookChangedPayload);
  const notifies = (records: LedgerRecord[], step = 'notify-soc') => records.filter((r) => r.action === 'playbook_step' && (r.after as { type?: string }).type === 'notify' && (r.after as { step?: string }).step === step);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const lease = (target: string) => service.containment!.quarantines.registry.get(target);
  const until = <T>(what: string, probe: () => Promise<T | undefined>) => eventually(probe, 20_000, what);
  /** Waits for the ledger to settle: the same records twice in a row, a second apart. */
  async function settled(incidentId: string): Promise<LedgerRecord[]> {
    let last = -1;
    for (;;) {
      const records = await ledgerOf(incidentId);
      if (records.length === last) return records;
      last = records.length;
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }

  it('medium then critical: notify-only switches to auto, the root is quarantined, the notify is not sent again, the old playbook\'s queued step never runs; replays change nothing', async () => {
    const v1 = syntheticIncident(uniq('up'), { severity: 'medium', version: 1 });
    await publish(v1);
    await until('the watch notify', async () => (notifies(await ledgerOf(v1.id)).length > 0 ? true : undefined));
    const v2 = { ...v1, severity: 'critical', version: 2 } as Incident;
    await publish(v2);
    await until('the root quarantined', async () => ((await lease(v1.root))?.state === 'applied' ? true : undefined));

    // The same versions again (a redelivery), and a newer one that chooses the same playbook.
    await publish(v1, v2, { ...v2, version: 3 } as Incident);
    await sleep(4_000); // past watch's 3s wait: its notify-later job comes due, finds itself stale
    const records = await settled(v1.id);
    expect(notifies(records, 'notify-later')).toHaveLength(0);
    // Step 2 of contain's plan (notify-soc carried) is notify-last, the index watch's notify-later job had: once.
    expect(notifies(records, 'notify-last')).toHaveLength(1);
    expect(changed0(records).steps.map((j) => j.split('.').at(-2))).toEqual(['quarantine-root', 'notify-contained', 'notify-last']);
    const changed = changes(records);
    expect(changed).toHaveLength(1);
    expect(changed[0]).toMatchObject({ from: expect.stringMatching(/^watch@/), to: expect.stringMatching(/^contain@/), generation: 1, severity: 'critical', version: 2 });
    expect(changed[0]!.carried).toEqual([{ step: 'notify-soc', identity: 'notify:notify-soc:splunk', why: 'already notified splunk for this incident' }]);
    expect(changed[0]!.matched.join('; ')).toContain('match.severity holds');
    expect(records.find((r) => r.action === 'playbook_changed')).toMatchObject({
      actor: expect.stringMatching(/^playbook:contain@/),
      target: v1.id,
      before: { playbook: expect.stringMatching(/^watch@/) },
      reason: expect.stringMatching(/^incident version 2 \(critical, confidence 0\.9\) chose contain@\S+ instead of watch@\S+; 1 step identity already done not run again$/),
    });
    expect(notifies(records)).toHaveLength(1);
    expect(records.filter((r) => r.action === 'playbook_started')).toHaveLength(1);
    expect(records.filter((r) => r.action === 'quarantine_applied' && (r.after as { state: string }).state === 'applied')).toHaveLength(1);
    const order = records.map((r) => r.action);
    expect(order.indexOf('playbook_changed')).toBeLessThan(order.indexOf('quarantine_applied'));
  });

  it('critical then low: the run switches to notify-only but the applied quarantine stays until its TTL', async () => {
    const v1 = syntheticIncident(uniq('down'), { severity: 'critical', version: 1 });
    await publish(v1);
    await until('the root quarantined', async () => ((await lease(v1.root))?.state === 'applied' ? true : undefined));
    const before = await lease(v1.root);
    await publish({ ...v1, severity: 'low', version: 2 } as Incident);
    await until('the switch to watch', async () => (changes(await ledgerOf(v1.id)).length > 0 ? true : undefined));
    const records = await settled(v1.id);
    expect(changes(records)).toEqual([expect.objectContaining({ from: expect.stringMatching(/^contain@/), to: expect.stringMatching(/^watch@/), carried: [expect.objectContaining({ identity: 'notify:notify-soc:splunk' })] })]);
    expect(await lease(v1.root)).toMatchObject({ state: 'applied', holders: [v1.id], expiresAt: before!.expiresAt });
    expect(records.some((r) => r.action === 'quarantine_released')).toBe(false);
    expect(notifies(records)).toHaveLength(1);
    // An extension is still bounded by the playbook that quarantined it (contain's max_extension 20m).
    const url = `http://127.0.0.1:${(service.http.server.address() as { port: number }).port}`;
    const extend = await fetch(`${url}/api/quarantines/${encodeURIComponent(v1.root)}/extend`, { method: 'POST', headers: { authorization: `Bearer ${RESPONDER}`, 'content-type': 'application/json' }, body: JSON.stringify({ ttl: '30m', reason: 'keep it a little' }) });
    expect(extend.status).toBe(400);
    expect(((await extend.json()) as { detail: string }).detail).toMatch(/^body\.ttl: 30m is longer than the longest extension, 20m \(playbook contain@\S+ step quarantine-root max_extension\)$/);
    // watch's own steps after the carried notify run, once.
    await until('watch notify-later', async () => (notifies(await ledgerOf(v1.id), 'notify-later').length > 0 ? true : undefined));
    expect(notifies(await settled(v1.id), 'notify-later')).toHaveLength(1);
  });

  it('high then critical: the pending approval of approve-then-contain is closed as superseded, the quarantine is applied once, a late decision is refused', async () => {
    const v1 = syntheticIncident(uniq('sup'), { severity: 'high', version: 1 });
    await publish(v1);
    const pending = await until('the approval', async () => (await service.containment!.approvals.forIncident(v1.id)).find((a) => a.state === 'pending'));
    await publish({ ...v1, severity: 'critical', version: 2 } as Incident);
    await until('the root quarantined', async () => ((await lease(v1.root))?.state === 'applied' ? true : undefined));
    expect(await service.containment!.approvals.get(pending.id)).toMatchObject({ state: 'denied', decidedBy: 'service:cordon' });
    const url = `http://127.0.0.1:${(service.http.server.address() as { port: number }).port}`;
    const late = await fetch(`${url}/api/approvals/${pending.id}/approve`, { method: 'POST', headers: { authorization: `Bearer ${APPROVER}`, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'looks bad' }) });
    expect(late.status).toBe(409);
    const records = await settled(v1.id);
    expect(records.find((r) => r.action === 'approval_refused')).toMatchObject({ actor: 'service:cordon', approvalId: pending.id, reason: expect.stringMatching(/^superseded: the incident now follows contain@.* instead of ask@/) });
    expect(records.filter((r) => r.action === 'quarantine_applied' && (r.after as { state: string }).state === 'applied')).toHaveLength(1);
    expect(notifies(records)).toHaveLength(1);
    expect(changes(records)).toHaveLength(1);
  });

  it('a switch cut off after its claim (the process died) is finished by the version delivered again, once', async () => {
    const v1 = syntheticIncident(uniq('cut'), { severity: 'medium', version: 1 });
    await publish(v1);
    await until('the watch notify', async () => (notifies(await ledgerOf(v1.id)).length > 0 ? true : undefined));
    // What the switcher's compare-and-set leaves for version 2 when the process dies right after it.
    const v2 = { ...v1, severity: 'critical', version: 2 } as Incident;
    const { redis } = service;
    const key = `${config.redis.keyPrefix}:contain:run:${v1.id}`;
    const current = JSON.parse((await redis.get(key))!) as SwitchedRun;
    const playbooks = loadPlaybooks([dir]).playbooks;
    const claimed = new Set(await redis.smembers(`${key}:done`));
    const { run, carried } = switchRun(current, select(playbooks, v2).playbook!, v2, { now: Date.now() }, { claimed, held: new Map() });
    await redis.set(key, JSON.stringify(run));
    await redis.set(`${key}:switch`, JSON.stringify({ generation: 1, phase: 'claimed', from: current.playbookId, matched: [], carried }));
    expect((await ledgerOf(v1.id)).some((r) => r.action === 'playbook_changed')).toBe(false);

    await publish(v2);
    await until('the root quarantined', async () => ((await lease(v1.root))?.state === 'applied' ? true : undefined));
    await publish(v2);
    const records = await settled(v1.id);
    expect(changes(records)).toEqual([expect.objectContaining({ from: current.playbookId, to: run.playbookId, generation: 1 })]);
    expect(JSON.parse((await redis.get(`${key}:switch`))!)).toMatchObject({ generation: 1, phase: 'queued' });
    expect(notifies(records)).toHaveLength(1);
    expect(notifies(records, 'notify-last')).toHaveLength(1);
    expect(records.filter((r) => r.action === 'quarantine_applied' && (r.after as { state: string }).state === 'applied')).toHaveLength(1);
  });
});
