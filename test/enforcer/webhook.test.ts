import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EnforcerError, type Target } from '../../src/enforcer/enforcer';
import {
  RevertDriftError,
  signWebhook,
  verifyWebhookSignature,
  webhookContractJsonSchema,
  WebhookEnforcer,
  WebhookEnforcerConfig,
  WebhookRequestBody,
  type RevertResult,
  type WebhookEnforcerConfigInput,
  type WebhookEnforcerOptions,
} from '../../src/enforcer/webhook';

const SECRET = 'a-webhook-secret-of-at-least-32-characters';
const Q = 'cordon.io/quarantine';

/**
 * A small receiver as an operator would write one: verifies the signature and the replay window on the
 * raw body, then keeps labels per target with the documented semantics (idempotent per lease, revert
 * only what still holds Cordon's value).
 */
class Receiver {
  readonly labels = new Map<string, Record<string, string>>();
  readonly seen: Array<{ status: number; body?: WebhookRequestBody; timestamp?: string }> = [];
  readonly failures: Array<{ status: number; retryAfterSec?: number; body?: string; delayMs?: number }> = [];
  private readonly leases = new Map<string, { entity: string; prior: Record<string, string | null>; applied: Record<string, string> }>();
  private readonly holder = new Map<string, string>();
  private server: Server | undefined;
  url = '';

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/cordon`;
    return this.url;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const timestamp = req.headers['x-cordon-timestamp'] as string | undefined;
    const reply = (status: number, body?: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
      res.end(body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body));
    };
    const verdict = verifyWebhookSignature({
      secrets: [SECRET],
      timestamp,
      signature: req.headers['x-cordon-signature'] as string | undefined,
      rawBody: raw,
    });
    if (!verdict.ok) {
      this.seen.push({ status: 401 });
      return reply(401, { error: verdict.reason });
    }
    const parsed = WebhookRequestBody.safeParse(JSON.parse(raw));
    if (!parsed.success) {
      this.seen.push({ status: 400 });
      return reply(400, { error: 'body does not follow the contract' });
    }
    const body = parsed.data;
    const failure = this.failures.shift();
    if (failure) {
      if (failure.delayMs) await new Promise((r) => setTimeout(r, failure.delayMs));
      this.seen.push({ status: failure.status, body, ...(timestamp ? { timestamp } : {}) });
      if (res.destroyed) return;
      return reply(failure.status, failure.body ?? { error: `failure ${failure.status}` }, failure.retryAfterSec ? { 'Retry-After': String(failure.retryAfterSec) } : {});
    }
    this.seen.push({ status: 200, body, ...(timestamp ? { timestamp } : {}) });
    const entity = body.target.entity;
    const labels = this.labels.get(entity) ?? {};
    switch (body.action) {
      case 'apply': {
        const leaseId = body.leaseId as string;
        let lease = this.leases.get(leaseId);
        if (!lease) {
          const previous = this.holder.get(entity);
          const carried = previous ? this.leases.get(previous)?.prior : undefined;
          const prior: Record<string, string | null> = {};
          for (const key of Object.keys(body.labels)) prior[key] = carried && key in carried ? (carried[key] ?? null) : (labels[key] ?? null);
          lease = { entity, prior, applied: body.labels as Record<string, string> };
          this.leases.set(leaseId, lease);
        }
        this.holder.set(entity, leaseId);
        this.labels.set(entity, { ...labels, ...(body.labels as Record<string, string>) });
        return reply(200, { priorLabels: lease.prior, extra: { device: 'fw-1' } });
      }
      case 'revert': {
        const current = this.holder.get(entity);
        if (current && current !== body.leaseId) return reply(200, { supersededBy: current });
        const applied = (body.snapshot?.extra?.applied ?? {}) as Record<string, string>;
        const result: RevertResult = { restored: [], unchanged: [], drifted: [] };
        const next = { ...labels };
        for (const [key, prior] of Object.entries(body.labels)) {
          const actual = labels[key] ?? null;
          if (actual === prior) result.unchanged.push(key);
          else if (actual === (applied[key] ?? null)) {
            if (prior === null) delete next[key];
            else next[key] = prior;
            result.restored.push(key);
          } else result.drifted.push({ key, expected: applied[key] ?? null, actual, prior });
        }
        this.labels.set(entity, next);
        this.holder.delete(entity);
        return reply(200, result);
      }
      case 'observe':
        return reply(200, { labels, contained: labels[Q] === 'true' });
      case 'extend':
        return reply(204);
    }
  }
}

describe('WebhookEnforcer', () => {
  const receiver = new Receiver();
  let url: string;
  let sleeps: number[];
  let seq = 0;

  beforeAll(async () => {
    url = await receiver.start();
  });
  afterAll(() => receiver.stop());
  beforeEach(() => {
    sleeps = [];
    receiver.seen.length = 0;
    receiver.failures.length = 0;
  });

  const enforcer = (config: Partial<WebhookEnforcerConfigInput> = {}, options: WebhookEnforcerOptions = {}) =>
    new WebhookEnforcer(
      { url, secret: SECRET, retry: { retries: 3, initialMs: 10, maxMs: 100 }, ...config },
      { sleep: async (ms) => void sleeps.push(ms), random: () => 0.5, ...options },
    );
  const newTarget = (labels: Record<string, string> = {}): Target => {
    const entity = `host:fw-target-${++seq}`;
    receiver.labels.set(entity, labels);
    return { entity, kind: 'host', name: `target-${seq}` };
  };

  it('apply POSTs the signed contract body and returns the exact prior labels from the receiver', async () => {
    const target = newTarget({ zone: 'dmz' });
    const snapshot = await enforcer().apply({ target, labels: { [Q]: 'true', zone: 'isolated' }, expiresAt: 1_900_000_000_000, leaseId: 'w-1' });
    expect(snapshot.labels).toEqual({ [Q]: null, zone: 'dmz' });
    expect(snapshot.extra).toEqual({ applied: { [Q]: 'true', zone: 'isolated' }, receiver: { device: 'fw-1' } });
    // First the target as the receiver's layer has it now, for the protection check; then the apply.
    expect(receiver.seen.map((s) => s.body?.action)).toEqual(['observe', 'apply']);
    expect(receiver.seen[1]?.body).toEqual({
      action: 'apply',
      leaseId: 'w-1',
      target,
      labels: { [Q]: 'true', zone: 'isolated' },
      expiresAt: 1_900_000_000_000,
    });
    expect(receiver.labels.get(target.entity)).toEqual({ [Q]: 'true', zone: 'isolated' });
  });

  it("a step's cut_connections reaches the receiver as cutConnections in the apply body, true or false", async () => {
    for (const cutConnections of [true, false]) {
      receiver.seen.length = 0;
      await enforcer({ capabilities: { connectionCut: true } }).apply({ target: newTarget(), labels: { [Q]: 'true' }, expiresAt: 1_900_000_000_000, leaseId: `w-cut-${cutConnections}`, cutConnections });
      expect(receiver.seen.find((s) => s.body?.action === 'apply')?.body).toMatchObject({ action: 'apply', cutConnections });
    }
  });

  it('revert restores exactly, and a second revert is a no-op', async () => {
    const target = newTarget({ zone: 'dmz', app: 'db' });
    const e = enforcer();
    const snapshot = await e.apply({ target, labels: { [Q]: 'true', zone: 'isolated' }, expiresAt: 0, leaseId: 'w-2' });
    await e.revert(snapshot, 'w-2');
    expect(receiver.labels.get(target.entity)).toEqual({ zone: 'dmz', app: 'db' });
    expect(receiver.seen[2]?.body).toMatchObject({ action: 'revert', leaseId: 'w-2', labels: { [Q]: null, zone: 'dmz' }, snapshot });
    await e.revert(snapshot, 'w-2');
    expect(receiver.labels.get(target.entity)).toEqual({ zone: 'dmz', app: 'db' });
  });

  it('a drift the receiver reports is thrown as RevertDriftError', async () => {
    const target = newTarget({ zone: 'dmz' });
    const e = enforcer();
    const snapshot = await e.apply({ target, labels: { [Q]: 'true', zone: 'isolated' }, expiresAt: 0, leaseId: 'w-3' });
    receiver.labels.set(target.entity, { [Q]: 'true', zone: 'forensics' });
    const err = await e.revert(snapshot, 'w-3').catch((x: unknown) => x);
    expect(err).toBeInstanceOf(RevertDriftError);
    expect((err as RevertDriftError).result.drifted).toEqual([{ key: 'zone', expected: 'isolated', actual: 'forensics', prior: 'dmz' }]);
    expect(receiver.labels.get(target.entity)).toEqual({ zone: 'forensics' });
  });

  it('apply twice for one lease returns the same prior labels', async () => {
    const target = newTarget({});
    const e = enforcer();
    const request = { target, labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'w-4' };
    const first = await e.apply(request);
    const second = await e.apply(request);
    expect(second.labels).toEqual(first.labels);
    expect(first.labels).toEqual({ [Q]: null });
  });

  it('a target the receiver shows as protected is refused before any apply, unless a person approved it', async () => {
    const target = newTarget({ 'app.kubernetes.io/part-of': 'cordon' });
    const e = enforcer();
    const err = await e.apply({ target, labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'w-p' }).catch((x: unknown) => x);
    expect(err).toMatchObject({ retriable: false, code: 'protected' });
    expect(receiver.seen.map((s) => s.body?.action)).toEqual(['observe']);
    await e.apply({ target, labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'w-p', approvedBy: 'user:alice' });
    expect(receiver.seen.map((s) => s.body?.action)).toEqual(['observe', 'apply']);
    expect(receiver.labels.get(target.entity)).toMatchObject({ [Q]: 'true' });
  });

  it('observe and extend', async () => {
    const target = newTarget({ app: 'db' });
    const e = enforcer();
    expect(await e.observe(target)).toEqual({ target, labels: { app: 'db' }, contained: false });
    await e.apply({ target, labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'w-5' });
    expect(await e.observe(target)).toMatchObject({ contained: true });
    await e.extend(target, 1_900_000_000_000, 'w-5');
    expect(receiver.seen.at(-1)?.body).toMatchObject({ action: 'extend', leaseId: 'w-5', expiresAt: 1_900_000_000_000, labels: {} });
  });

  it('a wrong secret is rejected by the receiver: non-retriable, with its message', async () => {
    const err = await enforcer({ secret: 'another-secret-that-is-32-characters-long' })
      .observe(newTarget())
      .catch((x: unknown) => x);
    expect(err).toBeInstanceOf(EnforcerError);
    expect(err).toMatchObject({ retriable: false, code: 'http_401' });
    expect((err as Error).message).toContain('signature mismatch');
    expect(receiver.seen).toEqual([{ status: 401 }]);
  });

  it('an old signature is rejected (replay window)', async () => {
    const err = await enforcer({}, { now: () => Date.now() - 10 * 60_000 })
      .observe(newTarget())
      .catch((x: unknown) => x);
    expect(err).toMatchObject({ retriable: false });
    expect((err as Error).message).toContain('timestamp outside the replay window');
  });

  it('5xx is retried; 429 honours Retry-After', async () => {
    const target = newTarget({});
    receiver.failures.push({ status: 502 }, { status: 429, retryAfterSec: 3 });
    const snapshot = await enforcer().apply({ target, labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'w-6' });
    expect(snapshot.labels).toEqual({ [Q]: null });
    expect(receiver.seen.map((s) => `${s.body?.action} ${s.status}`)).toEqual(['observe 502', 'observe 429', 'observe 200', 'apply 200']);
    expect(sleeps).toHaveLength(2);
    expect(sleeps[1]).toBeGreaterThanOrEqual(3000);
  });

  it('other 4xx are not retriable and carry the receiver message', async () => {
    receiver.failures.push({ status: 422, body: JSON.stringify({ error: 'target unknown to the firewall' }) });
    const err = await enforcer().apply({ target: newTarget(), labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'w-7' }).catch((x: unknown) => x);
    expect(err).toMatchObject({ retriable: false, code: 'http_422' });
    expect((err as Error).message).toContain('target unknown to the firewall');
    expect(receiver.seen).toHaveLength(1);
  });

  it('a timeout is retried', async () => {
    receiver.failures.push({ status: 200, delayMs: 400 });
    const target = newTarget({});
    const snapshot = await enforcer({ timeoutMs: 100 }).apply({ target, labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'w-8' });
    expect(snapshot.labels).toEqual({ [Q]: null });
    expect(sleeps).toHaveLength(1);
  });

  it('network errors are retried, then reported as retriable', async () => {
    const closed = new Receiver();
    const deadUrl = await closed.start();
    await closed.stop();
    const err = await enforcer({ url: deadUrl }).observe(newTarget()).catch((x: unknown) => x);
    expect(err).toMatchObject({ retriable: true, code: 'network' });
    expect(sleeps).toHaveLength(3);
  });

  it('a response that breaks the contract is a non-retriable bad_response', async () => {
    const observed = JSON.stringify({ labels: {}, contained: false });
    receiver.failures.push({ status: 200, body: observed }, { status: 200, body: JSON.stringify({ priorLabels: {} }) });
    const err = await enforcer().apply({ target: newTarget(), labels: { [Q]: 'true' }, expiresAt: 0, leaseId: 'w-9' }).catch((x: unknown) => x);
    expect(err).toMatchObject({ retriable: false, code: 'bad_response' });
    expect((err as Error).message).toContain(`priorLabels lacks ${Q}`);
  });

  it('an answer over 1 MiB or nested deeper than 64 levels is a non-retriable bad_response, not parsed into the lease', async () => {
    const observe = () => enforcer().observe(newTarget()).catch((x: unknown) => x);
    receiver.failures.push({ status: 200, body: JSON.stringify({ labels: {}, contained: false, pad: 'x'.repeat(1024 * 1024) }) });
    const big = await observe();
    expect(big).toMatchObject({ retriable: false, code: 'bad_response' });
    expect((big as Error).message).toMatch(/body too large: over 1048576 bytes$/);
    receiver.failures.push({ status: 200, body: `{"labels":{},"contained":false,"deep":${'['.repeat(100_000)}${']'.repeat(100_000)}}` });
    const deep = await observe();
    expect(deep).toMatchObject({ retriable: false, code: 'bad_response' });
    expect((deep as Error).message).toMatch(/body is not JSON within the limits: too deep: nesting goes beyond 64 levels/);
    receiver.failures.push({ status: 503, body: 'y'.repeat(2 * 1024 * 1024) });
    const refused = await enforcer({ retry: { retries: 0, initialMs: 10, maxMs: 10 } }).observe(newTarget()).catch((x: unknown) => x);
    expect((refused as Error).message).toMatch(/receiver answered 503: \(a body over 1048576 bytes\)$/);
  });

  it('verifyWebhookSignature: valid, tampered, wrong secret, rotation, replay window', () => {
    const body = JSON.stringify({ action: 'observe' });
    const now = 1_800_000_000;
    const sig = signWebhook(SECRET, now, body);
    expect(sig).toMatch(/^v1=[0-9a-f]{64}$/);
    const check = (over: Partial<Parameters<typeof verifyWebhookSignature>[0]>) =>
      verifyWebhookSignature({ secrets: [SECRET], timestamp: String(now), signature: sig, rawBody: body, nowSec: now, ...over });
    expect(check({})).toEqual({ ok: true });
    expect(check({ rawBody: body.replace('observe', 'apply') })).toEqual({ ok: false, reason: 'signature mismatch' });
    expect(check({ secrets: ['x'.repeat(40)] })).toEqual({ ok: false, reason: 'signature mismatch' });
    expect(check({ secrets: ['x'.repeat(40), SECRET] })).toEqual({ ok: true });
    expect(check({ signature: `v1=${'0'.repeat(64)}, ${sig}` })).toEqual({ ok: true });
    expect(check({ nowSec: now + 301 })).toEqual({ ok: false, reason: 'timestamp outside the replay window' });
    expect(check({ timestamp: String(now + 1) })).toEqual({ ok: false, reason: 'signature mismatch' });
    expect(check({ signature: undefined })).toEqual({ ok: false, reason: 'missing v1 signature' });
    expect(check({ timestamp: 'yesterday' })).toEqual({ ok: false, reason: 'missing or malformed timestamp' });
  });

  it('the config schema requires one secret source of at least 32 characters', () => {
    expect(WebhookEnforcerConfig.safeParse({ url: 'https://fw.example/cordon', secret: 'short' }).success).toBe(false);
    expect(WebhookEnforcerConfig.safeParse({ url: 'https://fw.example/cordon' }).success).toBe(false);
    expect(WebhookEnforcerConfig.parse({ url: 'https://fw.example/cordon', secret: SECRET })).toMatchObject({
      name: 'webhook',
      timeoutMs: 5000,
      capabilities: { labels: true, kernelExpiry: false, connectionCut: false },
    });
  });
});

describe('connectors/webhook', () => {
  it('the example config is valid', () => {
    const doc = YAML.parse(readFileSync('connectors/webhook/cordon-webhook.example.yaml', 'utf8'));
    expect(WebhookEnforcerConfig.parse(doc.contain.enforcers.webhook)).toMatchObject({ name: 'webhook', timeoutMs: 5000 });
  });

  it('the shipped JSON Schema is the zod contract', () => {
    expect(JSON.parse(readFileSync('connectors/webhook/contract.schema.json', 'utf8'))).toEqual(webhookContractJsonSchema());
  });
});
