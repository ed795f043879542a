import Redis from 'ioredis';
import { sha256Hex } from '../../src/http/auth';
import { registerEventStream } from '../../src/http/event-stream';
import { createHttpServer } from '../../src/http/server';
import { Metrics } from '../../src/metrics';
import { REDIS_URL, testLog, uniq } from '../support/stack';

/** An idle stream writes a comment line on a period, so proxies do not close it (docs/api.md). */
describe('event stream keep-alive (real Redis)', () => {
  const redis = new Redis(REDIS_URL);
  const app = createHttpServer({ log: testLog, metrics: new Metrics({ defaultMetrics: false }), checks: [] });
  const token = 'keepalive-viewer-token-0123456789';
  registerEventStream(app, { redis, prefix: uniq('sse-ka'), tokens: [{ name: 'v', role: 'viewer', sha256: sha256Hex(token) }], log: testLog, maxStreamMs: 1_000, keepAliveMs: 200 });
  afterAll(async () => {
    await app.close();
    redis.disconnect();
  });

  it('an idle stream carries a comment line each keepAliveMs, which EventSource ignores, until it ends', async () => {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    const text = await (await fetch(`${base}/api/events/stream`, { headers: { authorization: `Bearer ${token}` } })).text();
    const comments = text.split('\n\n').filter((block) => block === ': keep-alive');
    expect(comments.length).toBeGreaterThanOrEqual(3);
    expect(comments.length).toBeLessThanOrEqual(5);
    expect(text).toMatch(/^retry: 5000\n\nevent: ready\n/);
    expect(text).toMatch(/event: reauth\ndata: .*\n\n$/);
  });
});
