import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { RouteOptions } from 'fastify';
import { loadConfig } from '../../src/config';
import { openApiDocument, renderOpenApi } from '../../src/http/openapi';
import { registerApi } from '../../src/http/api';
import { sha256Hex } from '../../src/http/auth';
import { createHttpServer } from '../../src/http/server';
import type { IncidentStore } from '../../src/incidents/store';
import { Metrics } from '../../src/metrics';
import { Service } from '../../src/service';
import { testLog } from '../support/stack';

type Document = { openapi: string; paths: Record<string, Record<string, { parameters?: Array<{ in: string; name: string }>; requestBody?: unknown; responses: Record<string, unknown> }>> };

const COMMITTED = path.resolve(__dirname, '../../docs/openapi.json');
const openApiPath = (url: string) => url.replace(/:([A-Za-z]+)/g, '{$1}');

describe('the OpenAPI document', () => {
  let document: Document;
  beforeAll(async () => {
    document = (await openApiDocument()) as Document;
  });

  it('is the one committed under docs/ (regenerate with `npm run openapi`)', () => {
    expect(readFileSync(COMMITTED, 'utf8')).toBe(renderOpenApi(document));
  });

  it('describes every route the service serves, with the path parameters and request bodies its zod schemas declare', async () => {
    const service = new Service(loadConfig({ env: {} }), testLog);
    const seen: RouteOptions[] = [];
    service.http.addHook('onRoute', (r) => void seen.push(r));
    await service.http.ready();
    await service.http.close();
    service.redis.disconnect();
    const served = seen.filter((r) => !(r.schema as { hide?: boolean } | undefined)?.hide && r.method !== 'HEAD');
    expect(served.length).toBeGreaterThan(20);
    for (const r of served) {
      const entry = document.paths[openApiPath(r.url)]?.[String(r.method).toLowerCase()];
      expect({ route: `${String(r.method)} ${r.url}`, documented: entry !== undefined }).toEqual({ route: `${String(r.method)} ${r.url}`, documented: true });
      const params = [...r.url.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1]);
      expect((entry!.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name).sort()).toEqual(params.sort());
      if (r.method === 'POST' && !r.url.startsWith('/a/') && !r.url.endsWith('/links')) expect(entry!.requestBody).toBeDefined();
    }
  });

  it('names the problem document as the error response of the API routes', () => {
    const approve = document.paths['/api/approvals/{id}/approve']!.post!;
    for (const status of ['400', '401', '403', '404', '409', '503']) expect(JSON.stringify(approve.responses[status])).toContain('#/components/schemas/Problem');
  });
});

describe('errors as RFC 9457 problems', () => {
  const TOKEN = 'openapi-approver-token-0123456789';
  const app = createHttpServer({ log: testLog, metrics: new Metrics({ defaultMetrics: false }), checks: [] });
  registerApi(app, {
    containment: () => undefined,
    incidents: {
      get: async (id: string) => {
        if (id === 'boom') throw new Error('redis: secret internals at 10.0.0.7');
        return undefined;
      },
      list: async () => [],
    } as unknown as IncidentStore,
    tokens: [{ name: 'alice', role: 'approver', sha256: sha256Hex(TOKEN), groups: ['soc-oncall'] }],
    linkSecret: undefined,
    publicUrl: 'https://cordon.example',
    linkTtlMs: 60_000,
  });
  let base = '';
  type Answer = { statusCode: number; headers: Record<string, string>; json: () => any };
  const call = async (method: string, url: string, body?: unknown, token?: string): Promise<Answer> => {
    const headers = { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token ? { authorization: `Bearer ${token}` } : {}) };
    const res = await fetch(`${base}${url}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const text = await res.text();
    return { statusCode: res.status, headers: Object.fromEntries(res.headers), json: () => JSON.parse(text) };
  };
  const post = (url: string, body: unknown, token?: string) => call('POST', url, body, token);
  const get = (url: string, token?: string) => call('GET', url, undefined, token);
  beforeAll(async () => {
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  });
  afterAll(() => app.close());

  it('a body that fails its schema: 400, application/problem+json, the field named', async () => {
    const r = await post('/api/approvals/a-1/approve', { reason: 'x', ttl: '999999999d' }, TOKEN);
    expect(r.statusCode).toBe(400);
    expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(r.json()).toEqual({ type: 'about:blank', title: 'Bad Request', status: 400, detail: expect.stringMatching(/^body\.reason: say why \(at least 3 characters\); body\.ttl: /) });
  });

  it('authentication comes before validation: no token and a bad body is 401, not 400', async () => {
    const r = await post('/api/approvals/a-1/approve', { nonsense: true });
    expect(r.statusCode).toBe(401);
    expect(r.headers['www-authenticate']).toBe('Bearer');
    expect(r.json()).toEqual({ type: 'about:blank', title: 'Unauthorized', status: 401, detail: 'a valid bearer token is required' });
  });

  it('a path parameter over its bound, an unknown route, and a handler answer all share the shape', async () => {
    const long = await get(`/api/incidents/${'x'.repeat(1100)}`, TOKEN);
    expect(long.json()).toMatchObject({ status: 400, detail: expect.stringMatching(/^params\.id: /) });
    const unknown = await get('/api/nothing?x=1');
    expect(unknown.json()).toEqual({ type: 'about:blank', title: 'Not Found', status: 404, detail: 'no route GET /api/nothing' });
    const missing = await get('/api/incidents/inc-404', TOKEN);
    expect(missing.json()).toEqual({ type: 'about:blank', title: 'Not Found', status: 404, detail: 'no incident inc-404' });
    const off = await post('/api/approvals/a-1/deny', { reason: 'not an attack' }, TOKEN);
    expect(off.json()).toEqual({ type: 'about:blank', title: 'Service Unavailable', status: 503, detail: 'containment is not running' });
  });

  it('an unexpected failure is a 500 whose detail hides the internals', async () => {
    const r = await get('/api/incidents/boom', TOKEN);
    expect(r.statusCode).toBe(500);
    expect(r.json()).toEqual({ type: 'about:blank', title: 'Internal Server Error', status: 500, detail: 'the request failed; the service log has the error' });
  });

  it('serves its own document at /openapi.json', async () => {
    const r = await get('/openapi.json');
    expect(r.json()).toMatchObject({ openapi: '3.1.0', info: { title: 'Cordon' }, paths: { '/api/approvals/{id}/approve': { post: expect.any(Object) } } });
  });
});
