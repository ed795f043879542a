import { freePort } from '../../bench/support/cordon-process';
import type { Config } from '../../src/config';
import { sha256Hex } from '../../src/http/auth';
import { Service } from '../../src/service';
import { playbookDir, publishIncident, syntheticIncident } from '../contain/support';
import { createTopics, deleteTopics, testKafka } from '../support/kafka';
import { eventually, testConfig, testLog } from '../support/stack';
import { cordonIn } from './support';

/**
 * What the CLI prints for an API error: the call, the status, then the error's name and what was
 * wrong, whichever of the API's shapes carried it ({error, message} or RFC 9457 title and detail).
 */
const apiError = (call: string, error: string, message: string) => expect.stringMatching(new RegExp(`^${escape(`${call}: `)}(${escape(error)}|${escape(error.replace(/\b\w/g, (c) => c.toUpperCase()))}): ${escape(message)}\n$`));
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const TOKENS = { viewer: 'viewer-token-0123456789abcdef', responder: 'responder-token-0123456789abcdef', approver: 'approver-token-0123456789abcdef' };

/** Contain now, ask the on-call to keep it: each incident leaves an applied quarantine and a pending approval. */
const PLAYBOOK = `apiVersion: cordon.io/v1
kind: Playbook
name: cli-keep
description: the on-call CLI test playbook
priority: 100
mode: contain-now-approve-to-keep
match:
  severity: high
safety:
  protected_approval:
    approvers: [soc-oncall]
    deadline: 15m
steps:
  - id: quarantine-root
    type: quarantine
    target: root
    enforcer: labelstore
    ttl: 1h
  - id: ask-oncall
    type: approve
    approvers: [soc-oncall]
    deadline: 1h
    on_timeout: release
`;

describe('cordon approve|deny|extend|release against a running service (real Kafka, Redis, BullMQ; label-store enforcer)', () => {
  const kafka = testKafka();
  let config: Config;
  let service: Service;
  let env: Record<string, string>;
  const as = (role: keyof typeof TOKENS) => ({ ...env, CORDON_TOKEN: TOKENS[role] });

  beforeAll(async () => {
    config = testConfig('cli-oncall', {
      contain: { playbooks: playbookDir('cli-oncall', PLAYBOOK), reconcileIntervalMs: 500, enforcers: { labelstore: true } },
      auth: { tokens: Object.entries(TOKENS).map(([role, token]) => ({ name: `${role}-1`, role, sha256: sha256Hex(token), groups: ['soc-oncall'] })) },
    });
    await createTopics(kafka, config);
    service = new Service(config, testLog);
    await service.start();
    env = { CORDON_URL: `http://127.0.0.1:${(service.http.server.address() as { port: number }).port}` };
  }, 60_000);
  afterAll(async () => {
    await service?.stop();
    await deleteTopics(kafka, config);
  });

  /** Publishes an incident and waits for its quarantine and its pending approval. */
  async function contained(tag: string) {
    const incident = syntheticIncident(tag);
    await publishIncident(kafka, config, incident);
    await eventually(async () => ((await service.containment!.quarantines.registry.get(incident.root))?.state === 'applied' ? true : undefined), 30_000, 'quarantine applied');
    const approval = await eventually(async () => (await service.containment!.approvals.pending()).find((a) => a.incidentId === incident.id), 30_000, 'approval pending');
    return { incident, approval };
  }

  it('approve: refused without a token (exit 2) and for a responder (exit 1, the API\'s 403); an approver approves, in human text and as JSON', async () => {
    const { approval } = await contained('cli-approve');
    const noToken = await cordonIn(['approve', approval.id, '--reason', 'owner confirms'], { env });
    expect(noToken.code).toBe(2);
    expect(noToken.err).toMatch(/^cordon approve: invalid arguments:\n {2}--token: a bearer token is required: set CORDON_TOKEN or pass --token\n$/);

    const responder = await cordonIn(['approve', approval.id, '--reason', 'owner confirms'], { env: as('responder') });
    expect(responder).toEqual({ code: 1, out: '', err: apiError(`cordon approve: POST /api/approvals/${approval.id}/approve answered 403`, 'forbidden', 'role responder may not do this; it needs approver') });

    const short = await cordonIn(['approve', approval.id, '--reason', 'ok'], { env: as('approver') });
    expect(short.code).toBe(2);
    expect(short.err).toContain('--reason = "ok": say why (at least 3 characters)');

    const ok = await cordonIn(['approve', approval.id, '--reason', 'owner confirms compromise', '--ttl', '20m'], { env: as('approver') });
    expect(ok.err).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.out).toBe(`${approval.id} approved by user:approver-1 (incident ${approval.incidentId}), quarantine kept for 20m\n  reason:  owner confirms compromise\n  targets: ${approval.targets.map((t) => t.key).join(', ')}\n`);
    expect((await service.containment!.approvals.get(approval.id))!.state).toBe('approved');

    const again = await cordonIn(['approve', approval.id, '--reason', 'again', '--json'], { env: as('approver') });
    expect(again.code).toBe(1);
    expect(again.out).toBe('');
    expect(again.err).toEqual(apiError(`cordon approve: POST /api/approvals/${approval.id}/approve answered 409`, 'conflict', `approval ${approval.id} is already approved`));

    const missing = await cordonIn(['deny', 'no-such-approval', '--reason', 'not an attack', '--json'], { env: as('approver') });
    expect(missing).toMatchObject({ code: 1, err: apiError('cordon deny: POST /api/approvals/no-such-approval/deny answered 404', 'not found', 'no approval no-such-approval') });
  }, 60_000);

  it('deny --json prints the decided approval as one JSON line; the quarantine it kept is released', async () => {
    const { incident, approval } = await contained('cli-deny-it');
    const denied = await cordonIn(['deny', approval.id, '-r', 'known admin tool', '--json'], { env: as('approver') });
    expect(denied.code).toBe(0);
    expect(JSON.parse(denied.out)).toMatchObject({ id: approval.id, state: 'denied', decidedBy: 'user:approver-1', reason: 'known admin tool' });
    expect(denied.out.trim().split('\n')).toHaveLength(1);
    await eventually(async () => ((await service.containment!.quarantines.registry.get(incident.root))?.state === 'released' ? true : undefined), 20_000, 'released after deny');
  }, 60_000);

  it('extend and release a live quarantine; an extension past the bounds is the API\'s 400, named', async () => {
    const { incident } = await contained('cli-lease');
    const before = Date.now();
    const extended = await cordonIn(['extend', incident.root, '--ttl', '2h', '--reason', 'still investigating', '--json'], { env: as('responder') });
    expect(extended.err).toBe('');
    expect(extended.code).toBe(0);
    const lease = JSON.parse(extended.out) as { target: string; state: string; expiresAt: number };
    expect(lease).toMatchObject({ target: incident.root, state: 'applied' });
    expect(lease.expiresAt).toBeGreaterThanOrEqual(before + 7_200_000);
    expect((await service.containment!.quarantines.registry.get(incident.root))!.expiresAt).toBe(lease.expiresAt);

    const tooLong = await cordonIn(['extend', incident.root, '--ttl', '30d', '--reason', 'forever'], { env: as('responder') });
    expect(tooLong.code).toBe(1);
    expect(tooLong.err).toMatch(new RegExp(`^cordon extend: POST /api/quarantines/${incident.root}/extend answered 400: bad request: body\\.ttl: 30d is above the hard limit`, 'i'));

    const viewer = await cordonIn(['release', incident.root, '--reason', 'false positive'], { env: as('viewer') });
    expect(viewer.code).toBe(1);
    expect(viewer.err).toMatch(/answered 403: forbidden: role viewer may not do this; it needs responder\n$/i);

    const released = await cordonIn(['release', incident.root, '--reason', 'confirmed false positive'], { env: as('responder') });
    expect(released.err).toBe('');
    expect(released.code).toBe(0);
    expect(released.out).toMatch(new RegExp(`^released ${incident.root}: released \\(restored\\)\\n$`));
    expect((await service.containment!.quarantines.registry.get(incident.root))!.state).toBe('released');
  }, 60_000);

  it('quarantine: a responder contains an entity by hand, as text and JSON; bad options exit 2, the API\'s refusals exit 1', async () => {
    const text = await cordonIn(['quarantine', 'ip:10.60.0.1', '--ttl', '2h', '--reason', 'beaconing to a known C2 host'], { env: as('responder') });
    expect(text.err).toBe('');
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/^quarantined ip:10\.60\.0\.1: applied, until \d{4}-\d\d-\d\dT[\d:.]+Z\n {2}held by: manual\.responder-1\.[0-9a-z]+\n$/);
    const lease = (await service.containment!.quarantines.registry.get('ip:10.60.0.1'))!;
    expect(lease).toMatchObject({ state: 'applied', holders: [expect.stringMatching(/^manual\.responder-1\./)] });
    expect(text.out).toContain(new Date(lease.expiresAt).toISOString());

    const json = await cordonIn(['quarantine', 'vm:db-2', '--ttl', '30m', '-r', 'lateral movement seen', '--enforcer', 'labelstore', '--json'], { env: as('approver') });
    expect(json.code).toBe(0);
    expect(json.out.trim().split('\n')).toHaveLength(1);
    expect(JSON.parse(json.out)).toMatchObject({ target: 'vm:db-2', state: 'applied', enforcer: 'labelstore', holders: [expect.stringMatching(/^manual\.approver-1\./)] });

    const badTtl = await cordonIn(['quarantine', 'ip:10.60.0.2', '--ttl', 'forever', '--reason', 'looks odd'], { env: as('responder') });
    expect(badTtl.code).toBe(2);
    expect(badTtl.err).toMatch(/^cordon quarantine: invalid arguments:\n {2}--ttl = "forever": /);

    const badEntity = await cordonIn(['quarantine', 'pod:web-1', '--ttl', '1h', '--reason', 'looks odd'], { env: as('responder') });
    expect(badEntity).toEqual({ code: 2, out: '', err: 'cordon quarantine: invalid arguments:\n  --entity = "pod:web-1": a pod is pod:<namespace>/<name>\n' });

    const tooLong = await cordonIn(['quarantine', 'ip:10.60.0.2', '--ttl', '2d', '--reason', 'looks odd'], { env: as('responder') });
    expect(tooLong).toEqual({ code: 1, out: '', err: 'cordon quarantine: POST /api/quarantines answered 400: Bad Request: body.ttl: 2d is longer than the longest extension, 1d (contain.maxExtensionMs)\n' });

    const viewer = await cordonIn(['quarantine', 'ip:10.60.0.2', '--ttl', '1h', '--reason', 'looks odd', '--json'], { env: as('viewer') });
    expect(viewer).toEqual({ code: 1, out: '', err: 'cordon quarantine: POST /api/quarantines answered 403: Forbidden: role viewer may not do this; it needs responder\n' });

    const twice = await cordonIn(['quarantine', 'ip:10.60.0.1', '--ttl', '1h', '--reason', 'asked twice'], { env: as('responder') });
    expect(twice.code).toBe(1);
    expect(twice.err).toMatch(/answered 409: Conflict: ip:10\.60\.0\.1 is already quarantined by hand \(manual\.responder-1\.[0-9a-z]+\) until .*: extend it instead\n$/);

    const released = await cordonIn(['release', 'ip:10.60.0.1', '--reason', 'host reimaged'], { env: as('responder') });
    expect(released.out).toBe('released ip:10.60.0.1: released (restored)\n');
  }, 60_000);

  it('a cordon that is not there is named with the URL, exit 1', async () => {
    const port = await freePort();
    const down = await cordonIn(['release', 'ip:10.0.0.1', '--reason', 'test', '--url', `http://127.0.0.1:${port}`], { env: as('responder') });
    expect(down.code).toBe(1);
    expect(down.err).toBe(`cordon release: cannot reach http://127.0.0.1:${port} (ECONNREFUSED); is cordon running there? (--url, env CORDON_URL)\n`);
  });
});
