import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';

/**
 * A contract server for the subset of the Illumio PCE REST API v2 that Cordon uses, written from
 * Illumio's REST API guide, in-process on 127.0.0.1:0 (plain HTTP):
 *
 *   GET  /api/v2/orgs/{org}/workloads/{id}     → 200 workload, `labels: [{href}]`
 *   PUT  /api/v2/orgs/{org}/workloads/{id}     → 204; only the attributes sent change (`labels` replaces the list)
 *   GET  /api/v2/orgs/{org}/labels?key=&value= → 200 array; `value` matches partially (the guide: a GET for
 *                                                value=APP may return APP, WEB-APP and WEBAPP)
 *   GET  /api/v2/orgs/{org}/labels/{id}        → 200 label
 *   POST /api/v2/orgs/{org}/labels             → 201 label; the key must be a label type the org has
 *
 * - Authentication is HTTP basic with an API key id and secret; a wrong or missing one gets 401. A key
 *   without write permission, or a request for another org, gets 403.
 * - Errors are JSON arrays of `{token, message}`; validation failures (bad body, unknown or deleted label
 *   href, two labels of one key on a workload, a duplicate label) are 406 Not Acceptable. The token
 *   names here are this server's own; the guide documents the shape, not a list of tokens.
 * - The PCE rate-limits at 500 requests a minute per API key with 429; `rateLimit(n, retryAfterSec)`
 *   makes the next n requests answer 429 with that Retry-After.
 * - `deleteWorkload(href)` removes a workload (GET and PUT are then 404 `not_found`); `deleteWorkload(href,
 *   { keepRecord: true })` keeps it readable with `deleted: true` (an unpaired managed workload), and a PUT
 *   to it is 406.
 * - `failNext(status)` injects 5xx answers; `failAfterApplying` carries a request out and then answers an
 *   error (an answer lost after the write landed); `beforeNext` lets another writer act first; `requests`
 *   records what was asked.
 */

export interface PceLabel {
  href: string;
  key: string;
  value: string;
  deleted?: boolean;
  created_at: string;
  updated_at: string;
}

export interface PceWorkload {
  href: string;
  name: string;
  hostname: string;
  description?: string;
  labels: Array<{ href: string }>;
  interfaces: Array<{ name: string; address: string }>;
  managed: boolean;
  enforcement_mode: string;
  deleted?: boolean;
  created_at: string;
  updated_at: string;
}

export interface ApiKey {
  secret: string;
  /** `write` may PUT and POST; `read` only GET. */
  access: 'write' | 'read';
}

export interface PceRequest {
  method: string;
  path: string;
  status: number;
  body: unknown;
}

class PceFailure extends Error {
  constructor(
    readonly status: number,
    readonly token: string,
    message: string,
  ) {
    super(message);
  }
}

const WORKLOAD_PROPS = new Set(['name', 'description', 'hostname', 'labels', 'external_data_set', 'external_data_reference', 'enforcement_mode']);

export class IllumioContractServer {
  readonly requests: PceRequest[] = [];
  readonly orgId: number;
  private readonly apiKeys: Map<string, ApiKey>;
  private readonly labelTypes: Set<string>;
  private readonly labels = new Map<string, PceLabel>();
  private readonly workloads = new Map<string, PceWorkload>();
  private nextLabelId = 1;
  private limited: { count: number; retryAfterSec: number } = { count: 0, retryAfterSec: 0 };
  private failures: number[] = [];
  private before: Array<{ method: string; run: () => void }> = [];
  private failAfter: Array<{ method: string; status: number }> = [];
  private server: Server | undefined;
  url = '';

  constructor(options: { orgId?: number; apiKeys?: Record<string, ApiKey>; labelTypes?: string[] } = {}) {
    this.orgId = options.orgId ?? 1;
    this.apiKeys = new Map(Object.entries(options.apiKeys ?? {}));
    this.labelTypes = new Set(options.labelTypes ?? ['role', 'app', 'env', 'loc', 'quarantine']);
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    this.server = undefined;
  }

  addLabel(key: string, value: string): PceLabel {
    if (!this.labelTypes.has(key)) throw new Error(`no label type ${key}`);
    const existing = [...this.labels.values()].find((l) => l.key === key && l.value === value && !l.deleted);
    if (existing) return { ...existing };
    const now = new Date().toISOString();
    const label: PceLabel = { href: `/orgs/${this.orgId}/labels/${this.nextLabelId++}`, key, value, created_at: now, updated_at: now };
    this.labels.set(label.href, label);
    return { ...label };
  }

  deleteLabel(href: string): void {
    const label = this.labels.get(href);
    if (label) label.deleted = true;
  }

  addWorkload(input: { name: string; labels?: Record<string, string>; ip?: string; enforcementMode?: string }): PceWorkload {
    const now = new Date().toISOString();
    const workload: PceWorkload = {
      href: `/orgs/${this.orgId}/workloads/${randomUUID()}`,
      name: input.name,
      hostname: `${input.name}.example.internal`,
      labels: Object.entries(input.labels ?? {}).map(([k, v]) => ({ href: this.addLabel(k, v).href })),
      interfaces: [{ name: 'eth0', address: input.ip ?? '10.0.0.10' }],
      managed: true,
      enforcement_mode: input.enforcementMode ?? 'full',
      created_at: now,
      updated_at: now,
    };
    this.workloads.set(workload.href, workload);
    return structuredClone(workload);
  }

  deleteWorkload(href: string, options: { keepRecord?: boolean } = {}): void {
    const workload = this.workloads.get(href);
    if (!workload) throw new Error(`no workload ${href}`);
    if (options.keepRecord) workload.deleted = true;
    else this.workloads.delete(href);
  }

  /** The workload's labels as key → value, for assertions. */
  workloadLabels(href: string): Record<string, string> {
    const workload = this.workloads.get(href);
    if (!workload) throw new Error(`no workload ${href}`);
    return Object.fromEntries(workload.labels.map((ref) => this.labels.get(ref.href) as PceLabel).map((l) => [l.key, l.value]));
  }

  /** An operator (or another integration) relabels the workload now. */
  setWorkloadLabels(href: string, labels: Record<string, string>): void {
    const workload = this.workloads.get(href);
    if (!workload) throw new Error(`no workload ${href}`);
    workload.labels = Object.entries(labels).map(([k, v]) => ({ href: this.addLabel(k, v).href }));
    workload.updated_at = new Date().toISOString();
  }

  findLabels(key: string, value: string): PceLabel[] {
    return [...this.labels.values()].filter((l) => l.key === key && l.value === value);
  }

  /** The next `count` requests answer 429 Too Many Requests with this Retry-After. */
  rateLimit(count: number, retryAfterSec: number): void {
    this.limited = { count, retryAfterSec };
  }

  /** The next requests answer these statuses, in order. */
  failNext(...statuses: number[]): void {
    this.failures.push(...statuses);
  }

  /** Runs `run` just before the next request with this method is handled (e.g. another writer wins a race). */
  beforeNext(method: string, run: () => void): void {
    this.before.push({ method, run });
  }

  /** The next request with this method is carried out, then answered with `status` (a lost answer: the gateway timed out). */
  failAfterApplying(method: string, status: number): void {
    this.failAfter.push({ method, status });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://localhost');
    let status = 200;
    let body: unknown;
    const headers: Record<string, string> = { 'Content-Type': 'application/json', 'Request-ID': randomUUID() };
    try {
      if (this.limited.count > 0) {
        this.limited.count--;
        headers['Retry-After'] = String(this.limited.retryAfterSec);
        throw new PceFailure(429, 'too_many_requests', 'Too many requests');
      }
      const injected = this.failures.shift();
      if (injected !== undefined) throw new PceFailure(injected, 'internal_server_error', 'Injected failure');
      const key = this.authenticate(req);
      const hook = this.before.findIndex((b) => b.method === req.method);
      if (hook >= 0) this.before.splice(hook, 1)[0]?.run();
      ({ status, body } = this.route(req.method ?? 'GET', url, raw, req.headers['content-type'], key));
      const lost = this.failAfter.findIndex((f) => f.method === req.method);
      if (lost >= 0) {
        const { status: failed } = this.failAfter.splice(lost, 1)[0] as { status: number };
        throw new PceFailure(failed, 'gateway_timeout', 'The upstream did not answer in time');
      }
    } catch (err) {
      if (!(err instanceof PceFailure)) throw err;
      status = err.status;
      body = [{ token: err.token, message: err.message }];
    }
    this.requests.push({ method: req.method ?? '', path: `${url.pathname}${url.search}`, status, body: raw ? safeJson(raw) : undefined });
    if (status === 204) {
      res.writeHead(204, { 'Request-ID': headers['Request-ID'] as string });
      res.end();
      return;
    }
    res.writeHead(status, headers);
    res.end(JSON.stringify(body));
  }

  private authenticate(req: IncomingMessage): ApiKey {
    const match = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
    const decoded = match ? Buffer.from(match[1] as string, 'base64').toString('utf8') : '';
    const sep = decoded.indexOf(':');
    const key = sep > 0 ? this.apiKeys.get(decoded.slice(0, sep)) : undefined;
    if (!key || key.secret !== decoded.slice(sep + 1)) throw new PceFailure(401, 'authentication_required', 'Authentication required');
    return key;
  }

  private route(method: string, url: URL, raw: string, contentType: string | undefined, key: ApiKey): { status: number; body: unknown } {
    const m = /^\/api\/v2\/orgs\/(\d+)\/(workloads|labels)(?:\/([^/]+))?$/.exec(url.pathname);
    if (!m) throw new PceFailure(404, 'not_found', `No route for ${url.pathname}`);
    if (Number(m[1]) !== this.orgId) throw new PceFailure(403, 'forbidden_error', 'You are not authorized to access this organization');
    const collection = m[2] as 'workloads' | 'labels';
    const href = m[3] ? `/orgs/${this.orgId}/${collection}/${m[3]}` : undefined;
    if (method !== 'GET' && key.access !== 'write') throw new PceFailure(403, 'forbidden_error', 'API key is not authorized to perform this action');
    if (method === 'PUT' || method === 'POST') {
      if (!(contentType ?? '').toLowerCase().startsWith('application/json')) {
        throw new PceFailure(406, 'invalid_content_type', 'Content-Type must be application/json');
      }
    }
    if (collection === 'workloads' && href) {
      const workload = this.workloads.get(href);
      if (!workload) throw new PceFailure(404, 'not_found', `Workload ${href} not found`);
      if (method === 'GET') return { status: 200, body: structuredClone(workload) };
      if (method === 'PUT') {
        if (workload.deleted) throw new PceFailure(406, 'workload_deleted', `Workload ${href} is deleted`);
        this.updateWorkload(workload, parseBody(raw));
        return { status: 204, body: undefined };
      }
    }
    if (collection === 'labels' && href) {
      const label = this.labels.get(href);
      if (!label) throw new PceFailure(404, 'not_found', `Label ${href} not found`);
      if (method === 'GET') return { status: 200, body: { ...label } };
    }
    if (collection === 'labels' && !href) {
      if (method === 'GET') {
        const k = url.searchParams.get('key');
        const v = url.searchParams.get('value')?.toLowerCase();
        const includeDeleted = url.searchParams.get('include_deleted') === 'true';
        const max = Number(url.searchParams.get('max_results') ?? 500);
        const list = [...this.labels.values()]
          .filter((l) => (k === null || l.key === k) && (v === undefined || l.value.toLowerCase().includes(v)) && (includeDeleted || !l.deleted))
          .slice(0, max);
        return { status: 200, body: list };
      }
      if (method === 'POST') return { status: 201, body: this.createLabel(parseBody(raw)) };
    }
    throw new PceFailure(405, 'method_not_allowed', `${method} is not allowed on ${url.pathname}`);
  }

  private createLabel(body: Record<string, unknown>): PceLabel {
    const { key, value } = body;
    if (typeof key !== 'string' || typeof value !== 'string' || value.length === 0 || value.length > 255) {
      throw new PceFailure(406, 'input_validation_error', 'key and value are required strings (value 1 to 255 characters)');
    }
    if (!this.labelTypes.has(key)) throw new PceFailure(406, 'label_type_invalid', `Label type ${key} does not exist`);
    if ([...this.labels.values()].some((l) => l.key === key && l.value === value && !l.deleted)) {
      throw new PceFailure(406, 'label_not_unique', `A label with key ${key} and value ${value} already exists`);
    }
    return this.addLabel(key, value);
  }

  private updateWorkload(workload: PceWorkload, body: Record<string, unknown>): void {
    const unknown = Object.keys(body).filter((p) => !WORKLOAD_PROPS.has(p));
    if (unknown.length > 0) throw new PceFailure(406, 'input_validation_error', `Unknown properties: ${unknown.join(', ')}`);
    if ('labels' in body) {
      const refs = body.labels;
      if (!Array.isArray(refs) || !refs.every((r) => r !== null && typeof r === 'object' && typeof (r as { href?: unknown }).href === 'string')) {
        throw new PceFailure(406, 'input_validation_error', 'labels must be an array of {href}');
      }
      const seen = new Map<string, string>();
      for (const ref of refs as Array<{ href: string }>) {
        const label = this.labels.get(ref.href);
        if (!label || label.deleted) throw new PceFailure(406, 'invalid_label_href', `Label ${ref.href} does not exist`);
        const other = seen.get(label.key);
        if (other && other !== ref.href) {
          throw new PceFailure(406, 'multiple_labels_of_same_key', `A workload can have only one label of key ${label.key}`);
        }
        seen.set(label.key, ref.href);
      }
      workload.labels = [...new Set((refs as Array<{ href: string }>).map((r) => r.href))].map((h) => ({ href: h }));
    }
    for (const prop of ['name', 'description', 'hostname'] as const) {
      if (prop in body) {
        if (typeof body[prop] !== 'string') throw new PceFailure(406, 'input_validation_error', `${prop} must be a string`);
        workload[prop] = body[prop] as string;
      }
    }
    workload.updated_at = new Date().toISOString();
  }
}

function parseBody(raw: string): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    throw new PceFailure(400, 'invalid_json', 'Request body is not valid JSON');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new PceFailure(406, 'input_validation_error', 'Request body must be a JSON object');
  }
  return body as Record<string, unknown>;
}

function safeJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}
