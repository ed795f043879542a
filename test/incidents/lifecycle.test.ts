import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Kafka } from 'kafkajs';
import type { Config } from '../../src/config';
import type { Incident } from '../../src/correlate/incident';
import { sha256Hex } from '../../src/http/auth';
import { exportLedger } from '../../src/ledger/audit';
import type { LedgerRecord } from '../../src/ledger/records';
import { produceFile } from '../../src/produce';
import { Service } from '../../src/service';
import { createTopics, deleteTopics, testKafka } from '../support/kafka';
import { eventually, testConfig, testLog } from '../support/stack';

const RECORDING = resolve(__dirname, '../../../shared/datasets/otrf-lateral-movement/covenant_sharpsc_create_dcerpc_smb_svcctl.jsonl.gz');
const TOKENS = { viewer: 'viewer-token-0123456789abcdef', responder: 'responder-token-0123456789abcdef' };
const PLAYBOOK = `apiVersion: cordon.io/v1
kind: Playbook
name: lifecycle
description: lifecycle test, contain at once for a few seconds
priority: 100
mode: auto
match:
  severity: low
safety:
  protected_approval:
    approvers: [soc-oncall]
    deadline: 15m
steps:
  - id: quarantine-root
    type: quarantine
    target: root
    enforcer: labelstore
    ttl: 4s
`;

jest.setTimeout(120_000);

/**
 * The incident's status follows its containment, and an analyst can close it: the recorded attack
 * goes through the real correlator, the playbook quarantines its root, the quarantine expires.
 */
describe('incident lifecycle on the real service', () => {
  let kafka: Kafka;
  let config: Config;
  let service: Service;
  let url: string;

  beforeAll(async () => {
    kafka = testKafka();
    const dir = mkdtempSync(join(tmpdir(), 'cordon-lifecycle-'));
    writeFileSync(join(dir, 'lifecycle.yaml'), PLAYBOOK);
    config = testConfig('lifecycle', {
      contain: { playbooks: dir, reconcileIntervalMs: 500, enforcers: { labelstore: true } },
      auth: { tokens: Object.entries(TOKENS).map(([role, token]) => ({ name: `${role}-1`, role, sha256: sha256Hex(token) })) },
      ingest: { maxEventAgeMs: 0 },
    });
    await createTopics(kafka, config);
    service = new Service(config, testLog);
    await service.start();
    url = `http://127.0.0.1:${(service.http.server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    await service?.stop();
    await deleteTopics(kafka, config);
  });

  const statusOf = async (id: string) => (await service.correlator.incidents.get(id))?.status;
  const waitStatus = (id: string, status: string) => eventually(async () => ((await statusOf(id)) === status ? true : undefined), 30_000, `incident ${status}`);
  const close = (id: string, token: string, body: unknown) =>
    fetch(`${url}/api/incidents/${id}/close`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('is contained while its quarantine holds, released when it expires, and closed by an analyst', async () => {
    const producer = kafka.producer();
    await producer.connect();
    await produceFile(producer, RECORDING, config.kafka.inputs[0]!.topic, { format: 'wfp', timestamp: 'event' }, config.kafka.partitions);
    await producer.disconnect();
    const incident = await eventually(async () => (await service.correlator.incidents.list())[0], 30_000, 'the incident');

    await waitStatus(incident.id, 'contained');
    const contained = (await service.correlator.incidents.get(incident.id)) as Incident;
    // Opened at version 1; each status change (containing, then contained) is a new version.
    expect(contained.version).toBeGreaterThanOrEqual(Math.max(3, incident.version));
    await waitStatus(incident.id, 'released');

    expect((await close(incident.id, TOKENS.viewer, { reason: 'resolved: host reimaged' })).status).toBe(403);
    const bad = await close(incident.id, TOKENS.responder, {});
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { detail: string }).detail).toMatch(/reason/);
    expect((await close('inc-does-not-exist', TOKENS.responder, { reason: 'typo' })).status).toBe(404);
    const closed = await close(incident.id, TOKENS.responder, { reason: 'resolved: host reimaged' });
    expect(closed.status).toBe(202);
    await waitStatus(incident.id, 'closed');
    const again = await close(incident.id, TOKENS.responder, { reason: 'resolved: host reimaged' });
    expect(again.status).toBe(409);

    const lines: string[] = [];
    await exportLedger(kafka, config.kafka.topics.ledger, (l) => void lines.push(l));
    const records = lines.map((l) => JSON.parse(l) as LedgerRecord).filter((r) => r.incidentId === incident.id || r.target === contained.root);
    expect(records.map((r) => r.action)).toEqual(['incident_raised', 'playbook_started', 'quarantine_applied', 'quarantine_applied', 'quarantine_expired', 'incident_updated']);
    expect(records.at(-1)).toMatchObject({ actor: 'user:responder-1', reason: 'resolved: host reimaged', after: { status: 'closed', from: 'released' } });
  });
});
