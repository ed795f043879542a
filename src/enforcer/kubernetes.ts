import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type * as K8s from '@kubernetes/client-node';
import type { Logger } from '../logger';
import { retry } from '../retry';
import {
  EnforcerError,
  type ApplyRequest,
  type Capabilities,
  type Enforcer,
  type Fence,
  FencedCallError,
  type Observation,
  type Snapshot,
  type Target,
  TargetGoneError,
} from './enforcer';
import { loadKubernetesClient } from './kubernetes-client';
import { guardProtected } from './protection';
import { describeDrift, RevertDriftError, type RevertResult } from './webhook';

/**
 * Kubernetes enforcer: quarantine labels on pods, written with JSON merge patch
 * (`application/merge-patch+json`) through @kubernetes/client-node 1.x. Containment itself is done by a
 * NetworkPolicy (or a Cilium / Calico cluster-wide policy) that selects the quarantine label; see
 * connectors/kubernetes/ and docs/connectors/kubernetes.md.
 *
 * One write per call, guarded by optimistic concurrency: every patch carries the `resourceVersion` it was
 * computed from, so a concurrent change makes the API server answer 409 and the call is retried from a
 * fresh read. The labels and Cordon's own record of the quarantine (the state annotation: lease id, the
 * exact prior labels, the labels it set) go in the same patch, so they change together or not at all.
 * The annotation is what makes apply idempotent across crashes: applying again for the same lease returns
 * the prior labels recorded the first time, not the quarantine labels the pod carries now.
 */

const LabelKey = z
  .string()
  .regex(
    /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/,
    'expected a Kubernetes label key ([prefix/]name, name at most 63 characters)',
  );
const LabelValue = z
  .string()
  .regex(/^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/, 'expected a Kubernetes label value (at most 63 characters)');

const RetryConfig = z
  .object({
    retries: z.number().int().min(0).max(20).default(5),
    initialMs: z.number().int().min(1).default(200),
    maxMs: z.number().int().min(1).default(5_000),
  })
  .prefault({});

const TokenConnection = z
  .object({
    mode: z.literal('token'),
    /** API server URL. Plain `http://` is accepted only with `skipTLSVerify: true` (the client library's rule). */
    server: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }),
    token: z.string().min(1).optional(),
    tokenFile: z.string().min(1).optional(),
    caFile: z.string().min(1).optional(),
    skipTLSVerify: z.boolean().default(false),
  })
  .refine((c) => (c.token === undefined) !== (c.tokenFile === undefined), 'expected exactly one of token, tokenFile');

export const KubernetesEnforcerConfig = z.object({
  /** How to reach the API server: the pod's service account, a kubeconfig file, or a URL and token. */
  connection: z
    .discriminatedUnion('mode', [
      z.object({ mode: z.literal('inCluster') }),
      z.object({ mode: z.literal('kubeconfig'), path: z.string().min(1).optional(), context: z.string().min(1).optional() }),
      TokenConnection,
    ])
    .default({ mode: 'inCluster' }),
  /** The label the quarantine NetworkPolicy selects; `observe` reports `contained` when the pod carries it. */
  quarantineLabel: z
    .object({ key: LabelKey.default('cordon.io/quarantine'), value: LabelValue.default('true') })
    .prefault({}),
  /** Annotation holding Cordon's record of the quarantine (lease, prior labels, labels set). */
  stateAnnotation: LabelKey.default('cordon.io/quarantine-state'),
  /** Annotation holding the epoch of the last ledger writer that wrote the pod: a lower epoch is refused (fencing). */
  fenceAnnotation: LabelKey.default('cordon.io/writer-epoch'),
  fieldManager: z.string().min(1).max(128).default('cordon'),
  requestTimeoutMs: z.number().int().min(100).default(10_000),
  retry: RetryConfig,
});
export type KubernetesEnforcerConfig = z.infer<typeof KubernetesEnforcerConfig>;
export type KubernetesEnforcerConfigInput = z.input<typeof KubernetesEnforcerConfig>;

/** Cordon's record on the pod, in the state annotation. Parsed with zod: anyone with patch rights can edit it. */
const QuarantineState = z.object({
  v: z.literal(1),
  lease: z.string().min(1),
  prior: z.record(z.string(), z.string().nullable()),
  applied: z.record(z.string(), z.string()),
  takenAt: z.number(),
});
type QuarantineState = z.infer<typeof QuarantineState>;

const SnapshotExtra = z.object({ applied: z.record(z.string(), z.string()) });

const KubernetesStatus = z.object({
  message: z.string().optional(),
  reason: z.string().optional(),
  details: z.object({ kind: z.string().optional(), name: z.string().optional() }).optional(),
});

export interface KubernetesEnforcerOptions {
  logger?: Logger;
  /** Injected for tests (backoff without waiting). */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  now?: () => number;
}

interface PodRef {
  namespace: string;
  name: string;
}

export class KubernetesEnforcer implements Enforcer {
  readonly name = 'kubernetes';
  /** A NetworkPolicy applies to new connections; whether established ones are cut depends on the CNI. */
  readonly capabilities: Capabilities = { labels: true, kernelExpiry: false, connectionCut: false };

  private readonly config: KubernetesEnforcerConfig;
  private readonly api: K8s.CoreV1Api;
  private readonly readOptions: K8s.ConfigurationOptions;
  private readonly patchOptions: K8s.ConfigurationOptions;

  constructor(config: KubernetesEnforcerConfigInput, private readonly options: KubernetesEnforcerOptions = {}) {
    this.config = KubernetesEnforcerConfig.parse(config);
    const k8s = loadKubernetesClient();
    this.api = makeKubeConfig(k8s, this.config.connection).makeApiClient(k8s.CoreV1Api);
    const timeoutMs = this.config.requestTimeoutMs;
    const timeout: K8s.ObservableMiddleware = {
      pre: (ctx) => {
        ctx.setSignal(AbortSignal.timeout(timeoutMs));
        return new k8s.Observable(Promise.resolve(ctx));
      },
      post: (rsp) => new k8s.Observable(Promise.resolve(rsp)),
    };
    this.readOptions = { middleware: [timeout], middlewareMergeStrategy: 'append' };
    // The generated patch call picks the first patch media type it knows (JSON Patch); the header
    // middleware replaces it after the request is built, so the server reads the body as a merge patch.
    this.patchOptions = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch, this.readOptions);
  }

  async apply(request: ApplyRequest): Promise<Snapshot> {
    const pod = podRef(request.target);
    const keys = Object.keys(request.labels);
    if (keys.length === 0) throw new EnforcerError('kubernetes apply: no labels to set', false, 'bad_request');
    return this.withRetry('apply', pod, async () => {
      const current = await this.read(pod);
      this.checkFence(current, pod, 'apply', request.fence);
      const labels = current.metadata?.labels ?? {};
      guardProtected(this.name, request, { ...pod, labels, ...(current.status?.podIP ? { ip: current.status.podIP } : {}) });
      const state = this.readState(current, pod);
      const ownState = state?.lease === request.leaseId ? state : undefined;
      // The prior value of a label is what it had before Cordon first touched it: from the state
      // annotation when a quarantine is recorded there (ours on a replay, or another lease's), else now.
      const prior: Record<string, string | null> = {};
      for (const key of keys) prior[key] = state && key in state.prior ? (state.prior[key] ?? null) : (labels[key] ?? null);
      const takenAt = ownState?.takenAt ?? this.now();
      const snapshot: Snapshot = { target: request.target, labels: prior, extra: { applied: { ...request.labels } }, takenAt };
      if (ownState && keys.every((k) => labels[k] === request.labels[k] && ownState.applied[k] === request.labels[k])) {
        return snapshot; // already applied for this lease: nothing to write
      }
      const next: QuarantineState = {
        v: 1,
        lease: request.leaseId,
        prior: { ...state?.prior, ...prior },
        applied: { ...state?.applied, ...request.labels },
        takenAt,
      };
      await this.patch(pod, {
        metadata: {
          resourceVersion: current.metadata?.resourceVersion,
          labels: { ...request.labels },
          annotations: { [this.config.stateAnnotation]: JSON.stringify(next), ...this.fenceMark(request.fence) },
        },
      });
      return snapshot;
    });
  }

  /**
   * Restores the snapshot: a label that still holds the value Cordon set goes back to its prior value
   * (deleted when it was absent); the state annotation is removed in the same write. A label someone
   * changed since apply is left alone: revert then throws RevertDriftError (not retriable, everything
   * else already restored) so the caller can record the drift. A repeated revert finds nothing to do.
   * When another lease has quarantined the pod since, its snapshot holds the original labels: this
   * revert changes nothing and resolves.
   */
  async revert(snapshot: Snapshot, leaseId: string, fence?: Fence): Promise<void> {
    const pod = podRef(snapshot.target);
    const extra = SnapshotExtra.safeParse(snapshot.extra);
    const result = await this.withRetry('revert', pod, async (): Promise<RevertResult> => {
      const current = await this.read(pod);
      this.checkFence(current, pod, 'revert', fence);
      const labels = current.metadata?.labels ?? {};
      const state = this.readState(current, pod);
      if (state && state.lease !== leaseId) return { restored: [], unchanged: [], drifted: [], supersededBy: state.lease };
      // The pod's record may hold more than this snapshot: labels an earlier lease set, taken over
      // by this one. Reverting this lease reverts all of them.
      const applied = { ...state?.applied, ...(extra.success ? extra.data.applied : {}) };
      const priors = { ...state?.prior, ...snapshot.labels };
      const outcome: RevertResult = { restored: [], unchanged: [], drifted: [] };
      const patchLabels: Record<string, string | null> = {};
      for (const [key, prior] of Object.entries(priors)) {
        const actual = labels[key] ?? null;
        const expected = applied[key] ?? null;
        if (actual === prior) outcome.unchanged.push(key);
        else if (expected !== null && actual === expected) {
          patchLabels[key] = prior;
          outcome.restored.push(key);
        } else outcome.drifted.push({ key, expected, actual, prior });
      }
      const hasState = current.metadata?.annotations?.[this.config.stateAnnotation] !== undefined;
      if (outcome.restored.length > 0 || hasState) {
        await this.patch(pod, {
          metadata: {
            resourceVersion: current.metadata?.resourceVersion,
            labels: patchLabels,
            annotations: { [this.config.stateAnnotation]: null, ...this.fenceMark(fence) },
          },
        });
      }
      return outcome;
    });
    if (result.supersededBy) {
      this.options.logger?.info({ enforcer: this.name, pod, leaseId, supersededBy: result.supersededBy }, 'revert: pod held by a newer lease');
      return;
    }
    if (result.drifted.length > 0) {
      throw new RevertDriftError(
        `kubernetes revert pod ${pod.namespace}/${pod.name}: left labels changed since apply: ${describeDrift(result.drifted)}`,
        result,
      );
    }
  }

  async observe(target: Target): Promise<Observation> {
    const pod = podRef(target);
    const current = await this.withRetry('observe', pod, () => this.read(pod));
    const labels = { ...current.metadata?.labels };
    const { key, value } = this.config.quarantineLabel;
    return { target, labels, contained: labels[key] === value };
  }

  /**
   * Fencing: the pod records the epoch of the last writer that changed it; a call from an older
   * epoch (a paused or partitioned old leader) is refused. The patch that follows carries the
   * resourceVersion it was read at, so a newer writer's change in between makes it a 409, retried
   * from a fresh read, and refused then.
   */
  private checkFence(pod: K8s.V1Pod, ref: PodRef, op: string, fence: Fence | undefined): void {
    if (!fence) return;
    const raw = pod.metadata?.annotations?.[this.config.fenceAnnotation];
    const seen = raw !== undefined && /^\d{1,15}$/.test(raw) ? Number(raw) : 0;
    if (seen > fence.epoch) {
      throw new FencedCallError(`kubernetes ${op} pod ${ref.namespace}/${ref.name} refused: the pod was written by ledger writer epoch ${seen}, this writer is epoch ${fence.epoch} (${fence.token}): a newer writer took over`);
    }
  }

  private fenceMark(fence: Fence | undefined): Record<string, string> {
    return fence ? { [this.config.fenceAnnotation]: String(fence.epoch) } : {};
  }

  private read(pod: PodRef): Promise<K8s.V1Pod> {
    return this.api.readNamespacedPod(pod, this.readOptions);
  }

  private patch(pod: PodRef, body: unknown): Promise<K8s.V1Pod> {
    return this.api.patchNamespacedPod({ ...pod, body, fieldManager: this.config.fieldManager }, this.patchOptions);
  }

  private readState(pod: K8s.V1Pod, ref: PodRef): QuarantineState | undefined {
    const raw = pod.metadata?.annotations?.[this.config.stateAnnotation];
    if (raw === undefined) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      parsed = undefined;
    }
    const state = QuarantineState.safeParse(parsed);
    if (state.success) return state.data;
    this.options.logger?.warn({ enforcer: this.name, pod: ref, annotation: this.config.stateAnnotation }, 'ignoring unreadable quarantine state annotation');
    return undefined;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /** Runs one read-modify-write; each attempt starts from a fresh read, so a 409 is retried against the latest object. */
  private withRetry<T>(op: string, pod: PodRef, call: () => Promise<T>): Promise<T> {
    const { retries, initialMs, maxMs } = this.config.retry;
    let retryAfterMs = 0;
    const sleep = this.options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    return retry(
      async () => {
        try {
          return await call();
        } catch (err) {
          const failure = classify(err, `kubernetes ${op} pod ${pod.namespace}/${pod.name}`, pod);
          retryAfterMs = failure.retryAfterMs;
          throw failure.error;
        }
      },
      {
        retries,
        initialMs,
        maxMs,
        retriable: (err) => err instanceof EnforcerError && err.retriable,
        onRetry: (err, attempt, delayMs) =>
          this.options.logger?.warn(
            { enforcer: this.name, op, pod, attempt, delayMs: Math.max(delayMs, retryAfterMs), code: (err as EnforcerError).code, err: (err as Error).message },
            'retrying',
          ),
        sleep: (ms) => sleep(Math.max(ms, retryAfterMs)),
        ...(this.options.random ? { random: this.options.random } : {}),
      },
    );
  }
}

/** RFC 1123 label: a namespace name. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** RFC 1123 subdomain (at most 253, dot-separated labels): a pod name. Never `.` or `..`, no `/` or `%`. */
export function isDnsSubdomain(name: string): boolean {
  return name.length <= 253 && name.split('.').every((label) => DNS_LABEL.test(label));
}

export function isDnsLabel(name: string): boolean {
  return DNS_LABEL.test(name);
}

/**
 * The pod a target names, its names checked as the API server would before any URL is built from
 * them: a name such as `..` would otherwise turn `/namespaces/{ns}/pods/..` into the Namespace's URL.
 */
function podRef(target: Target): PodRef {
  if (target.kind !== 'pod') {
    throw new EnforcerError(`kubernetes: target ${target.entity} is a ${target.kind}, not a pod`, false, 'target_unsupported');
  }
  // Fall back to the entity key (`pod:<namespace>/<name>`) for what the target does not name.
  const fromEntity = /^pod:([^/]+)\/(.+)$/.exec(target.entity);
  const namespace = target.namespace ?? fromEntity?.[1];
  const name = target.name ?? fromEntity?.[2];
  if (!namespace || !name) {
    throw new EnforcerError(`kubernetes: target ${target.entity} has no namespace and name`, false, 'target_unsupported');
  }
  if (!isDnsLabel(namespace)) {
    throw new EnforcerError(`kubernetes: target ${target.entity}: namespace ${JSON.stringify(namespace.slice(0, 80))} is not an RFC 1123 label`, false, 'invalid_target');
  }
  if (!isDnsSubdomain(name)) {
    throw new EnforcerError(`kubernetes: target ${target.entity}: pod name ${JSON.stringify(name.slice(0, 80))} is not an RFC 1123 subdomain`, false, 'invalid_target');
  }
  return { namespace, name };
}

function makeKubeConfig(k8s: typeof K8s, connection: KubernetesEnforcerConfig['connection']): K8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  switch (connection.mode) {
    case 'inCluster':
      kc.loadFromCluster();
      break;
    case 'kubeconfig':
      if (connection.path) kc.loadFromFile(connection.path);
      else kc.loadFromDefault();
      if (connection.context) kc.setCurrentContext(connection.context);
      break;
    case 'token': {
      const token = connection.token ?? readFileSync(connection.tokenFile as string, 'utf8').trim();
      kc.loadFromOptions({
        clusters: [
          {
            name: 'cordon',
            server: connection.server,
            skipTLSVerify: connection.skipTLSVerify,
            ...(connection.caFile ? { caFile: connection.caFile } : {}),
          },
        ],
        users: [{ name: 'cordon', token }],
        contexts: [{ name: 'cordon', cluster: 'cordon', user: 'cordon' }],
        currentContext: 'cordon',
      });
      break;
    }
  }
  return kc;
}

/**
 * Maps a client failure to an EnforcerError. Duck-typed rather than `instanceof`: the client library may
 * live in another realm (see kubernetes-client.ts), and its ApiException is only `{ code, body, headers }`.
 */
function classify(err: unknown, context: string, pod: PodRef): { error: EnforcerError; retryAfterMs: number } {
  if (err instanceof EnforcerError) return { error: err, retryAfterMs: 0 };
  const e = (err ?? {}) as { code?: unknown; body?: unknown; headers?: unknown; name?: unknown; message?: unknown };
  if (typeof e.code === 'number' && e.code >= 100 && e.code <= 599) {
    const status = e.code;
    const parsed = parseStatus(e.body);
    // The generated client drops the body of a 401; the API server's Status says just "Unauthorized".
    const message = parsed.message ?? (status === 401 ? 'Unauthorized' : `HTTP ${status}`);
    const reason = parsed.reason ?? (status === 401 ? 'Unauthorized' : `http_${status}`);
    // The API server's 404 for the pod itself (details name the pod), not for a path it does not serve.
    if (status === 404 && parsed.details?.kind === 'pods' && parsed.details.name === pod.name) return { error: new TargetGoneError(`${context}: ${message}`), retryAfterMs: 0 };
    const retriable = status === 409 || status === 429 || status >= 500;
    const headers = (e.headers ?? {}) as Record<string, unknown>;
    return {
      error: new EnforcerError(`${context}: ${message}`, retriable, reason),
      retryAfterMs: status === 429 || status === 503 ? retryAfterMs(headers['retry-after']) : 0,
    };
  }
  const message = typeof e.message === 'string' ? e.message : String(err);
  if (isNetworkError(e)) return { error: new EnforcerError(`${context}: ${message}`, true, 'network'), retryAfterMs: 0 };
  return { error: new EnforcerError(`${context}: ${message}`, false, 'client'), retryAfterMs: 0 };
}

function parseStatus(body: unknown): z.infer<typeof KubernetesStatus> {
  let value = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body);
    } catch {
      return body.trim() ? { message: body.trim().slice(0, 500) } : {};
    }
  }
  const status = KubernetesStatus.safeParse(value);
  return status.success ? status.data : {};
}

/** undici's fetch (client-node 2) reports a refused or reset connection as `TypeError: fetch failed` with the errno on `cause`. */
function isNetworkError(e: { code?: unknown; name?: unknown; cause?: unknown }, depth = 0): boolean {
  if (e.name === 'FetchError' || e.name === 'AbortError' || e.name === 'TimeoutError') return true;
  if (typeof e.code === 'string' && /^(E[A-Z_]+|UND_ERR_[A-Z_]+)$/.test(e.code)) return true;
  return depth < 3 && typeof e.cause === 'object' && e.cause !== null && isNetworkError(e.cause, depth + 1);
}

/** `Retry-After` in seconds (the API server's form); an HTTP date is accepted too. Capped at a minute. */
function retryAfterMs(value: unknown): number {
  if (typeof value !== 'string') return 0;
  const seconds = Number(value);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), 60_000) : 0;
}
