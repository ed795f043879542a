import Redis from 'ioredis';
import { verifyLink } from '../../src/approvals/links';
import { ApprovalStore, type Approval } from '../../src/approvals/store';
import type { Containment } from '../../src/contain/containment';
import { configBounds, extensionRefusal } from '../../src/contain/extension';
import { registerApi } from '../../src/http/api';
import { sha256Hex } from '../../src/http/auth';
import { createHttpServer } from '../../src/http/server';
import { IncidentStore } from '../../src/incidents/store';
import { Metrics } from '../../src/metrics';
import { REDIS_URL, testLog, uniq } from '../support/stack';

const SECRET = 'api-link-secret-0123456789abcdef0123456';
const TOKENS = { oncall: 'oncall-token-0123456789abcdef', network: 'network-token-0123456789abcdef', nogroup: 'nogroup-token-0123456789abcdef', responder: 'responder-token-0123456789abcdef' };
const tokens = [
  { name: 'alice', role: 'approver' as const, sha256: sha256Hex(TOKENS.oncall), groups: ['soc-oncall'] },
  { name: 'nina', role: 'approver' as const, sha256: sha256Hex(TOKENS.network), groups: ['network'] },
  { name: 'ned', role: 'approver' as const, sha256: sha256Hex(TOKENS.nogroup) },
  { name: 'rita', role: 'responder' as const, sha256: sha256Hex(TOKENS.responder) },
];

describe('on-call API authorization (real Redis approvals)', () => {
  const redis = new Redis(REDIS_URL);
  const prefix = uniq('api');
  const approvals = new ApprovalStore(redis, prefix);
  const extended: Array<{ entity: string; until: number }> = [];
  // Containment.decide as far as authorization goes: a person's decision through the store's decide script.
  const containment = {
    approvals,
    decide: (id: string, decision: 'approve' | 'deny', by: string, groups: readonly string[], reason: string) =>
      approvals.decide(id, { state: decision === 'approve' ? 'approved' : 'denied', by, reason, at: Date.now(), person: { groups } }),
    // Containment.extend as far as the config's bounds go (no playbook, first applied now).
    extend: async (entity: string, ask: { ttlMs: number; ttlText: string }) => {
      const refused = extensionRefusal({ ...ask, now: Date.now(), since: Date.now() }, configBounds({ maxExtensionMs: 86_400_000, maxLifetimeMs: 30 * 86_400_000 }));
      if (refused) return { refused };
      const until = Date.now() + ask.ttlMs;
      extended.push({ entity, until });
      return { lease: { target: entity, expiresAt: until } };
    },
  } as unknown as Containment;
  const app = createHttpServer({ log: testLog, metrics: new Metrics(), checks: [] });
  registerApi(app, { containment: () => containment, incidents: new IncidentStore(redis, prefix), tokens, linkSecret: SECRET, publicUrl: 'https://cordon.example', linkTtlMs: 3_600_000 });
  let base = '';
  const post = async (url: string, token: string | undefined, body: unknown = {}) => {
    const res = await fetch(`${base}${url}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, json: () => JSON.parse(text) };
  };
  const open = async (id: string, over: Partial<Approval> = {}) => {
    const now = Date.now();
    await approvals.create({ id, incidentId: 'inc-1', playbookId: 'pb@1', stepIndex: 0, question: 'Quarantine?', subject: 'step', targets: [], labels: {}, approvers: ['soc-oncall'], deadline: now + 600_000, onTimeout: 'release', state: 'pending', createdAt: now, ...over });
  };

  beforeAll(async () => {
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
    await app.close();
  });

  it('an approver outside the approval\'s groups gets 403 naming the groups; the approval stays pending', async () => {
    await open('a-groups');
    for (const token of [TOKENS.network, TOKENS.nogroup]) {
      const refused = await post('/api/approvals/a-groups/approve', token, { reason: 'looks bad' });
      expect(refused.status).toBe(403);
      expect(refused.json().detail).toMatch(/is in none of the groups approval a-groups asks \(soc-oncall\)/);
      expect((await post('/api/approvals/a-groups/deny', token, { reason: 'looks fine' })).status).toBe(403);
    }
    expect((await approvals.get('a-groups'))!.state).toBe('pending');
    const ok = await post('/api/approvals/a-groups/approve', TOKENS.oncall, { reason: 'looks bad' });
    expect(ok.status).toBe(200);
    expect(ok.json()).toMatchObject({ state: 'approved', decidedBy: 'user:alice' });
  });

  it('a decision after the deadline is refused with 409 and the approval stays pending for its on_timeout', async () => {
    await open('a-late', { deadline: Date.now() - 1_000 });
    const late = await post('/api/approvals/a-late/approve', TOKENS.oncall, { reason: 'looks bad' });
    expect(late.status).toBe(409);
    expect(late.json().detail).toMatch(/passed its deadline .*its on_timeout \(release\) decides/);
    expect((await approvals.get('a-late'))!.state).toBe('pending');
  });

  it('links are minted only for an existing pending approval and a member of its groups; a link carries the groups and decides', async () => {
    await open('a-links');
    const missing = await post('/api/approvals/nope/links', TOKENS.oncall);
    expect(missing.status).toBe(404);
    expect(missing.json().detail).toBe('no approval nope');
    const outsider = await post('/api/approvals/a-links/links', TOKENS.network);
    expect(outsider.status).toBe(403);
    expect(outsider.json().detail).toMatch(/nina is in none of the groups approval a-links asks/);
    const minted = await post('/api/approvals/a-links/links', TOKENS.oncall);
    expect(minted.status).toBe(200);
    const { approve, expiresAt } = minted.json() as { approve: string; expiresAt: number };
    const token = approve.slice('https://cordon.example/a/'.length);
    expect(verifyLink(token, SECRET, Math.floor(Date.now() / 1000))).toMatchObject({ ok: true, claims: { approvalId: 'a-links', approver: 'alice', groups: ['soc-oncall'] } });
    expect(expiresAt).toBeLessThanOrEqual((await approvals.get('a-links'))!.deadline);
    expect((await post(`/a/${token}`, undefined)).status).toBe(200);
    expect((await approvals.get('a-links'))!.state).toBe('approved');
    const decided = await post('/api/approvals/a-links/links', TOKENS.oncall);
    expect(decided.status).toBe(409);
    expect(decided.json().detail).toBe('approval a-links is already approved');
  });

  it('an extension longer than contain.maxExtensionMs or the 7d hard limit is refused with 400 naming the limit', async () => {
    const tooLong = await post('/api/quarantines/ip%3A10.0.0.1/extend', TOKENS.responder, { ttl: '2d', reason: 'still investigating' });
    expect(tooLong.status).toBe(400);
    expect(tooLong.json().detail).toBe('body.ttl: 2d is longer than the longest extension, 1d (contain.maxExtensionMs)');
    const absurd = await post('/api/quarantines/ip%3A10.0.0.1/extend', TOKENS.responder, { ttl: '999999d', reason: 'forever' });
    expect(absurd.status).toBe(400);
    expect(absurd.json().detail).toBe('body.ttl: 999999d is above the hard limit of a quarantine, 7d');
    expect((await post('/api/quarantines/ip%3A10.0.0.1/extend', TOKENS.responder, { ttl: '9999999d', reason: 'forever' })).status).toBe(400);
    expect(extended).toEqual([]);
    const before = Date.now();
    expect((await post('/api/quarantines/ip%3A10.0.0.1/extend', TOKENS.responder, { ttl: '24h', reason: 'still investigating' })).status).toBe(200);
    expect(extended).toHaveLength(1);
    expect(extended[0]!.until - before).toBeGreaterThanOrEqual(86_400_000);
  });
});
