import { Script } from 'node:vm';
import Redis from 'ioredis';
import { Kafka } from 'kafkajs';
import { registerConsole } from '../../src/console/console';
import { incidentsOf, LedgerIndex } from '../../src/ledger/incident-index';
import { CONSOLE_JS } from '../../src/console/script';
import { FlowHistory } from '../../src/flows/history';
import { sha256Hex } from '../../src/http/auth';
import { registerConsoleApi } from '../../src/http/console-api';
import { createHttpServer } from '../../src/http/server';
import { IncidentStore } from '../../src/incidents/store';
import type { LedgerRecord } from '../../src/ledger/records';
import type { CordonEvent } from '../../src/events';
import { Metrics } from '../../src/metrics';
import { KAFKA_BROKERS, REDIS_URL, testLog, uniq } from '../support/stack';

const VIEWER = 'viewer-token-0123456789abcdef';
const tokens = [{ name: 'viewer-1', role: 'viewer' as const, sha256: sha256Hex(VIEWER) }];

describe('console routes and the console API (real Redis; containment off)', () => {
  const redis = new Redis(REDIS_URL);
  const prefix = uniq('console-api');
  const app = createHttpServer({ log: testLog, metrics: new Metrics(), checks: [] });
  const ledger = new LedgerIndex({ kafka: new Kafka({ brokers: KAFKA_BROKERS }), redis, topic: `${prefix}.ledger`, prefix, log: testLog });
  const flows = new FlowHistory(redis, prefix);
  registerConsoleApi(app, { containment: () => undefined, incidents: new IncidentStore(redis, prefix), tokens, flows, ledger, enforcers: ['labelstore', 'kubernetes'] });
  registerConsole(app);
  let base = '';
  type Answer = { statusCode: number; headers: Record<string, string>; body: string; json: () => any };
  const get = async (url: string, token?: string, headers: Record<string, string> = {}): Promise<Answer> => {
    const res = await fetch(`${base}${url}`, { headers: { ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) } });
    const body = await res.text();
    return { statusCode: res.status, headers: Object.fromEntries(res.headers), body, json: () => JSON.parse(body) };
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

  it('serves the page, script and stylesheet without a token, under a strict CSP, with ETags', async () => {
    const page = await get('/console');
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['content-security-policy']).toContain("connect-src 'self'");
    expect(page.body).toMatch(/<script src="\/console\/app\.js\?v=[0-9a-f]{8}"><\/script>/);
    const js = await get('/console/app.js');
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
    expect(js.body).toBe(CONSOLE_JS);
    const again = await get('/console/app.js', undefined, { 'if-none-match': String(js.headers.etag) });
    expect(again.statusCode).toBe(304);
    expect((await get('/console/app.css')).headers['content-type']).toMatch(/^text\/css/);
  });

  it('the script is valid JavaScript and never writes HTML from data', () => {
    expect(() => new Script(CONSOLE_JS)).not.toThrow();
    expect(CONSOLE_JS).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/);
  });

  it('the API needs a token; /api/me names its holder', async () => {
    expect((await get('/api/me')).statusCode).toBe(401);
    expect((await get('/api/incidents/x/ledger')).statusCode).toBe(401);
    expect((await get('/api/approvals/x/impact')).statusCode).toBe(401);
    expect((await get('/api/me', VIEWER)).json()).toEqual({ name: 'viewer-1', role: 'viewer', groups: [] });
  });

  it('validates the impact query and says so; answers 503 when containment is off', async () => {
    const bad = await get('/api/approvals/a1/impact?hours=48', VIEWER);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().detail).toContain('hours');
    expect((await get('/api/approvals/a1/impact?hours=abc', VIEWER)).statusCode).toBe(400);
    expect((await get('/api/approvals/a1/impact?hours=6', VIEWER)).statusCode).toBe(503);
    expect((await get('/api/incidents/inc-1/run', VIEWER)).statusCode).toBe(503);
  });

  it('previews the impact of quarantining any entity by hand (flows in and out, the ip: alias of a sensor that saw only the address); lists the enforcers', async () => {
    const flow = (src: string, dst: string, port: number, action: 'allowed' | 'denied') =>
      ({ id: uniq('f'), time: new Date().toISOString(), src: { ip: src }, dst: { ip: dst }, protocol: 'tcp', dstPort: port, action, observer: { type: 'test', name: 'test' } }) as unknown as CordonEvent;
    await flows.record([flow('10.61.0.1', '10.61.0.2', 445, 'allowed'), flow('10.61.0.1', '10.61.0.2', 445, 'allowed'), flow('10.61.0.3', '10.61.0.1', 22, 'denied')]);
    expect((await get('/api/entities/ip%3A10.61.0.1/impact')).statusCode).toBe(401);
    const res = await get('/api/entities/ip%3A10.61.0.1/impact?hours=2', VIEWER);
    expect(res.statusCode).toBe(200);
    const answer = res.json();
    expect(answer).toMatchObject({ entity: 'ip:10.61.0.1', hours: 2, targets: [{ key: 'ip:10.61.0.1', totals: { allowed: 2, denied: 1 } }] });
    expect(answer.targets[0].flows).toEqual(expect.arrayContaining([expect.objectContaining({ direction: 'out', peer: 'ip:10.61.0.2', port: 445, verdict: 'allowed', count: 2 })]));
    const bad = await get('/api/entities/pod%3Aweb-1/impact', VIEWER);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().detail).toBe('params.entity: a pod is pod:<namespace>/<name>');
    expect((await get('/api/enforcers', VIEWER)).json()).toEqual(['labelstore', 'kubernetes']);
  });

  it('reads an incident\'s ledger records from the index, oldest first', async () => {
    const rec = (seq: number, action: string) => JSON.stringify({ seq, action, incidentId: 'inc-1' });
    await redis.zadd(`${prefix}:ledger:by-incident:inc-1`, 2, rec(2, 'playbook_started'), 1, rec(1, 'incident_raised'));
    const res = await get('/api/incidents/inc-1/ledger', VIEWER);
    expect(res.json().map((r: { seq: number }) => r.seq)).toEqual([1, 2]);
    expect((await get('/api/incidents/inc-none/ledger', VIEWER)).json()).toEqual([]);
  });

  it('files a quarantine record under every holder of the lease, an expiry (which names no incident) included', () => {
    const lease = (holders: string[], state: string) => ({ target: 'host:a', labels: {}, priorLabels: {}, holders, expiresAt: 2_000_000_000_000, state, enforcer: 'labelstore', ref: { entity: 'host:a', kind: 'host' } });
    const base = { seq: 9, prevHash: '0'.repeat(64), hash: '1'.repeat(64), at: 1_700_000_000_000, actor: 'service:cordon', target: 'host:a', reason: 'lease expired' };
    expect(incidentsOf({ ...base, action: 'quarantine_expired', before: lease(['inc-1', 'inc-2'], 'applied'), after: lease([], 'expired') } as LedgerRecord).sort()).toEqual(['inc-1', 'inc-2']);
    expect(incidentsOf({ ...base, action: 'incident_raised', incidentId: 'inc-3', before: null, after: null } as LedgerRecord)).toEqual(['inc-3']);
    expect(incidentsOf({ ...base, action: 'drift_detected', before: null, after: null } as LedgerRecord)).toEqual([]);
  });
});
