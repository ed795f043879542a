import { registerApi } from '../../src/http/api';
import { sha256Hex } from '../../src/http/auth';
import { FORWARDED, needsContainment, registerForwarding } from '../../src/http/forward';
import { createHttpServer, type HttpServer } from '../../src/http/server';
import type { IncidentStore } from '../../src/incidents/store';
import { Metrics } from '../../src/metrics';
import { testLog } from '../support/stack';

/**
 * A standby's HTTP API (docs/high-availability.md, "What a standby does"): requests that need
 * containment go to the leader and its answer is relayed; a forwarded request is not forwarded
 * again; with no leader, or a leader that does not answer, the standby answers 503.
 */
const TOKEN = 'forward-approver-token-0123456789';
const tokens = [{ name: 'alice', role: 'approver' as const, sha256: sha256Hex(TOKEN), groups: ['soc-oncall'] }];
const incidents = { get: async () => undefined, list: async () => [] } as unknown as IncidentStore;

/** A replica with containment off (a standby), forwarding to whatever `leader()` names. */
function standby(leader: () => string | undefined): HttpServer {
  const app = createHttpServer({ log: testLog, metrics: new Metrics({ defaultMetrics: false }), checks: [] });
  registerForwarding(app, { leaderUrl: async () => leader(), self: () => 'http://standby.invalid:8080', timeoutMs: 2_000 });
  registerApi(app, { containment: () => undefined, incidents, tokens, linkSecret: undefined, publicUrl: 'https://cordon.example', linkTtlMs: 60_000 });
  return app;
}

async function listen(app: HttpServer): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
}

describe('a standby forwards what needs containment to the leader', () => {
  const seen: Array<{ url: string; authorization?: string; forwardedBy?: string; body: unknown }> = [];
  const leader = createHttpServer({ log: testLog, metrics: new Metrics({ defaultMetrics: false }), checks: [] });
  leader.post('/api/quarantines/:entity/release', async (req, reply) => {
    seen.push({ url: req.url, authorization: req.headers.authorization, forwardedBy: req.headers[FORWARDED] as string | undefined, body: req.body });
    return reply.code(200).send({ target: 'pod:prod/web-1', state: 'released' });
  });
  let leaderUrl: string | undefined;
  const replica = standby(() => leaderUrl);
  let base = '';
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}`, ...headers }, body: JSON.stringify(body) });

  beforeAll(async () => {
    base = await listen(replica);
  });
  afterAll(async () => {
    await replica.close();
    await leader.close();
  });

  it('with no leader known it handles the request itself: 503, containment is not running here', async () => {
    leaderUrl = undefined;
    const r = await post('/api/quarantines/pod%3Aprod%2Fweb-1/release', { reason: 'owner confirmed' });
    expect(r.status).toBe(503);
    expect(await r.json()).toMatchObject({ status: 503, detail: 'containment is not running' });
  });

  it("relays the leader's answer, with the caller's token and the standby named", async () => {
    leaderUrl = await listen(leader);
    const r = await post('/api/quarantines/pod%3Aprod%2Fweb-1/release', { reason: 'owner confirmed' });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-cordon-served-by')).toBe(leaderUrl);
    expect(await r.json()).toEqual({ target: 'pod:prod/web-1', state: 'released' });
    expect(seen.at(-1)).toEqual({ url: '/api/quarantines/pod%3Aprod%2Fweb-1/release', authorization: `Bearer ${TOKEN}`, forwardedBy: 'http://standby.invalid:8080', body: { reason: 'owner confirmed' } });
  });

  it('does not forward a request that was forwarded already', async () => {
    const before = seen.length;
    const r = await post('/api/quarantines/pod%3Aprod%2Fweb-1/release', { reason: 'owner confirmed' }, { [FORWARDED]: 'http://other.invalid:8080' });
    expect(r.status).toBe(503);
    expect(seen.length).toBe(before);
  });

  it('answers 503 naming the leader when the leader does not answer', async () => {
    const gone = leaderUrl!;
    await leader.close();
    const r = await post('/api/quarantines/pod%3Aprod%2Fweb-1/release', { reason: 'owner confirmed' });
    expect(r.status).toBe(503);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(((await r.json()) as { detail: string }).detail).toMatch(new RegExp(`^this replica is a standby; the leader at ${gone.replace(/[.]/g, '\\.')} did not answer: `));
  });

  it('leaves reads that need no containment on the standby', async () => {
    const r = await fetch(`${base}/api/incidents`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual([]);
  });
});

describe('what a standby forwards', () => {
  it('a manual quarantine goes to the leader; the event stream and its ticket are served by each replica', () => {
    expect(needsContainment('POST', '/api/quarantines')).toBe(true);
    expect(needsContainment('POST', '/api/quarantines/ip%3A10.0.0.1/release')).toBe(true);
    expect(needsContainment('GET', '/api/events/stream?ticket=abc')).toBe(false);
    expect(needsContainment('POST', '/api/events/ticket')).toBe(false);
    expect(needsContainment('GET', '/api/entities/ip%3A10.0.0.1/impact')).toBe(false);
  });
});
