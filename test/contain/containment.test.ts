import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Kafka } from 'kafkajs';
import { signLink } from '../../src/approvals/links';
import type { Config } from '../../src/config';
import { CHANGE_HEADER } from '../../src/correlate/correlator';
import type { Incident } from '../../src/correlate/incident';
import { replay } from '../../src/correlate/replay';
import type { CordonEvent } from '../../src/events';
import { toTarget } from '../../src/contain/runner';
import { LabelStoreEnforcer } from '../../src/enforcer/label-store';
import { sha256Hex } from '../../src/http/auth';
import { readLines } from '../../src/io/lines';
import { verifyLedger, exportLedger } from '../../src/ledger/audit';
import type { LedgerRecord } from '../../src/ledger/records';
import { normalizeRecord } from '../../src/normalize/registry';
import { Service } from '../../src/service';
import { createTopics, deleteTopics, testKafka } from '../support/kafka';
import { eventually, testConfig, testLog } from '../support/stack';

const RECORDING = resolve(__dirname, '../../../shared/datasets/otrf-lateral-movement/covenant_sharpsc_create_dcerpc_smb_svcctl.jsonl.gz');
const TOKENS = { viewer: 'viewer-token-0123456789abcdef', responder: 'responder-token-0123456789abcdef', approver: 'approver-token-0123456789abcdef' };
const LINK_SECRET = 'link-secret-0123456789abcdef0123456789';

async function recordedIncident(): Promise<Incident> {
  const events: CordonEvent[] = [];
  const ctx = { state: new Map() };
  for await (const line of readLines(RECORDING)) {
    const o = normalizeRecord(line, 'wfp', ctx);
    if (o.kind === 'events') events.push(...o.events);
  }
  return replay(events).incidents[0]!;
}

function playbook(name: string, steps: string, match = 'severity: high'): string {
  return `apiVersion: cordon.io/v1
kind: Playbook
name: ${name}
description: test playbook ${name}
priority: 100
mode: ${steps.includes('type: approve') ? (steps.indexOf('type: approve') < steps.indexOf('type: quarantine') ? 'approve-then-contain' : 'contain-now-approve-to-keep') : 'auto'}
match:
  ${match}
safety:
  protected_approval:
    approvers: [soc-oncall]
    deadline: 15m
steps:
${steps}`;
}

const QUARANTINE = `  - id: quarantine-root
    type: quarantine
    target: root
    enforcer: labelstore
    ttl: 1h
`;
const approve = (onTimeout: string, deadline = '1h', extra = '') => `  - id: ask-oncall
    type: approve
    approvers: [soc-oncall]
    deadline: ${deadline}
    on_timeout: ${onTimeout}
${extra}`;

describe('containment end to end (real Kafka, Redis, BullMQ; the label-store enforcer)', () => {
  let kafka: Kafka;
  let base: Incident;
  const services: Service[] = [];
  const configs: Config[] = [];

  beforeAll(async () => {
    kafka = testKafka();
    base = await recordedIncident();
  });
  afterAll(async () => {
    for (const s of services) await s.stop();
    for (const c of configs) await deleteTopics(kafka, c);
  });

  async function start(name: string, yaml: string, auth: Record<string, unknown> = {}) {
    while (services.length > 0) await services.pop()!.stop();
    const dir = mkdtempSync(join(tmpdir(), 'cordon-playbooks-'));
    writeFileSync(join(dir, `${name}.yaml`), yaml);
    const config = testConfig(name, {
      contain: { playbooks: dir, reconcileIntervalMs: 500, enforcers: { labelstore: true } },
      auth: {
        tokens: Object.entries(TOKENS).map(([role, token]) => ({ name: `${role}-1`, role, sha256: sha256Hex(token), groups: ['soc-oncall', 'security-leads'] })),
        linkSecret: LINK_SECRET,
        ...auth,
      },
    });
    configs.push(config);
    await createTopics(kafka, config);
    const service = new Service(config, testLog);
    services.push(service);
    await service.start();
    const url = `http://127.0.0.1:${(service.http.server.address() as { port: number }).port}`;
    return { config, service, url };
  }

  async function publish(config: Config, incident: Incident): Promise<void> {
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: config.kafka.topics.incidents, messages: [{ key: incident.id, value: JSON.stringify(incident), headers: { [CHANGE_HEADER]: 'incident_opened' } }] });
    await producer.disconnect();
  }

  const incident = (over: Partial<Incident> = {}): Incident => ({ ...base, severity: 'high', confidence: 0.9, ...over });
  const call = (url: string, path: string, token?: string, body?: unknown) =>
    fetch(`${url}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const lease = (s: Service) => s.containment!.quarantines.registry.get(base.root);
  const waitLease = (s: Service, state: string) => eventually(async () => ((await lease(s))?.state === state ? true : undefined), 20_000, `lease ${state}`);
  async function ledgerOf(config: Config): Promise<LedgerRecord[]> {
    const lines: string[] = [];
    await exportLedger(kafka, config.kafka.topics.ledger, (l) => void lines.push(l));
    return lines.map((l) => JSON.parse(l) as LedgerRecord);
  }

  it('auto playbook: quarantines the root, the API shows it, a responder releases it, the ledger verifies', async () => {
    const { config, service, url } = await start('auto', playbook('auto', QUARANTINE));
    await publish(config, incident());
    await waitLease(service, 'applied');

    const listed = (await (await call(url, '/api/quarantines', TOKENS.viewer)).json()) as Array<{ target: string; holders: string[] }>;
    expect(listed.map((l) => [l.target, l.holders])).toEqual([[base.root, [base.id]]]);
    expect((await call(url, `/api/quarantines/${encodeURIComponent(base.root)}/release`, TOKENS.viewer, { reason: 'false positive' })).status).toBe(403);
    expect((await call(url, `/api/quarantines/${encodeURIComponent(base.root)}/release`, TOKENS.responder, {})).status).toBe(400);
    const released = await call(url, `/api/quarantines/${encodeURIComponent(base.root)}/release`, TOKENS.responder, { reason: 'confirmed false positive' });
    expect(released.status).toBe(200);
    expect((await lease(service))?.state).toBe('released');

    await service.stop();
    const records = await ledgerOf(config);
    expect(records.map((r) => r.action)).toEqual(['incident_raised', 'playbook_started', 'quarantine_applied', 'quarantine_applied', 'quarantine_released']);
    expect(records.at(-1)).toMatchObject({ actor: 'user:responder-1', reason: 'confirmed false positive' });
    expect(await verifyLedger(kafka, config.kafka.topics.ledger)).toMatchObject({ ok: true, count: 5 });
  });

  it('approve-then-contain: viewer and responder may not approve; an approver can, and the quarantine follows', async () => {
    const { config, service, url } = await start('approve', playbook('approve', approve('release') + QUARANTINE));
    await publish(config, incident());
    const pending = await eventually(async () => {
      const res = await call(url, '/api/approvals', TOKENS.viewer);
      const list = (await res.json()) as Array<{ id: string; targets: Array<{ key: string }> }>;
      if (!Array.isArray(list)) throw new Error(`GET /api/approvals: ${res.status} ${JSON.stringify(list)}`);
      return list.length > 0 ? list : undefined;
    });
    expect(pending[0]!.targets.map((t) => t.key)).toEqual([base.root]);
    const id = pending[0]!.id;
    expect((await call(url, `/api/approvals/${id}/approve`, TOKENS.responder, { reason: 'looks bad' })).status).toBe(403);
    expect((await call(url, `/api/approvals/${id}/approve`, TOKENS.viewer, { reason: 'looks bad' })).status).toBe(403);
    expect((await call(url, `/api/approvals/${id}/approve`, undefined, { reason: 'looks bad' })).status).toBe(401);
    expect(await lease(service)).toBeUndefined();
    const ok = await call(url, `/api/approvals/${id}/approve`, TOKENS.approver, { reason: 'confirmed with the workstation owner', ttl: '30m' });
    expect(ok.status).toBe(200);
    expect((await call(url, `/api/approvals/${id}/approve`, TOKENS.approver, { reason: 'again' })).status).toBe(409);
    await waitLease(service, 'applied');
    const l = await lease(service);
    const records = await ledgerOf(config);
    expect(records.find((r) => r.action === 'approval_given')).toMatchObject({ actor: 'user:approver-1', reason: 'confirmed with the workstation owner', approvalId: id });
    // Approved for 30m: the quarantine step (ttl 1h) takes the shorter TTL.
    const pendingAt = records.find((r) => r.action === 'quarantine_applied' && (r.after as { state: string }).state === 'pending')!.at;
    expect(l!.expiresAt - pendingAt).toBeLessThanOrEqual(30 * 60_000);
    expect(l!.expiresAt - pendingAt).toBeGreaterThan(30 * 60_000 - 5_000);
  });

  describe('contain-now-approve-to-keep', () => {
    const NOTIFY_KEPT = `  - id: notify-kept
    type: notify
    channels: [splunk]
    message: kept {{ incident.id }}
`;
    const keepPlaybook = (name: string, onTimeout = 'release', deadline = '30m') => playbook(name, QUARANTINE + approve(onTimeout, deadline) + NOTIFY_KEPT);
    const pendingApproval = (s: Service) =>
      eventually(async () => {
        const list = await s.containment!.approvals.pending();
        return list.length > 0 ? list[0]! : undefined;
      });

    it('approved: the quarantine is kept, extended to the approved TTL by the approver, and the run goes on', async () => {
      const { config, service, url } = await start('keep-approve', keepPlaybook('keep-approve'));
      await publish(config, incident());
      await waitLease(service, 'applied');
      const a = await pendingApproval(service);
      expect(a.targets.map((t) => t.key)).toEqual([base.root]);
      const res = await call(url, `/api/approvals/${a.id}/approve`, TOKENS.approver, { reason: 'owner confirms compromise', ttl: '20m' });
      expect(res.status).toBe(200);
      const decided = (await res.json()) as { decidedAt: number };
      await eventually(async () => ((await ledgerOf(config)).some((r) => r.action === 'playbook_step' && (r.after as { step?: string }).step === 'notify-kept') ? true : undefined), 20_000, 'notify-kept');
      const l = await lease(service);
      expect(l).toMatchObject({ state: 'applied', holders: [base.id], expiresAt: decided.decidedAt + 20 * 60_000 });
      const records = await ledgerOf(config);
      expect(records.find((r) => r.action === 'quarantine_extended')).toMatchObject({
        actor: 'user:approver-1',
        target: base.root,
        reason: `kept for 20m by approval ${a.id}: owner confirms compromise`,
        incidentId: base.id,
      });
      expect(records.some((r) => r.action === 'quarantine_released')).toBe(false);
    });

    it('approved without a TTL: kept for the playbook TTL from the decision', async () => {
      const { config, service, url } = await start('keep-default', keepPlaybook('keep-default'));
      await publish(config, incident());
      await waitLease(service, 'applied');
      const a = await pendingApproval(service);
      const res = await call(url, `/api/approvals/${a.id}/approve`, TOKENS.approver, { reason: 'keep it' });
      const decided = (await res.json()) as { decidedAt: number };
      await eventually(async () => ((await lease(service))?.expiresAt === decided.decidedAt + 60 * 60_000 ? true : undefined), 20_000, 'lease kept for 1h');
      expect((await ledgerOf(config)).filter((r) => r.action === 'quarantine_extended')).toHaveLength(1);
    });

    it('denied: the quarantine is released at once, by the approver, and the run stops', async () => {
      const { config, service, url } = await start('keep-deny', keepPlaybook('keep-deny'));
      await publish(config, incident());
      await waitLease(service, 'applied');
      const a = await pendingApproval(service);
      expect((await call(url, `/api/approvals/${a.id}/deny`, TOKENS.approver, { reason: 'known admin tool' })).status).toBe(200);
      await waitLease(service, 'released');
      const records = await ledgerOf(config);
      expect(records.find((r) => r.action === 'quarantine_released')).toMatchObject({ actor: 'user:approver-1', reason: `approval ${a.id} denied: known admin tool` });
      expect(records.some((r) => (r.after as { step?: string } | null)?.step === 'notify-kept')).toBe(false);
      expect(records.some((r) => r.action === 'quarantine_extended')).toBe(false);
    });

    it('unanswered (on_timeout release): the quarantine is released when the deadline passes', async () => {
      const { config, service } = await start('keep-timeout', keepPlaybook('keep-timeout', 'release', '2s'));
      await publish(config, incident());
      await waitLease(service, 'applied');
      await waitLease(service, 'released');
      const records = await ledgerOf(config);
      expect(records.map((r) => r.action)).toContain('approval_timed_out');
      expect(records.find((r) => r.action === 'quarantine_released')).toMatchObject({ actor: 'service:cordon' });
      expect(records.some((r) => r.action === 'quarantine_extended')).toBe(false);
    });
  });

  it('drift: a quarantine label changed outside Cordon is recorded once; the expiry still restores the original labels', async () => {
    const steps = QUARANTINE.replace('ttl: 1h', 'ttl: 4s');
    const { config, service } = await start('drift', playbook('drift', steps));
    const labels = new LabelStoreEnforcer(service.redis, config.redis.keyPrefix);
    const target = toTarget(base.entities.find((e) => e.key === base.root)!);
    await labels.setLabels(target, { app: 'erp' });
    await publish(config, incident());
    await waitLease(service, 'applied');
    await labels.setLabels(target, { app: 'erp', 'cordon.io/quarantine': 'false' });
    await waitLease(service, 'expired');
    const records = await ledgerOf(config);
    const drift = records.filter((r) => r.action === 'drift_detected');
    expect(drift).toHaveLength(1);
    const holder = records.find((r) => r.action === 'incident_raised')!.incidentId;
    expect(drift[0]).toMatchObject({
      actor: 'service:cordon',
      target: base.root,
      incidentId: holder,
      reason: `quarantine labels changed outside Cordon: cordon.io/quarantine=false (held for ${holder})`,
    });
    // The default drift policy (reapply) put the label back before the expiry restored the original ones.
    const reapplied = records.filter((r) => r.action === 'quarantine_applied' && r.reason.startsWith('drift policy reapply:'));
    expect(reapplied).toHaveLength(1);
    expect(reapplied[0]!.seq).toBeGreaterThan(drift[0]!.seq);
    expect((await labels.observe(target)).labels).toEqual({ app: 'erp' });
  });

  it('a target protected as the enforcer sees it (playbook safety.protected label) becomes an approval; approved, it is applied', async () => {
    const yaml = playbook('protlive', QUARANTINE).replace('safety:\n', 'safety:\n  protected:\n    - labels: { tier: crown-jewel }\n');
    const { config, service, url } = await start('protlive', yaml);
    const labels = new LabelStoreEnforcer(service.redis, config.redis.keyPrefix);
    const target = toTarget(base.entities.find((e) => e.key === base.root)!);
    await labels.setLabels(target, { tier: 'crown-jewel' });
    await publish(config, incident());
    const pending = await eventually(async () => (await service.containment!.approvals.pending())[0]);
    expect(pending).toMatchObject({ subject: 'target', approvers: ['soc-oncall'], targets: [{ key: base.root }] });
    expect(pending.question).toMatch(/protected as labelstore sees it now/);
    expect((await lease(service))?.state).toBe('failed');
    expect((await call(url, `/api/approvals/${pending.id}/approve`, TOKENS.approver, { reason: 'isolate it' })).status).toBe(200);
    await waitLease(service, 'applied');
    expect((await labels.observe(target)).labels).toMatchObject({ tier: 'crown-jewel', 'cordon.io/quarantine': 'true' });
  });

  it('notify and enrich steps record what they sent and the entities\' labels as the enforcer sees them', async () => {
    const steps = `  - id: tell
    type: notify
    channels: [splunk, elasticsearch]
    message: quarantining {{ root.name }} for {{ incident.id }}
  - id: before
    type: enrich
    source: splunk
${QUARANTINE}  - id: after
    type: enrich
    source: splunk
    query: search host={{ root.name }}
`;
    const { config, service } = await start('enrich', playbook('enrich', steps));
    const labels = new LabelStoreEnforcer(service.redis, config.redis.keyPrefix);
    const root = base.entities.find((e) => e.key === base.root)!;
    await labels.setLabels(toTarget(root), { app: 'hr' });
    await publish(config, incident());
    const records = await eventually(async () => {
      const all = await ledgerOf(config);
      return all.some((r) => (r.after as { step?: string } | null)?.step === 'after') ? all : undefined;
    });
    const step = (id: string) => records.find((r) => r.action === 'playbook_step' && (r.after as { step?: string }).step === id)!;
    expect(step('tell').after).toEqual({ step: 'tell', type: 'notify', channels: ['splunk', 'elasticsearch'], message: `quarantining ${root.name} for ${base.id}`, dryRun: false });
    expect(step('tell').reason).toBe(`notify splunk, elasticsearch: quarantining ${root.name} for ${base.id}`);
    const seen = (id: string) => (step(id).after as { labels: { labelstore: Record<string, Record<string, string>> } }).labels.labelstore;
    expect(seen('before')[base.root]).toEqual({ app: 'hr' });
    expect(Object.keys(seen('before'))).toEqual(base.entities.map((e) => e.key));
    expect(seen('after')[base.root]).toEqual({ app: 'hr', 'cordon.io/quarantine': 'true' });
    expect(step('after').after).toMatchObject({ source: 'splunk', query: `search host="${root.name}"` });
    expect(step('before').after).toMatchObject({ search: { outcome: 'skipped', reason: 'splunk.search is not enabled in the config' } });
  });

  it.each([
    ['approve', 'applied', 'approval_timed_out'],
    ['release', undefined, 'approval_timed_out'],
  ])('an approval nobody answers: on_timeout %s', async (onTimeout, leaseState, action) => {
    const { config, service } = await start(`timeout-${onTimeout}`, playbook(`timeout-${onTimeout}`, approve(onTimeout, '2s') + QUARANTINE));
    await publish(config, incident());
    await eventually(async () => ((await ledgerOf(config)).some((r) => r.action === action) ? true : undefined), 20_000, action);
    if (leaseState) await waitLease(service, leaseState);
    else {
      await new Promise((r) => setTimeout(r, 1000));
      expect(await lease(service)).toBeUndefined();
    }
  });

  it('an approval nobody answers: on_timeout escalate asks the next group, then silence releases', async () => {
    const { config, service } = await start('timeout-escalate', playbook('timeout-escalate', approve('escalate', '2s', '    escalate_to: [security-leads]\n') + QUARANTINE));
    await publish(config, incident());
    await eventually(async () => ((await ledgerOf(config)).some((r) => r.action === 'approval_escalated') ? true : undefined), 20_000, 'escalation');
    const [approval] = await service.containment!.approvals.forIncident(base.id);
    expect(approval!.approvers).toEqual(['security-leads']);
    await eventually(async () => ((await ledgerOf(config)).some((r) => r.action === 'approval_timed_out') ? true : undefined), 20_000, 'second deadline');
    expect(await lease(service)).toBeUndefined();
  });

  it('one-click links: a good link decides once; a replayed, altered or expired link is refused', async () => {
    const { config, service, url } = await start('links', playbook('links', approve('release') + QUARANTINE));
    await publish(config, incident());
    const [pending] = await eventually(async () => {
      const list = await service.containment!.approvals.pending();
      return list.length > 0 ? list : undefined;
    });
    const links = (await (await call(url, `/api/approvals/${pending!.id}/links`, TOKENS.approver, {})).json()) as { approve: string; deny: string };
    const path = new URL(links.approve).pathname;
    expect((await fetch(`${url}${path}`)).status).toBe(200);

    const [payload, sig] = path.slice(3).split('.');
    const altered = Buffer.from(payload!, 'base64url').toString().replace('"approve"', '"deny"');
    expect((await fetch(`${url}/a/${Buffer.from(altered).toString('base64url')}.${sig}`, { method: 'POST' })).status).toBe(403);
    const expired = signLink({ approvalId: pending!.id, decision: 'approve', approver: 'approver-1', groups: ['soc-oncall'], exp: Math.floor(Date.now() / 1000) - 5, nonce: 'old' }, LINK_SECRET);
    const refused = await fetch(`${url}/a/${expired}`, { method: 'POST' });
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ status: 403, detail: 'link expired' });

    expect((await fetch(`${url}${path}`, { method: 'POST' })).status).toBe(200);
    const replayed = await fetch(`${url}${path}`, { method: 'POST' });
    expect(replayed.status).toBe(403);
    expect(await replayed.json()).toMatchObject({ status: 403, detail: 'link already used' });
    await waitLease(service, 'applied');
    expect((await ledgerOf(config)).find((r) => r.action === 'approval_given')).toMatchObject({ actor: 'user:approver-1' });
  });
});
