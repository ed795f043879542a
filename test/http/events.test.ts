import type { Config } from '../../src/config';
import { sha256Hex } from '../../src/http/auth';
import Redis from 'ioredis';
import { registerEventStream } from '../../src/http/event-stream';
import { createHttpServer } from '../../src/http/server';
import { Metrics } from '../../src/metrics';
import { Service } from '../../src/service';
import { autoPlaybook, playbookDir } from '../contain/support';
import { createTopics, deleteTopics, testKafka } from '../support/kafka';
import { eventually, REDIS_URL, testConfig, testLog, uniq } from '../support/stack';

/**
 * GET /api/events/stream against a real service (Kafka, Redis, the label-store enforcer): a plain
 * HTTP client reads the stream and is told when an incident or containment changes.
 */
const TOKENS = { viewer: 'viewer-token-0123456789abcdef', responder: 'responder-token-0123456789abcdef' };
const PLAYBOOK = autoPlaybook('events', `  - id: quarantine-root
    type: quarantine
    target: root
    enforcer: labelstore
    ttl: 1h
`);

interface SseEvent {
  event: string;
  data: unknown;
}

/** An open stream: events parsed as they arrive (`event:` and `data:` lines; comments skipped). */
class StreamReader {
  readonly events: SseEvent[] = [];
  private buffer = '';
  private readonly waiters: Array<() => void> = [];
  constructor(
    readonly res: Response,
    private readonly abort: AbortController,
  ) {
    void this.pump();
  }
  private async pump(): Promise<void> {
    const reader = this.res.body!.getReader();
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        this.buffer += decoder.decode(value, { stream: true });
        for (let end = this.buffer.indexOf('\n\n'); end >= 0; end = this.buffer.indexOf('\n\n')) {
          const block = this.buffer.slice(0, end);
          this.buffer = this.buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) this.events.push({ event, data: JSON.parse(data) });
        }
        this.waiters.splice(0).forEach((w) => w());
      }
    } catch {
      // aborted
    }
  }
  async next(event: string, timeoutMs = 10_000): Promise<SseEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.events.findIndex((e) => e.event === event);
      if (i >= 0) return this.events.splice(i, 1)[0]!;
      if (Date.now() > deadline) throw new Error(`no ${event} event within ${timeoutMs} ms; got ${JSON.stringify(this.events)}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }
  close(): void {
    this.abort.abort();
  }
}

describe('server-sent events (real Kafka, Redis)', () => {
  const kafka = testKafka();
  let config: Config;
  let service: Service;
  let base = '';
  const streams: StreamReader[] = [];
  const open = async (query: string, headers: Record<string, string> = {}) => {
    const abort = new AbortController();
    const res = await fetch(`${base}/api/events/stream${query}`, { headers, signal: abort.signal });
    if (res.status !== 200) return { status: res.status, json: (await res.json()) as { detail: string } };
    const reader = new StreamReader(res, abort);
    streams.push(reader);
    return { status: 200, reader };
  };
  const ticket = async (token: string | undefined) => {
    const res = await fetch(`${base}/api/events/ticket`, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: '{}' });
    return { status: res.status, json: (await res.json()) as { ticket: string; expiresAt: number; detail?: string } };
  };

  beforeAll(async () => {
    config = testConfig('events', {
      contain: { playbooks: playbookDir('events', PLAYBOOK), reconcileIntervalMs: 500, enforcers: { labelstore: true } },
      auth: { tokens: Object.entries(TOKENS).map(([role, token]) => ({ name: `${role}-1`, role, sha256: sha256Hex(token) })) },
    });
    await createTopics(kafka, config);
    service = new Service(config, testLog);
    await service.start();
    base = `http://127.0.0.1:${(service.http.server.address() as { port: number }).port}`;
  }, 60_000);
  afterAll(async () => {
    for (const s of streams) s.close();
    await service?.stop();
    await deleteTopics(kafka, config);
  });

  it('a viewer\'s ticket opens the stream once; it says ready, then pushes a manual quarantine (containment) and a new incident version', async () => {
    const t = await ticket(TOKENS.viewer);
    expect(t.status).toBe(200);
    expect(t.json.ticket).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(t.json.expiresAt - Date.now()).toBeLessThanOrEqual(30_000);
    const opened = await open(`?ticket=${t.json.ticket}`);
    expect(opened.status).toBe(200);
    const reader = opened.reader!;
    expect(reader.res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect((await reader.next('ready')).data).toEqual({ name: 'viewer-1', role: 'viewer' });

    const reused = await open(`?ticket=${t.json.ticket}`);
    expect(reused).toMatchObject({ status: 401, json: { detail: 'the ticket is unknown, used or expired: ask POST /api/events/ticket for another' } });

    // Give the feed its first read of the ledger offset before the ledger grows.
    await new Promise((r) => setTimeout(r, 1_500));
    const q = await fetch(`${base}/api/quarantines`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.responder}` }, body: JSON.stringify({ entity: 'ip:10.70.0.1', ttl: '1h', reason: 'pushed to the console' }) });
    expect(q.status).toBe(201);
    const containment = await reader.next('containment', 15_000);
    expect(containment.data).toEqual({ seq: expect.any(Number) });

    const incident = { id: 'inc-events-1', version: 2, lastSeen: Date.now() };
    await service.correlator.incidents.putAll([{ kind: 'incident', ...incident, json: JSON.stringify({ id: incident.id, version: 2 }) }]);
    expect((await reader.next('incident')).data).toEqual({ ids: ['inc-events-1'], count: 1 });
  }, 40_000);

  it('a bearer token opens it too (clients that can set headers); nothing else does', async () => {
    const withToken = await open('', { authorization: `Bearer ${TOKENS.responder}` });
    expect(withToken.status).toBe(200);
    expect((await withToken.reader!.next('ready')).data).toEqual({ name: 'responder-1', role: 'responder' });

    expect(await open('')).toMatchObject({ status: 401, json: { detail: 'a bearer token or a ticket (POST /api/events/ticket) is required' } });
    expect(await open('', { authorization: 'Bearer not-a-configured-token-000' })).toMatchObject({ status: 401, json: { detail: 'a valid bearer token is required' } });
    expect(await open(`?ticket=${'A'.repeat(43)}`)).toMatchObject({ status: 401 });
    expect(await open('?ticket=short')).toMatchObject({ status: 401 });
    expect(await ticket(undefined)).toMatchObject({ status: 401 });
    const bare = await fetch(`${base}/api/events/ticket`, { method: 'POST', headers: { authorization: `Bearer ${TOKENS.viewer}` } });
    expect(bare.status).toBe(200);
    const extra = await fetch(`${base}/api/events/ticket`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.viewer}` }, body: '{"role":"approver"}' });
    expect(extra.status).toBe(400);
  });

  it('every stream ends when the service stops, so it stops promptly', async () => {
    const t = await ticket(TOKENS.viewer);
    const opened = await open(`?ticket=${t.json.ticket}`);
    await opened.reader!.next('ready');
    const started = Date.now();
    await service.http.close();
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});

describe('stream bounds (real Redis)', () => {
  const redis = new Redis(REDIS_URL);
  const app = createHttpServer({ log: testLog, metrics: new Metrics({ defaultMetrics: false }), checks: [] });
  const token = 'bounds-viewer-token-0123456789';
  const feed = registerEventStream(app, { redis, prefix: uniq('sse'), tokens: [{ name: 'v', role: 'viewer', sha256: sha256Hex(token) }], log: testLog, maxStreamMs: 800, maxStreams: 1 });
  afterAll(async () => {
    await app.close();
    redis.disconnect();
  });

  it('serves at most maxStreams at once (503 past it); a stream asks the client to come back (reauth) after maxStreamMs, and ends', async () => {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    const headers = { authorization: `Bearer ${token}` };
    const first = await fetch(`${base}/api/events/stream`, { headers });
    expect(first.status).toBe(200);
    const second = await fetch(`${base}/api/events/stream`, { headers });
    expect(second.status).toBe(503);
    expect(((await second.json()) as { detail: string }).detail).toBe('this replica serves 1 streams already; poll the API instead');
    const started = Date.now();
    const text = await first.text();
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(text).toMatch(/^retry: 5000\n\nevent: ready\ndata: \{"name":"v","role":"viewer"\}\n\n/);
    expect(text).toMatch(/event: reauth\ndata: .*\n\n$/);

    // A client that goes away frees its place: the feed has no listener left.
    const abort = new AbortController();
    const gone = await fetch(`${base}/api/events/stream`, { headers, signal: abort.signal });
    expect(gone.status).toBe(200);
    expect(feed.size).toBe(1);
    abort.abort();
    await eventually(async () => (feed.size === 0 ? true : undefined), 3_000, 'the stream let go');
  });
});
