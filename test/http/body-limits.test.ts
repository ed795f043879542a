import { createHttpServer } from '../../src/http/server';
import { Metrics } from '../../src/metrics';
import { testLog } from '../support/stack';

describe('HTTP request bodies at the edge', () => {
  const app = createHttpServer({ log: testLog, metrics: new Metrics(), checks: [], limits: { bodyLimit: 64 * 1024, maxJsonDepth: 16 } });
  let base: string;
  let seen: unknown[];

  beforeAll(async () => {
    app.post('/echo', async (req) => {
      seen.push(req.body);
      return { ok: true };
    });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  beforeEach(() => (seen = []));
  afterAll(() => app.close());

  const post = async (body: string, type = 'application/json') => {
    const res = await fetch(`${base}/echo`, { method: 'POST', headers: { 'content-type': type }, body });
    return { status: res.status, body: (await res.json()) as { detail?: string } };
  };

  it('refuses a body nested deeper than the limit with 400 and the reason, before any route sees it', async () => {
    const deep = '['.repeat(20_000) + ']'.repeat(20_000);
    const r = await post(deep);
    expect(r.status).toBe(400);
    expect(r.body.detail).toBe('body: too deep: nesting goes beyond 16 levels at offset 16');
    expect(seen).toEqual([]);
  });

  it('refuses a body over the size limit with 413', async () => {
    const r = await post(JSON.stringify({ pad: 'x'.repeat(70 * 1024) }));
    expect(r.status).toBe(413);
    expect(seen).toEqual([]);
  });

  it('refuses malformed JSON and prototype-pollution keys with 400', async () => {
    expect((await post('{"a": ')).body.detail).toMatch(/^body: malformed JSON/);
    const polluted = await post('{"__proto__": {"admin": true}}', 'application/json; charset=utf-8');
    expect(polluted).toEqual({ status: 400, body: expect.objectContaining({ type: 'about:blank', status: 400, detail: 'body: forbidden key "__proto__" (prototype pollution)' }) });
    expect(seen).toEqual([]);
  });

  it('by default, takes 64 levels and refuses 65', async () => {
    const plain = createHttpServer({ log: testLog, metrics: new Metrics(), checks: [] });
    plain.post('/echo', async () => ({ ok: true }));
    const url = `${await plain.listen({ host: '127.0.0.1', port: 0 })}/echo`;
    const nest = (n: number) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '['.repeat(n) + ']'.repeat(n) });
    expect((await nest(64)).status).toBe(200);
    const refused = await nest(65);
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ title: 'Bad Request', detail: 'body: too deep: nesting goes beyond 64 levels at offset 64' });
    await plain.close();
  });

  it('passes a body within the limits to the route as parsed JSON', async () => {
    const body = { a: [[[{ b: 'x' }]]], n: 1 };
    expect(await post(JSON.stringify(body))).toEqual({ status: 200, body: { ok: true } });
    expect(seen).toEqual([body]);
  });
});
