import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { Logger } from '../logger';
import { retry } from '../retry';
import { DEFAULT_JSON_LIMITS, parseJson } from '../validation';
import {
  EnforcerError,
  type ApplyRequest,
  type Capabilities,
  type Enforcer,
  type Observation,
  type Snapshot,
  type Target,
} from './enforcer';
import { guardProtected } from './protection';

/**
 * Webhook enforcer: for enforcement points without a connector. Every call is one signed JSON POST to a
 * receiver the operator runs, which does the work and answers with what happened. The wire contract
 * (request body, headers, response bodies) is documented in docs/connectors/webhook.md; the zod schemas
 * below are that contract.
 *
 * Revert outcomes (`RevertResult`, `RevertDriftError`) are defined here because they are part of the
 * wire contract; the Kubernetes and Illumio enforcers report drift the same way.
 */

// ---------------------------------------------------------------------------------------------------
// Revert outcome, shared by the label enforcers.

export const LabelDrift = z.object({
  key: z.string(),
  /** The value Cordon set. */
  expected: z.string().nullable(),
  /** The value found at revert (`null`: the label is gone). */
  actual: z.string().nullable(),
  /** The value revert would have restored. */
  prior: z.string().nullable(),
});
export type LabelDrift = z.infer<typeof LabelDrift>;

/**
 * What a revert did. Labels that still held Cordon's value are `restored`; labels already at their prior
 * value are `unchanged` (a repeated revert lands there); labels someone changed since apply are left as
 * they are and listed in `drifted`. `supersededBy` names another lease that quarantined the target since:
 * that lease's snapshot carries the original labels, so this revert changes nothing.
 */
export const RevertResult = z.object({
  restored: z.array(z.string()).default([]),
  unchanged: z.array(z.string()).default([]),
  drifted: z.array(LabelDrift).default([]),
  supersededBy: z.string().min(1).optional(),
});
export type RevertResult = z.infer<typeof RevertResult>;

/**
 * Thrown by `revert` when some labels were changed by someone else since apply. Everything else was
 * restored (in the same single write) before it is thrown, so it is not retriable and retrying is not
 * needed: the caller records `result.drifted` (ledger: release with drift) and may alert.
 */
export class RevertDriftError extends EnforcerError {
  override name = 'RevertDriftError';
  constructor(
    message: string,
    readonly result: RevertResult,
  ) {
    super(message, false, 'drift');
  }
}

export function describeDrift(drifted: LabelDrift[]): string {
  return drifted
    .map((d) => `${d.key}: set ${JSON.stringify(d.expected)}, now ${JSON.stringify(d.actual)}, left (prior ${JSON.stringify(d.prior)})`)
    .join('; ');
}

// ---------------------------------------------------------------------------------------------------
// Wire contract.

export const WEBHOOK_TIMESTAMP_HEADER = 'X-Cordon-Timestamp';
export const WEBHOOK_SIGNATURE_HEADER = 'X-Cordon-Signature';
/** Default replay window for receivers: a signature older (or newer) than this is rejected. */
export const WEBHOOK_TOLERANCE_SEC = 300;

const TargetSchema = z.object({
  entity: z.string(),
  kind: z.enum(['pod', 'vm', 'host', 'service', 'node', 'external', 'ip']),
  name: z.string().optional(),
  namespace: z.string().optional(),
  ip: z.string().optional(),
  ref: z.string().optional(),
});

const SnapshotSchema = z.object({
  target: TargetSchema,
  labels: z.record(z.string(), z.string().nullable()),
  extra: z.record(z.string(), z.unknown()).optional(),
  takenAt: z.number(),
});

/** The body Cordon POSTs. `labels` are the labels to set (apply) or to restore, `null` = delete (revert). */
export const WebhookRequestBody = z.object({
  action: z.enum(['apply', 'revert', 'observe', 'extend']),
  leaseId: z.string().nullable(),
  target: TargetSchema,
  labels: z.record(z.string(), z.string().nullable()),
  expiresAt: z.number().nullable(),
  snapshot: SnapshotSchema.optional(),
  /** apply: also cut the target's established connections (the playbook's cut_connections), where the receiver can. */
  cutConnections: z.boolean().optional(),
});
export type WebhookRequestBody = z.infer<typeof WebhookRequestBody>;

/** apply → 200: the exact labels the target had before, for every requested key (`null` = absent). */
export const WebhookApplyResponse = z.object({
  priorLabels: z.record(z.string(), z.string().nullable()),
  /** Anything the receiver needs back at revert; returned to it in `snapshot.extra.receiver`. */
  extra: z.record(z.string(), z.unknown()).optional(),
});
export type WebhookApplyResponse = z.infer<typeof WebhookApplyResponse>;

/** revert → 200 with a RevertResult (an empty object means everything was restored or unchanged), or 204. */
export const WebhookRevertResponse = RevertResult;

/** observe → 200. */
export const WebhookObserveResponse = z.object({
  labels: z.record(z.string(), z.string()),
  contained: z.boolean(),
  expiresInSec: z.number().nonnegative().optional(),
});
export type WebhookObserveResponse = z.infer<typeof WebhookObserveResponse>;

/**
 * The wire contract as JSON Schema (draft 2020-12), for receivers written in other languages. Shipped as
 * connectors/webhook/contract.schema.json; a test keeps the file equal to this.
 */
export function webhookContractJsonSchema(): Record<string, unknown> {
  const part = (schema: z.ZodType) => {
    const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input' }) as Record<string, unknown>;
    return rest;
  };
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'Cordon webhook enforcer: request body and response bodies',
    $defs: {
      request: part(WebhookRequestBody),
      applyResponse: part(WebhookApplyResponse),
      revertResponse: part(WebhookRevertResponse),
      observeResponse: part(WebhookObserveResponse),
    },
  };
}

/** `v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>`; timestamp in Unix seconds, body the exact bytes sent. */
export function signWebhook(secret: string, timestamp: number | string, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export type WebhookVerification = { ok: true } | { ok: false; reason: string };

/**
 * What a receiver does before trusting a request: the timestamp is recent (replay window), and one of the
 * `v1=` signatures (comma-separated; more than one during a secret rotation) matches the HMAC of
 * `timestamp + "." + rawBody` under one of its secrets, compared in constant time. `rawBody` must be the
 * bytes as received, before any JSON parsing.
 */
export function verifyWebhookSignature(input: {
  secrets: string[];
  timestamp: string | undefined;
  signature: string | undefined;
  rawBody: string;
  nowSec?: number;
  toleranceSec?: number;
}): WebhookVerification {
  const { timestamp, signature } = input;
  if (!timestamp || !/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: 'missing or malformed timestamp' };
  const now = input.nowSec ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - Number(timestamp)) > (input.toleranceSec ?? WEBHOOK_TOLERANCE_SEC)) {
    return { ok: false, reason: 'timestamp outside the replay window' };
  }
  const offered = (signature ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('v1='))
    .map((s) => Buffer.from(s.slice(3), 'hex'));
  if (offered.length === 0) return { ok: false, reason: 'missing v1 signature' };
  for (const secret of input.secrets) {
    const expected = Buffer.from(signWebhook(secret, timestamp, input.rawBody).slice(3), 'hex');
    if (offered.some((o) => o.length === expected.length && timingSafeEqual(o, expected))) return { ok: true };
  }
  return { ok: false, reason: 'signature mismatch' };
}

// ---------------------------------------------------------------------------------------------------
// Configuration and the enforcer.

const RetryConfig = z
  .object({
    retries: z.number().int().min(0).max(20).default(5),
    initialMs: z.number().int().min(1).default(200),
    maxMs: z.number().int().min(1).default(5_000),
  })
  .prefault({});

export const WebhookEnforcerConfig = z
  .object({
    url: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }),
    /** HMAC key, at least 32 characters; or `secretFile` to read it from a file (mounted secret). */
    secret: z.string().min(32).optional(),
    secretFile: z.string().min(1).optional(),
    /** Enforcer name as recorded on leases (`webhook`, or e.g. `webhook-fw` when several are configured). */
    name: z
      .string()
      .regex(/^webhook(-[a-z0-9]+)*$/, 'expected webhook or webhook-<suffix>')
      .default('webhook'),
    /** What the receiver's enforcement point can do (reported to playbooks; Cordon does not check it). */
    capabilities: z
      .object({ labels: z.boolean().default(true), kernelExpiry: z.boolean().default(false), connectionCut: z.boolean().default(false) })
      .prefault({}),
    /** Extra static headers, e.g. an Authorization header for a gateway in front of the receiver. */
    headers: z.record(z.string(), z.string()).default({}),
    timeoutMs: z.number().int().min(100).default(5_000),
    /** Upper bound on a receiver's Retry-After. */
    maxRetryAfterMs: z.number().int().min(0).default(60_000),
    retry: RetryConfig,
  })
  .refine((c) => (c.secret === undefined) !== (c.secretFile === undefined), 'expected exactly one of secret, secretFile');
export type WebhookEnforcerConfig = z.infer<typeof WebhookEnforcerConfig>;
export type WebhookEnforcerConfigInput = z.input<typeof WebhookEnforcerConfig>;

export interface WebhookEnforcerOptions {
  logger?: Logger;
  /** Injected for tests. */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  now?: () => number;
}

const ReceiverError = z.object({ error: z.string().optional(), message: z.string().optional() });

export class WebhookEnforcer implements Enforcer {
  readonly name: string;
  readonly capabilities: Capabilities;
  private readonly config: WebhookEnforcerConfig;
  private readonly secret: string;

  constructor(config: WebhookEnforcerConfigInput, private readonly options: WebhookEnforcerOptions = {}) {
    this.config = WebhookEnforcerConfig.parse(config);
    this.name = this.config.name;
    this.capabilities = { ...this.config.capabilities };
    this.secret = this.config.secret ?? readFileSync(this.config.secretFile as string, 'utf8').trim();
    if (this.secret.length < 32) throw new Error(`webhook secret in ${this.config.secretFile} is shorter than 32 characters`);
  }

  /** Observes the target first (its labels as the receiver's layer has them now) for the protection check, then applies. */
  async apply(request: ApplyRequest): Promise<Snapshot> {
    const keys = Object.keys(request.labels);
    if (request.approvedBy === undefined) guardProtected(this.name, request, { labels: (await this.observe(request.target)).labels });
    const body: WebhookRequestBody = {
      action: 'apply',
      leaseId: request.leaseId,
      target: request.target,
      labels: request.labels,
      expiresAt: request.expiresAt,
      ...(request.cutConnections !== undefined && { cutConnections: request.cutConnections }),
    };
    const response = await this.post(body, WebhookApplyResponse);
    if (!response) throw this.badResponse('apply', 'empty response; expected priorLabels');
    const missing = keys.filter((k) => !(k in response.priorLabels));
    if (missing.length > 0) throw this.badResponse('apply', `priorLabels lacks ${missing.join(', ')}`);
    const labels: Record<string, string | null> = {};
    for (const k of keys) labels[k] = response.priorLabels[k] ?? null;
    const extra: Record<string, unknown> = { applied: { ...request.labels } };
    if (response.extra) extra.receiver = response.extra;
    return { target: request.target, labels, extra, takenAt: (this.options.now ?? Date.now)() };
  }

  /** Resolves when every label is back (or already was); throws RevertDriftError when the receiver reports drift. */
  async revert(snapshot: Snapshot, leaseId: string): Promise<void> {
    const body: WebhookRequestBody = {
      action: 'revert',
      leaseId,
      target: snapshot.target,
      labels: snapshot.labels,
      expiresAt: null,
      snapshot,
    };
    const result = (await this.post(body, WebhookRevertResponse)) ?? RevertResult.parse({});
    if (result.supersededBy) {
      this.options.logger?.info({ enforcer: this.name, leaseId, supersededBy: result.supersededBy }, 'revert: target held by a newer lease');
      return;
    }
    if (result.drifted.length > 0) {
      throw new RevertDriftError(`${this.name} revert ${snapshot.target.entity}: left labels changed since apply: ${describeDrift(result.drifted)}`, result);
    }
  }

  async observe(target: Target): Promise<Observation> {
    const body: WebhookRequestBody = { action: 'observe', leaseId: null, target, labels: {}, expiresAt: null };
    const response = await this.post(body, WebhookObserveResponse);
    if (!response) throw this.badResponse('observe', 'empty response; expected labels and contained');
    return {
      target,
      labels: response.labels,
      contained: response.contained,
      ...(response.expiresInSec !== undefined ? { expiresInSec: response.expiresInSec } : {}),
    };
  }

  async extend(target: Target, expiresAt: number, leaseId: string): Promise<void> {
    await this.post({ action: 'extend', leaseId, target, labels: {}, expiresAt }, z.unknown());
  }

  /** Signs and POSTs; each attempt is signed afresh (new timestamp). Returns the parsed body, undefined for 204. */
  private async post<S extends z.ZodType>(body: WebhookRequestBody, schema: S): Promise<z.infer<S> | undefined> {
    const payload = JSON.stringify(body);
    const { retries, initialMs, maxMs } = this.config.retry;
    const sleep = this.options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    let retryAfterMs = 0;
    const context = `${this.name} ${body.action} ${body.target.entity}`;
    return retry(
      async () => {
        retryAfterMs = 0;
        const timestamp = Math.floor((this.options.now ?? Date.now)() / 1000);
        let response: Response;
        try {
          response = await fetch(this.config.url, {
            method: 'POST',
            headers: {
              ...this.config.headers,
              'Content-Type': 'application/json',
              Accept: 'application/json',
              'User-Agent': 'cordon-webhook/1',
              [WEBHOOK_TIMESTAMP_HEADER]: String(timestamp),
              [WEBHOOK_SIGNATURE_HEADER]: signWebhook(this.secret, timestamp, payload),
            },
            body: payload,
            redirect: 'manual',
            signal: AbortSignal.timeout(this.config.timeoutMs),
          });
        } catch (err) {
          const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
          const timedOut = e.name === 'TimeoutError' || e.name === 'AbortError';
          const detail = timedOut ? `no answer within ${this.config.timeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? e.message ?? String(err));
          throw new EnforcerError(`${context}: ${detail}`, true, timedOut ? 'timeout' : 'network');
        }
        const text = await boundedText(response, DEFAULT_JSON_LIMITS.maxBytes);
        if (response.status >= 300) {
          const retriable = [408, 409, 429].includes(response.status) || response.status >= 500;
          if (response.status === 429 || response.status === 503) retryAfterMs = this.retryAfter(response.headers.get('retry-after'));
          const message = response.status < 400 ? `redirect to ${response.headers.get('location') ?? '?'} not followed` : text === undefined ? `(a body over ${DEFAULT_JSON_LIMITS.maxBytes} bytes)` : receiverMessage(text);
          throw new EnforcerError(`${context}: receiver answered ${response.status}: ${message}`, retriable, `http_${response.status}`);
        }
        if (text === undefined) throw this.badResponse(body.action, `body too large: over ${DEFAULT_JSON_LIMITS.maxBytes} bytes`);
        if (response.status === 204 || text.trim() === '') return undefined;
        const json = parseJson(text, DEFAULT_JSON_LIMITS);
        if (!json.ok) throw this.badResponse(body.action, `body is not JSON within the limits: ${json.reason}`);
        const parsed = schema.safeParse(json.value);
        if (!parsed.success) throw this.badResponse(body.action, z.prettifyError(parsed.error));
        return parsed.data as z.infer<S>;
      },
      {
        retries,
        initialMs,
        maxMs,
        retriable: (err) => err instanceof EnforcerError && err.retriable,
        onRetry: (err, attempt, delayMs) =>
          this.options.logger?.warn(
            { enforcer: this.name, action: body.action, attempt, delayMs: Math.max(delayMs, retryAfterMs), err: (err as Error).message },
            'retrying',
          ),
        sleep: (ms) => sleep(Math.max(ms, retryAfterMs)),
        ...(this.options.random ? { random: this.options.random } : {}),
      },
    );
  }

  private retryAfter(value: string | null): number {
    if (!value) return 0;
    const seconds = Number(value);
    const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - Date.now();
    return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), this.config.maxRetryAfterMs) : 0;
  }

  private badResponse(action: string, detail: string): EnforcerError {
    return new EnforcerError(`${this.name} ${action}: receiver response does not follow the contract: ${detail}`, false, 'bad_response');
  }
}

/** A receiver's answer as text, read up to `max` bytes; undefined past that (the rest is not read). */
async function boundedText(response: Response, max: number): Promise<string | undefined> {
  if (!response.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += chunk.byteLength;
    if (size > max) return undefined; // leaving the loop cancels the stream
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function receiverMessage(text: string): string {
  try {
    const parsed = ReceiverError.safeParse(JSON.parse(text));
    if (parsed.success && (parsed.data.error ?? parsed.data.message)) return (parsed.data.error ?? parsed.data.message) as string;
  } catch {
    // not JSON: use the text
  }
  return text.trim().slice(0, 500) || '(no body)';
}
