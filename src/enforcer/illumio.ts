import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { z } from 'zod';
import type { Logger } from '../logger';
import { retry } from '../retry';
import {
  EnforcerError,
  type ApplyRequest,
  type Capabilities,
  type Enforcer,
  type Observation,
  type Snapshot,
  type Target,
  TargetGoneError,
} from './enforcer';
import { guardProtected, type LiveWorkload } from './protection';
import { describeDrift, RevertDriftError, type RevertResult } from './webhook';

/**
 * Illumio enforcer: quarantine labels on PCE workloads through the REST API v2
 * (`/api/v2/orgs/{org}/...`, basic auth with an API key id and secret).
 *
 * - A workload carries label references (`labels: [{href}]`), at most one label per key. Apply replaces
 *   the workload's label of each quarantine key (recording the one it had, by href) and keeps every
 *   other label: one PUT of the full `labels` array per call. Revert puts the recorded labels back.
 * - Labels are objects of their own. The quarantine label (key `quarantine`, value `true` by default)
 *   is looked up once (GET /labels?key=&value=, which matches values partially, so the result is
 *   filtered for an exact match) and created when absent (POST /labels); a 406/409 on creation (another
 *   replica created it first) is answered by looking it up again.
 * - The PCE has no optimistic concurrency on workloads: a PUT replaces the labels array. The window in
 *   which a concurrent change of another label could be overwritten is one GET→PUT round trip.
 * - Errors come as `[{"token": "...", "message": "..."}]`; 401/403/404/406 are not retriable, 429 (the PCE
 *   allows 500 requests a minute per API key), 5xx and network failures are, honouring Retry-After.
 * - A workload has no place for Cordon's own record, so idempotency of a repeated apply for the same
 *   lease rests on memory: within one process a replay returns the first snapshot; after a restart, a
 *   replay finds the quarantine label already on and records it as the prior value (revert then leaves
 *   it: fail closed). See docs/connectors/illumio.md.
 */

const RetryConfig = z
  .object({
    retries: z.number().int().min(0).max(20).default(5),
    initialMs: z.number().int().min(1).default(500),
    maxMs: z.number().int().min(1).default(10_000),
  })
  .prefault({});

const LabelKeyName = z.string().min(1).max(64);

export const IllumioEnforcerConfig = z
  .object({
    /** PCE base URL with port, no path: `https://pce.example.com:8443`. */
    pceUrl: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }),
    orgId: z.number().int().min(1),
    /** API key id (the basic-auth user, `api_...`). */
    apiKeyId: z.string().min(1),
    apiKeySecret: z.string().min(1).optional(),
    /** File holding the API key secret (a mounted secret); instead of `apiKeySecret`. */
    apiKeySecretFile: z.string().min(1).optional(),
    /** PEM file with the CA that signed the PCE's certificate, when it is not a public CA. */
    caFile: z.string().min(1).optional(),
    /** Skip certificate verification (lab PCEs only). */
    tlsInsecure: z.boolean().default(false),
    /** The PCE label that quarantines; `observe` reports `contained` when a workload carries it. */
    quarantineLabel: z.object({ key: LabelKeyName.default('quarantine'), value: z.string().min(1).max(255).default('true') }).prefault({}),
    /** Cordon label key → PCE label key (the label type). Keys not listed are used as they are. */
    labelKeys: z.record(z.string(), LabelKeyName).default({ 'cordon.io/quarantine': 'quarantine' }),
    /** Create a missing label (needs label write permission); otherwise a missing label is an error. */
    createLabels: z.boolean().default(true),
    requestTimeoutMs: z.number().int().min(100).default(15_000),
    /** Upper bound on a Retry-After the PCE asks for. */
    maxRetryAfterMs: z.number().int().min(0).default(60_000),
    retry: RetryConfig,
  })
  .refine((c) => (c.apiKeySecret === undefined) !== (c.apiKeySecretFile === undefined), 'expected exactly one of apiKeySecret, apiKeySecretFile');
export type IllumioEnforcerConfig = z.infer<typeof IllumioEnforcerConfig>;
export type IllumioEnforcerConfigInput = z.input<typeof IllumioEnforcerConfig>;

const LabelRef = z.object({ href: z.string() });
const Label = z.object({ href: z.string(), key: z.string(), value: z.string(), deleted: z.boolean().optional() });
type Label = z.infer<typeof Label>;
const Workload = z.object({
  href: z.string(),
  name: z.string().nullish(),
  hostname: z.string().nullish(),
  labels: z.array(LabelRef).nullish(),
  interfaces: z.array(z.object({ address: z.string().nullish() })).nullish(),
  enforcement_mode: z.string().nullish(),
  deleted: z.boolean().nullish(),
});
/** The PCE label key naming a workload's role (the `role` label type). */
const ROLE_KEY = 'role';
/** Modes in which the VEN drops traffic (deny rules and boundaries in selective, everything unallowed in full). */
const ENFORCING = new Set(['full', 'selective']);
const ErrorItem = z.object({ token: z.string().optional(), message: z.string().optional(), error: z.string().optional() });

/** What apply records for revert: per Cordon label key, the label href before and the one set. */
const SnapshotExtra = z.object({
  workload: z.string(),
  prior: z.record(z.string(), z.string().nullable()),
  applied: z.record(z.string(), z.string()),
});
type SnapshotExtra = z.infer<typeof SnapshotExtra>;

const WORKLOAD_HREF = /^\/orgs\/\d+\/workloads\/[A-Za-z0-9-]+$/;

export interface IllumioEnforcerOptions {
  logger?: Logger;
  /** Injected for tests. */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  now?: () => number;
}

interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: unknown;
}

class PceHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly token: string | undefined,
    readonly retryAfterMs: number,
  ) {
    super(message);
  }
}

export class IllumioEnforcer implements Enforcer {
  readonly name = 'illumio';
  /** The VEN programs the host firewall; established flows are not cut by a label change. */
  readonly capabilities: Capabilities = { labels: true, kernelExpiry: false, connectionCut: false };

  private readonly config: IllumioEnforcerConfig;
  private readonly authorization: string;
  private readonly ca: Buffer | undefined;
  /** `key\0value` → href of the label, resolved once. */
  private readonly labelHrefs = new Map<string, Promise<string>>();
  /** href → label; a label's key never changes, so this is safe to keep. */
  private readonly labels = new Map<string, Label>();
  /** leaseId → the snapshot its first apply took (idempotent replay within this process). */
  private readonly leases = new Map<string, Snapshot>();
  /** workload href → the lease quarantining it and the prior label hrefs by PCE key (in this process). */
  private readonly holders = new Map<string, { leaseId: string; prior: Record<string, string | null> }>();

  constructor(config: IllumioEnforcerConfigInput, private readonly options: IllumioEnforcerOptions = {}) {
    this.config = IllumioEnforcerConfig.parse(config);
    const secret = this.config.apiKeySecret ?? readFileSync(this.config.apiKeySecretFile as string, 'utf8').trim();
    this.authorization = `Basic ${Buffer.from(`${this.config.apiKeyId}:${secret}`).toString('base64')}`;
    this.ca = this.config.caFile ? readFileSync(this.config.caFile) : undefined;
  }

  /** Looks up (and creates, if allowed and absent) the quarantine label; call once at start-up. Idempotent. */
  async prepare(): Promise<string> {
    const { key, value } = this.config.quarantineLabel;
    return this.labelHref(key, value);
  }

  async apply(request: ApplyRequest): Promise<Snapshot> {
    const workload = workloadHref(request.target);
    const cordonKeys = Object.keys(request.labels);
    if (cordonKeys.length === 0) throw new EnforcerError('illumio apply: no labels to set', false, 'bad_request');
    const pceKeys = cordonKeys.map((k) => this.pceKey(k));
    if (new Set(pceKeys).size !== pceKeys.length) {
      throw new EnforcerError(`illumio apply: labels ${cordonKeys.join(', ')} map to the same PCE label key`, false, 'bad_request');
    }
    const desired: Record<string, string> = {};
    for (const k of cordonKeys) desired[k] = await this.labelHref(this.pceKey(k), request.labels[k] as string);
    const replay = this.leases.get(request.leaseId);
    const replayExtra = replay && SnapshotExtra.safeParse(replay.extra);
    // Another lease of this process holds the workload: its prior labels are the original ones.
    const holder = this.holders.get(workload);
    const inherited = holder && holder.leaseId !== request.leaseId ? holder.prior : {};

    // The prior labels are those read before Cordon's first write. A PUT whose answer was lost (timeout,
    // reset) may have landed: the next attempt then finds Cordon's label on, and keeps the earlier reading.
    let attempted: Record<string, string | null> | undefined;
    const snapshot = await this.withRetry(`apply ${workload}`, async () => {
      const current = await this.workloadLabels(workload);
      guardProtected(this.name, request, this.live(current));
      const priorHrefs: Record<string, string | null> = {};
      for (const k of cordonKeys) {
        const now = current.byKey.get(this.pceKey(k))?.href ?? null;
        const recorded = replayExtra?.success && replayExtra.data.workload === workload ? replayExtra.data.prior[k] : undefined;
        const earlier = attempted && now === desired[k] ? attempted[k] : undefined;
        const carried = inherited[this.pceKey(k)];
        priorHrefs[k] = recorded !== undefined ? recorded : earlier !== undefined ? earlier : carried !== undefined ? carried : now;
      }
      const replaced = new Set(pceKeys);
      const next = [...current.labels.filter((l) => !replaced.has(l.key)).map((l) => l.href), ...Object.values(desired)];
      if (!sameSet(next, current.labels.map((l) => l.href))) {
        attempted = priorHrefs;
        await this.putLabels(workload, next);
      }
      const labels: Record<string, string | null> = {};
      for (const k of cordonKeys) {
        const href = priorHrefs[k] ?? null;
        labels[k] = href === null ? null : (await this.label(href)).value;
      }
      const extra: SnapshotExtra = { workload, prior: priorHrefs, applied: desired };
      const taken: Snapshot = { target: request.target, labels, extra, takenAt: replay?.takenAt ?? this.now() };
      return taken;
    });
    this.leases.set(request.leaseId, snapshot);
    const prior = { ...inherited };
    for (const k of cordonKeys) prior[this.pceKey(k)] = (snapshot.extra as SnapshotExtra).prior[k] ?? null;
    this.holders.set(workload, { leaseId: request.leaseId, prior });
    return snapshot;
  }

  /**
   * Puts back, per label key, the label the workload had (or removes Cordon's when it had none) when
   * the workload still carries the label Cordon set; a key someone changed since is left and reported
   * with RevertDriftError after the rest is restored. A repeated revert finds nothing to do.
   */
  async revert(snapshot: Snapshot, leaseId: string): Promise<void> {
    const { workload, prior, applied } = await this.revertPlan(snapshot);
    const holder = this.holders.get(workload);
    if (holder && holder.leaseId !== leaseId) {
      // A newer lease quarantined the workload since and carries the original labels: nothing to do.
      this.leases.delete(leaseId);
      this.options.logger?.info({ enforcer: this.name, workload, leaseId, supersededBy: holder.leaseId }, 'revert: workload held by a newer lease');
      return;
    }
    const result = await this.withRetry(`revert ${workload}`, async (): Promise<RevertResult> => {
      const current = await this.workloadLabels(workload);
      const outcome: RevertResult = { restored: [], unchanged: [], drifted: [] };
      const remove = new Set<string>();
      const add: string[] = [];
      for (const [k, appliedHref] of Object.entries(applied)) {
        const priorHref = prior[k] ?? null;
        const key = (await this.label(appliedHref)).key;
        const actualHref = current.byKey.get(key)?.href ?? null;
        if (actualHref === priorHref) outcome.unchanged.push(k);
        else if (actualHref === appliedHref) {
          remove.add(appliedHref);
          if (priorHref) add.push(priorHref);
          outcome.restored.push(k);
        } else {
          outcome.drifted.push({
            key: k,
            expected: (await this.label(appliedHref)).value,
            actual: actualHref ? (await this.label(actualHref)).value : null,
            prior: snapshot.labels[k] ?? null,
          });
        }
      }
      if (remove.size > 0) {
        await this.putLabels(workload, [...current.labels.map((l) => l.href).filter((h) => !remove.has(h)), ...add]);
      }
      return outcome;
    });
    this.leases.delete(leaseId);
    this.holders.delete(workload);
    if (result.drifted.length > 0) {
      throw new RevertDriftError(`illumio revert ${workload}: left labels changed since apply: ${describeDrift(result.drifted)}`, result);
    }
  }

  /**
   * The label hrefs to revert: as apply recorded them, or, from a snapshot Cordon rebuilt from the
   * ledger (after a restart: prior label values and `extra.applied`, by Cordon key), looked up again.
   */
  private async revertPlan(snapshot: Snapshot): Promise<SnapshotExtra> {
    const full = SnapshotExtra.safeParse(snapshot.extra);
    if (full.success) return full.data;
    const rebuilt = z.object({ applied: z.record(z.string(), z.string()) }).safeParse(snapshot.extra);
    if (!rebuilt.success) {
      throw new EnforcerError(`illumio revert ${snapshot.target.entity}: snapshot lacks the labels apply set`, false, 'bad_snapshot');
    }
    const workload = workloadHref(snapshot.target);
    const applied: Record<string, string> = {};
    const prior: Record<string, string | null> = {};
    for (const [k, value] of Object.entries(rebuilt.data.applied)) {
      applied[k] = await this.labelHref(this.pceKey(k), value);
      const before = snapshot.labels[k] ?? null;
      prior[k] = before === null ? null : await this.labelHref(this.pceKey(k), before);
    }
    return { workload, prior, applied };
  }

  /** The workload as the PCE shows it, for the protection check: labels by PCE key and by Cordon key. */
  private live(current: { labels: Label[]; name: string | undefined; ip: string | undefined }): LiveWorkload {
    const labels: Record<string, string> = {};
    for (const l of current.labels) labels[l.key] = l.value;
    for (const [cordonKey, pceKey] of Object.entries(this.config.labelKeys)) if (labels[pceKey] !== undefined) labels[cordonKey] = labels[pceKey];
    const role = labels[ROLE_KEY];
    return { ...(current.name !== undefined && { name: current.name }), ...(current.ip !== undefined && { ip: current.ip }), labels, roles: role ? [role] : [] };
  }

  /**
   * Labels by PCE key (`role`, `app`, `quarantine`, ...), not by Cordon key. `contained` needs the
   * quarantine label and a VEN that drops traffic: a workload in `idle` or `visibility_only` mode
   * carries the label but nothing is blocked.
   */
  async observe(target: Target): Promise<Observation> {
    const workload = workloadHref(target);
    const current = await this.withRetry(`observe ${workload}`, () => this.workloadLabels(workload));
    const labels: Record<string, string> = {};
    for (const l of current.labels) labels[l.key] = l.value;
    const { key, value } = this.config.quarantineLabel;
    const enforcing = current.mode === undefined || ENFORCING.has(current.mode);
    return { target, labels, contained: labels[key] === value && enforcing };
  }

  private pceKey(cordonKey: string): string {
    return this.config.labelKeys[cordonKey] ?? cordonKey;
  }

  /** The workload's labels; TargetGoneError when the PCE no longer has it (404, or marked deleted). */
  private async workloadLabels(workload: string): Promise<{ labels: Label[]; byKey: Map<string, Label>; mode: string | undefined; name: string | undefined; ip: string | undefined }> {
    let res: HttpResult;
    try {
      res = await this.call('GET', workload);
    } catch (err) {
      if (err instanceof PceHttpError && err.status === 404) throw new TargetGoneError(`illumio: workload ${workload} not found: ${err.message}`);
      throw err;
    }
    const parsed = Workload.safeParse(res.body);
    if (!parsed.success) throw new EnforcerError(`illumio: GET ${workload}: unexpected workload body`, false, 'bad_response');
    if (parsed.data.deleted === true) throw new TargetGoneError(`illumio: workload ${workload} is deleted`);
    const labels = await Promise.all((parsed.data.labels ?? []).map((ref) => this.label(ref.href)));
    const name = parsed.data.hostname ?? parsed.data.name ?? undefined;
    const ip = parsed.data.interfaces?.find((i) => i.address)?.address ?? undefined;
    return { labels, byKey: new Map(labels.map((l) => [l.key, l])), mode: parsed.data.enforcement_mode ?? undefined, name, ip };
  }

  private async putLabels(workload: string, hrefs: string[]): Promise<void> {
    await this.call('PUT', workload, { labels: hrefs.map((href) => ({ href })) });
  }

  /** A label by href, from the cache or the PCE. */
  private async label(href: string): Promise<Label> {
    const known = this.labels.get(href);
    if (known) return known;
    const res = await this.call('GET', href);
    const parsed = Label.safeParse(res.body);
    if (!parsed.success) throw new EnforcerError(`illumio: GET ${href}: unexpected label body`, false, 'bad_response');
    this.labels.set(href, parsed.data);
    return parsed.data;
  }

  /** The href of the label key=value, looked up once per process and created when absent. */
  private labelHref(key: string, value: string): Promise<string> {
    const cacheKey = `${key}\u0000${value}`;
    let pending = this.labelHrefs.get(cacheKey);
    if (!pending) {
      pending = this.withRetry(`label ${key}=${value}`, () => this.findOrCreateLabel(key, value));
      pending.catch(() => this.labelHrefs.delete(cacheKey));
      this.labelHrefs.set(cacheKey, pending);
    }
    return pending;
  }

  private async findOrCreateLabel(key: string, value: string): Promise<string> {
    const found = await this.findLabel(key, value);
    if (found) return found.href;
    if (!this.config.createLabels) {
      throw new EnforcerError(`illumio: label ${key}=${value} does not exist and createLabels is off`, false, 'label_missing');
    }
    try {
      const res = await this.call('POST', `/orgs/${this.config.orgId}/labels`, { key, value });
      const created = Label.safeParse(res.body);
      if (!created.success) throw new EnforcerError(`illumio: POST labels: unexpected label body`, false, 'bad_response');
      this.labels.set(created.data.href, created.data);
      this.options.logger?.info({ enforcer: this.name, label: created.data }, 'created label');
      return created.data.href;
    } catch (err) {
      // Another replica (or an operator) created it between our lookup and our POST.
      if (err instanceof PceHttpError && (err.status === 406 || err.status === 409)) {
        const again = await this.findLabel(key, value);
        if (again) return again.href;
      }
      throw err;
    }
  }

  private async findLabel(key: string, value: string): Promise<Label | undefined> {
    const query = new URLSearchParams({ key, value });
    const res = await this.call('GET', `/orgs/${this.config.orgId}/labels?${query}`);
    const list = z.array(Label).safeParse(res.body);
    if (!list.success) throw new EnforcerError('illumio: GET labels: unexpected body', false, 'bad_response');
    // value= matches partially ("APP" finds "WEB-APP"): keep the exact label only.
    const label = list.data.find((l) => l.key === key && l.value === value && !l.deleted);
    if (label) this.labels.set(label.href, label);
    return label;
  }

  /** One HTTP exchange with the PCE; failures as PceHttpError (status) or a network error. */
  private call(method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown): Promise<HttpResult> {
    const url = new URL(`/api/v2${path}`, this.config.pceUrl);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { Accept: 'application/json', Authorization: this.authorization };
    if (payload !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(payload));
    }
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<HttpResult>((resolve, reject) => {
      const req = send(
        url,
        {
          method,
          headers,
          timeout: this.config.requestTimeoutMs,
          ...(url.protocol === 'https:' ? { rejectUnauthorized: !this.config.tlsInsecure, ...(this.ca ? { ca: this.ca } : {}) } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            let json: unknown;
            try {
              json = text.trim() ? JSON.parse(text) : undefined;
            } catch {
              json = undefined;
            }
            if (status >= 200 && status < 300) return resolve({ status, headers: res.headers, body: json });
            const { message, token } = pceError(json, text, status);
            const retryAfterMs = status === 429 || status === 503 ? this.retryAfter(res.headers['retry-after']) : 0;
            reject(new PceHttpError(status, message, token, retryAfterMs));
          });
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${this.config.requestTimeoutMs} ms`), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      req.end(payload);
    });
  }

  private retryAfter(value: string | undefined): number {
    if (!value) return 0;
    const seconds = Number(value);
    const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - Date.now();
    return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), this.config.maxRetryAfterMs) : 0;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private withRetry<T>(what: string, call: () => Promise<T>): Promise<T> {
    const { retries, initialMs, maxMs } = this.config.retry;
    const sleep = this.options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    let retryAfterMs = 0;
    return retry(
      async () => {
        retryAfterMs = 0;
        try {
          return await call();
        } catch (err) {
          if (err instanceof PceHttpError) retryAfterMs = err.retryAfterMs;
          throw toEnforcerError(err, `illumio ${what}`);
        }
      },
      {
        retries,
        initialMs,
        maxMs,
        retriable: (err) => err instanceof EnforcerError && err.retriable,
        onRetry: (err, attempt, delayMs) =>
          this.options.logger?.warn(
            { enforcer: this.name, what, attempt, delayMs: Math.max(delayMs, retryAfterMs), code: (err as EnforcerError).code, err: (err as Error).message },
            'retrying',
          ),
        sleep: (ms) => sleep(Math.max(ms, retryAfterMs)),
        ...(this.options.random ? { random: this.options.random } : {}),
      },
    );
  }
}

function workloadHref(target: Target): string {
  const candidate = target.ref ?? target.entity.replace(/^host:/, '');
  if (WORKLOAD_HREF.test(candidate)) return candidate;
  throw new EnforcerError(
    `illumio: target ${target.entity} has no workload href (expected ref /orgs/<org>/workloads/<id>)`,
    false,
    'target_unsupported',
  );
}

function sameSet(a: string[], b: string[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  return sa.size === sb.size && [...sa].every((x) => sb.has(x));
}

/** The PCE's error body: `[{"token","message"}]` (sometimes one object, or `{"error"}`), else the text. */
function pceError(json: unknown, text: string, status: number): { message: string; token?: string } {
  const items = Array.isArray(json) ? json : json !== undefined ? [json] : [];
  const parsed = items.map((i) => ErrorItem.safeParse(i)).filter((p) => p.success).map((p) => p.data);
  const parts = parsed
    .map((e) => (e.token && e.message ? `${e.token}: ${e.message}` : (e.message ?? e.error ?? e.token)))
    .filter((m): m is string => Boolean(m));
  if (parts.length > 0) return { message: parts.join('; '), ...(parsed[0]?.token ? { token: parsed[0].token } : {}) };
  return { message: text.trim().slice(0, 500) || `HTTP ${status}` };
}

function toEnforcerError(err: unknown, context: string): EnforcerError {
  if (err instanceof EnforcerError) return err;
  if (err instanceof PceHttpError) {
    const retriable = err.status === 409 || err.status === 429 || err.status >= 500;
    return new EnforcerError(`${context}: ${err.status} ${err.message}`, retriable, err.token ?? `http_${err.status}`);
  }
  const e = err as { code?: unknown; message?: unknown };
  const message = typeof e.message === 'string' ? e.message : String(err);
  if (typeof e.code === 'string' && /^E[A-Z_]+$/.test(e.code)) return new EnforcerError(`${context}: ${message}`, true, 'network');
  return new EnforcerError(`${context}: ${message}`, false, 'client');
}
