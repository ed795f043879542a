import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';

/**
 * A contract server for the subset of the Kubernetes API that Cordon uses, written from the API's
 * documented behaviour, in-process on 127.0.0.1:0 (plain HTTP):
 *
 *   GET   /api/v1/namespaces/{ns}/pods/{name}
 *   PATCH /api/v1/namespaces/{ns}/pods/{name}   (application/merge-patch+json; RFC 7386, null deletes)
 *   GET   /api/v1/namespaces/{ns}               (the Namespace object, which exists for every pod's namespace)
 *   PATCH /api/v1/namespaces/{ns}
 *
 * - Names: a pod is named by an RFC 1123 subdomain and a namespace by an RFC 1123 label (`addPod` refuses
 *   others, as the API server refuses to create them). A name that cannot be a path segment (`.`, `..`, or
 *   one containing `/` or `%` once decoded) is answered 400 BadRequest `Name parameter invalid`, as the
 *   API server's storage key function does; any other name of no pod is 404 NotFound. A client that lets
 *   its URL library resolve `pods/..` reaches the Namespace's URL, and this server serves the Namespace
 *   there, as a real cluster does.
 * - `deletePod` removes a pod: the GET and PATCH after it are 404 NotFound, with the pod's name and kind
 *   in `details`.
 * - Objects carry `metadata.resourceVersion`, a cluster-wide counter bumped on every write that changes
 *   the object (a patch that changes nothing is not a write and keeps the version, as the API server does).
 * - A patch carrying `metadata.resourceVersion` is a precondition: a stale one gets 409 Conflict.
 * - Errors are `Status` objects (kind Status, apiVersion v1, status Failure, reason, code, message).
 * - Authentication: `Authorization: Bearer <token>`; an unknown token gets 401, a token whose user lacks
 *   the verb gets 403 with the API server's RBAC message.
 * - Label keys and values are validated as the API server does (qualified names, 63 characters,
 *   alphanumeric at both ends) and answered 422 Invalid; annotation values must be strings.
 * - application/strategic-merge-patch+json is accepted and applied like a merge patch, which is what a
 *   strategic merge patch does to the string maps (labels, annotations) this subset covers. JSON Patch
 *   and server-side apply are real API features outside this subset: they get 415 with a message that
 *   says so, as does any other media type.
 *
 * Fault injection for tests: `injectConflictAfterNextRead` (a concurrent writer changes the pod between
 * the client's read and its next patch), `failNext` (5xx / 429 with Retry-After).
 */

export interface Pod {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    resourceVersion: string;
    creationTimestamp: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [key: string]: unknown;
  };
  spec: Record<string, unknown>;
  status: Record<string, unknown>;
}

export interface KubeUser {
  /** e.g. `system:serviceaccount:cordon:cordon` */
  user: string;
  /** Verbs on pods the user's roles grant. */
  verbs: Array<'get' | 'patch'>;
  /** Namespaces the grant covers; all when absent (a ClusterRoleBinding). */
  namespaces?: string[];
  /** Verbs on Namespace objects (a ClusterRole); none when absent. */
  namespaceVerbs?: Array<'get' | 'patch'>;
}

export interface NamespaceObject {
  apiVersion: 'v1';
  kind: 'Namespace';
  metadata: { name: string; uid: string; resourceVersion: string; creationTimestamp: string; labels?: Record<string, string>; [key: string]: unknown };
  spec: Record<string, unknown>;
  status: Record<string, unknown>;
}

export interface RecordedRequest {
  method: string;
  path: string;
  contentType: string | undefined;
  status: number;
  body: unknown;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const REASONS: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  415: 'UnsupportedMediaType',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
};

export function statusObject(code: number, message: string, details?: Record<string, unknown>): Record<string, unknown> {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason: REASONS[code] ?? 'Unknown',
    ...(details ? { details } : {}),
    code,
  };
}

class HttpFailure extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

const POD_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/;
// The API server's router ignores a trailing slash (go-restful splits the trimmed path): `pods/..` resolves to it.
const NAMESPACE_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/?$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** The API server's path-segment rule for names (apimachinery IsValidPathSegmentName); empty when valid. */
export function pathSegmentNameErrors(name: string): string[] {
  if (name === '.' || name === '..') return [`may not be '${name}'`];
  return ['/', '%'].filter((c) => name.includes(c)).map((c) => `may not contain '${c}'`);
}

function isDnsSubdomain(name: string): boolean {
  return name.length <= 253 && name.split('.').every((l) => l.length <= 63 && DNS1123_LABEL.test(l));
}
const NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const NAME_PART_MSG =
  "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const MAX_ANNOTATIONS_BYTES = 256 * 1024;

/** Errors of a qualified name (`[prefix/]name`), as the API server words them; empty when valid. */
export function qualifiedNameErrors(key: string): string[] {
  const parts = key.split('/');
  let name = key;
  const errors: string[] = [];
  if (parts.length > 2) {
    return [
      "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
    ];
  }
  if (parts.length === 2) {
    const prefix = parts[0] as string;
    name = parts[1] as string;
    if (prefix.length === 0) errors.push('prefix part must be non-empty');
    else if (prefix.length > 253) errors.push('prefix part must be no more than 253 characters');
    else if (!prefix.split('.').every((l) => DNS1123_LABEL.test(l))) {
      errors.push(
        "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
      );
    }
  }
  if (name.length === 0) errors.push('name part must be non-empty');
  else {
    if (name.length > 63) errors.push('name part must be no more than 63 characters');
    if (!NAME_PART.test(name)) errors.push(NAME_PART_MSG);
  }
  return errors;
}

export function labelValueErrors(value: string): string[] {
  const errors: string[] = [];
  if (value.length > 63) errors.push('must be no more than 63 characters');
  if (!LABEL_VALUE.test(value)) errors.push(LABEL_VALUE_MSG);
  return errors;
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: Json | undefined, patch: Json): Json {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const result: { [key: string]: Json } =
    target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function sameObject(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value as object)
        .sort()
        .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

export class KubernetesContractServer {
  readonly requests: RecordedRequest[] = [];
  private readonly pods = new Map<string, Pod>();
  private readonly namespaces = new Map<string, NamespaceObject>();
  private readonly users: Map<string, KubeUser>;
  private revision = 1000;
  private server: Server | undefined;
  private readonly afterRead = new Map<string, Array<(pod: Pod) => void>>();
  private failures: Array<{ status: number; retryAfterSec?: number }> = [];
  url = '';

  constructor(tokens: Record<string, KubeUser> = {}) {
    this.users = new Map(Object.entries(tokens));
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

  addPod(input: { namespace: string; name: string; labels?: Record<string, string>; annotations?: Record<string, string> }): Pod {
    if (!(input.namespace.length <= 63 && DNS1123_LABEL.test(input.namespace))) throw new Error(`namespace ${JSON.stringify(input.namespace)} is not an RFC 1123 label`);
    if (!isDnsSubdomain(input.name)) throw new Error(`pod name ${JSON.stringify(input.name)} is not an RFC 1123 subdomain`);
    this.addNamespace(input.namespace);
    const pod: Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: input.name,
        namespace: input.namespace,
        uid: randomUUID(),
        resourceVersion: String(++this.revision),
        creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        ...(input.labels ? { labels: { ...input.labels } } : {}),
        ...(input.annotations ? { annotations: { ...input.annotations } } : {}),
      },
      spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] },
      status: { phase: 'Running' },
    };
    this.pods.set(`${input.namespace}/${input.name}`, pod);
    return clone(pod);
  }

  /** The namespace, created when absent (labels given replace its labels). */
  addNamespace(name: string, labels?: Record<string, string>): NamespaceObject {
    let ns = this.namespaces.get(name);
    if (!ns) {
      ns = {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name, uid: randomUUID(), resourceVersion: String(++this.revision), creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), labels: { 'kubernetes.io/metadata.name': name } },
        spec: { finalizers: ['kubernetes'] },
        status: { phase: 'Active' },
      };
      this.namespaces.set(name, ns);
    }
    if (labels) {
      ns.metadata.labels = { 'kubernetes.io/metadata.name': name, ...labels };
      ns.metadata.resourceVersion = String(++this.revision);
    }
    return clone(ns);
  }

  namespace(name: string): NamespaceObject | undefined {
    const ns = this.namespaces.get(name);
    return ns ? clone(ns) : undefined;
  }

  /** The pod is deleted (by its controller, an operator, an eviction). */
  deletePod(namespace: string, name: string): void {
    if (!this.pods.delete(`${namespace}/${name}`)) throw new Error(`no pod ${namespace}/${name}`);
    ++this.revision;
  }

  pod(namespace: string, name: string): Pod | undefined {
    const pod = this.pods.get(`${namespace}/${name}`);
    return pod ? clone(pod) : undefined;
  }

  /** Another writer (an operator, a controller) changes the pod now: a real write, new resourceVersion. */
  update(namespace: string, name: string, change: (pod: Pod) => void): Pod {
    const pod = this.pods.get(`${namespace}/${name}`);
    if (!pod) throw new Error(`no pod ${namespace}/${name}`);
    change(pod);
    pod.metadata.resourceVersion = String(++this.revision);
    return clone(pod);
  }

  /** After the next GET of this pod has been answered, another writer changes it (before the client can patch). */
  injectConflictAfterNextRead(namespace: string, name: string, change: (pod: Pod) => void): void {
    const key = `${namespace}/${name}`;
    this.afterRead.set(key, [...(this.afterRead.get(key) ?? []), change]);
  }

  /** The next requests (any) fail with these statuses, in order. */
  failNext(...failures: Array<{ status: number; retryAfterSec?: number }>): void {
    this.failures.push(...failures);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    // The path as sent, without resolving `.` and `..` (the API server does not resolve them either).
    const [pathname = '/', query = ''] = (req.url ?? '/').split('?');
    const url = { pathname, searchParams: new URLSearchParams(query) };
    const contentType = req.headers['content-type'];
    let status = 200;
    let body: unknown;
    let afterSend: (() => void) | undefined;
    try {
      const injected = this.failures.shift();
      if (injected) {
        if (injected.retryAfterSec !== undefined) res.setHeader('Retry-After', String(injected.retryAfterSec));
        throw new HttpFailure(injected.status, injected.status === 429 ? 'Too many requests, please try again later.' : 'injected failure');
      }
      const user = this.authenticate(req);
      const nsMatch = NAMESPACE_PATH.exec(url.pathname);
      const match = POD_PATH.exec(url.pathname);
      if (nsMatch) {
        body = this.namespaceRequest(user, req.method ?? '', decodeURIComponent(nsMatch[1] as string), contentType, raw);
      } else {
        if (!match) throw new HttpFailure(404, 'the server could not find the requested resource');
        ({ body, afterSend } = this.podRequest(user, req.method ?? '', decodeURIComponent(match[1] as string), decodeURIComponent(match[2] as string), contentType, raw, url.searchParams));
      }
    } catch (err) {
      if (!(err instanceof HttpFailure)) throw err;
      status = err.code;
      body = statusObject(err.code, err.message, err.details);
    }
    this.requests.push({ method: req.method ?? '', path: url.pathname, contentType, status, body: raw ? safeJson(raw) : undefined });
    // The concurrent writer runs before the answer is released: the client holds a version that is
    // already stale when it computes its patch, as when a write lands between its read and its patch.
    afterSend?.();
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private podRequest(
    user: KubeUser,
    method: string,
    namespace: string,
    name: string,
    contentType: string | undefined,
    raw: string,
    query: URLSearchParams,
  ): { body: unknown; afterSend?: () => void } {
    const invalid = pathSegmentNameErrors(name);
    if (invalid.length > 0) throw new HttpFailure(400, `Name parameter invalid: ${JSON.stringify(name)}: ${invalid.join(';')}`);
    if (method === 'GET') {
      this.authorize(user, 'get', namespace, name);
      const body = this.getPod(namespace, name);
      const change = this.afterRead.get(`${namespace}/${name}`)?.shift();
      return change ? { body, afterSend: () => this.update(namespace, name, change) } : { body };
    }
    if (method === 'PATCH') {
      this.authorize(user, 'patch', namespace, name);
      return { body: this.patchPod(namespace, name, contentType, raw, query) };
    }
    throw new HttpFailure(405, `the server does not allow this method on the requested resource`);
  }

  /** The Namespace object: what a pod URL ending in `/pods/..` resolves to. */
  private namespaceRequest(user: KubeUser, method: string, name: string, contentType: string | undefined, raw: string): NamespaceObject {
    const invalid = pathSegmentNameErrors(name);
    if (invalid.length > 0) throw new HttpFailure(400, `Name parameter invalid: ${JSON.stringify(name)}: ${invalid.join(';')}`);
    const verb = method === 'GET' ? 'get' : method === 'PATCH' ? 'patch' : undefined;
    if (!verb) throw new HttpFailure(405, `the server does not allow this method on the requested resource`);
    if (!user.namespaceVerbs?.includes(verb)) {
      throw new HttpFailure(403, `namespaces "${name}" is forbidden: User "${user.user}" cannot ${verb} resource "namespaces" in API group "" at the cluster scope`, { name, kind: 'namespaces' });
    }
    const current = this.namespaces.get(name);
    if (!current) throw new HttpFailure(404, `namespaces "${name}" not found`, { name, kind: 'namespaces' });
    if (verb === 'get') return clone(current);
    const mediaType = (contentType ?? '').split(';')[0]?.trim().toLowerCase();
    if (mediaType !== 'application/merge-patch+json' && mediaType !== 'application/strategic-merge-patch+json') {
      throw new HttpFailure(415, 'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json');
    }
    let patch: Json;
    try {
      patch = JSON.parse(raw) as Json;
    } catch (err) {
      throw new HttpFailure(400, `error decoding patch: ${(err as Error).message}`);
    }
    const { resourceVersion: wanted, ...metadataPatch } = ((patch as { metadata?: Record<string, Json> } | null)?.metadata ?? {}) as Record<string, Json>;
    if (wanted !== undefined && wanted !== null && String(wanted) !== current.metadata.resourceVersion) {
      throw new HttpFailure(409, `Operation cannot be fulfilled on namespaces "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, kind: 'namespaces' });
    }
    const next = mergePatch(clone(current) as unknown as Json, { metadata: metadataPatch } as Json) as unknown as NamespaceObject;
    next.metadata.resourceVersion = String(++this.revision);
    this.namespaces.set(name, next);
    return clone(next);
  }

  private authenticate(req: IncomingMessage): KubeUser {
    const header = req.headers.authorization ?? '';
    const token = /^Bearer (.+)$/.exec(header)?.[1];
    const user = token ? this.users.get(token) : undefined;
    if (!user) throw new HttpFailure(401, 'Unauthorized');
    return user;
  }

  private authorize(user: KubeUser, verb: 'get' | 'patch', namespace: string, name: string): void {
    const allowed = user.verbs.includes(verb) && (!user.namespaces || user.namespaces.includes(namespace));
    if (!allowed) {
      throw new HttpFailure(
        403,
        `pods "${name}" is forbidden: User "${user.user}" cannot ${verb} resource "pods" in API group "" in the namespace "${namespace}"`,
        { name, kind: 'pods' },
      );
    }
  }

  private getPod(namespace: string, name: string): Pod {
    const pod = this.pods.get(`${namespace}/${name}`);
    if (!pod) throw new HttpFailure(404, `pods "${name}" not found`, { name, kind: 'pods' });
    return clone(pod);
  }

  private patchPod(namespace: string, name: string, contentType: string | undefined, raw: string, query: URLSearchParams): Pod {
    const mediaType = (contentType ?? '').split(';')[0]?.trim().toLowerCase();
    if (mediaType === 'application/json-patch+json' || mediaType === 'application/apply-patch+yaml') {
      throw new HttpFailure(415, `${mediaType} is a Kubernetes patch type outside this contract server's subset (merge patch only)`);
    }
    if (mediaType !== 'application/merge-patch+json' && mediaType !== 'application/strategic-merge-patch+json') {
      throw new HttpFailure(
        415,
        'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json',
      );
    }
    const fieldManager = query.get('fieldManager');
    if (fieldManager !== null && (fieldManager.length > 128 || !/^[\x20-\x7e]*$/.test(fieldManager))) {
      throw new HttpFailure(422, `fieldManager: Invalid value: "${fieldManager}": must be less than 128 printable characters`);
    }
    const current = this.pods.get(`${namespace}/${name}`);
    if (!current) throw new HttpFailure(404, `pods "${name}" not found`, { name, kind: 'pods' });
    let patch: Json;
    try {
      patch = JSON.parse(raw) as Json;
    } catch (err) {
      throw new HttpFailure(400, `error decoding patch: ${(err as Error).message}`);
    }
    if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) {
      throw new HttpFailure(400, 'error decoding patch: a merge patch must be a JSON object');
    }
    const wanted = (patch.metadata as { resourceVersion?: unknown } | undefined)?.resourceVersion;
    if (wanted !== undefined && wanted !== null && String(wanted) !== current.metadata.resourceVersion) {
      throw new HttpFailure(
        409,
        `Operation cannot be fulfilled on pods "${name}": the object has been modified; please apply your changes to the latest version and try again`,
        { name, kind: 'pods' },
      );
    }
    const next = mergePatch(clone(current) as unknown as Json, patch) as unknown as Pod;
    if (next.metadata?.name !== name || next.metadata?.namespace !== namespace) {
      throw new HttpFailure(400, `the name of the object (${String(next.metadata?.name)}) does not match the name on the URL (${name})`);
    }
    next.metadata.uid = current.metadata.uid;
    next.metadata.creationTimestamp = current.metadata.creationTimestamp;
    next.metadata.resourceVersion = current.metadata.resourceVersion;
    this.validate(next);
    if (sameObject(next, current)) return clone(current); // a no-op patch is not a write
    next.metadata.resourceVersion = String(++this.revision);
    this.pods.set(`${namespace}/${name}`, next);
    return clone(next);
  }

  private validate(pod: Pod): void {
    const causes: Array<{ reason: string; message: string; field: string }> = [];
    for (const field of ['labels', 'annotations'] as const) {
      const map = pod.metadata[field] as unknown;
      if (map === undefined) continue;
      if (map === null || typeof map !== 'object' || Array.isArray(map)) {
        throw new HttpFailure(400, `json: cannot unmarshal into Go struct field ObjectMeta.metadata.${field} of type map[string]string`);
      }
      for (const [key, value] of Object.entries(map)) {
        if (typeof value !== 'string') {
          throw new HttpFailure(400, `json: cannot unmarshal ${typeof value} into Go struct field ObjectMeta.metadata.${field} of type string`);
        }
        for (const message of qualifiedNameErrors(key)) {
          causes.push({ reason: 'FieldValueInvalid', message: `Invalid value: "${key}": ${message}`, field: `metadata.${field}` });
        }
        if (field === 'labels') {
          for (const message of labelValueErrors(value)) {
            causes.push({ reason: 'FieldValueInvalid', message: `Invalid value: "${value}": ${message}`, field: 'metadata.labels' });
          }
        }
      }
      if (field === 'annotations') {
        const size = Object.entries(map).reduce((n, [k, v]) => n + k.length + String(v).length, 0);
        if (size > MAX_ANNOTATIONS_BYTES) {
          causes.push({ reason: 'FieldValueTooLong', message: `Too long: must have at most ${MAX_ANNOTATIONS_BYTES} bytes`, field: 'metadata.annotations' });
        }
      }
    }
    if (causes.length > 0) {
      const summary = causes.map((c) => `${c.field}: ${c.message}`).join(', ');
      const message = causes.length === 1 ? summary : `[${summary}]`;
      throw new HttpFailure(422, `Pod "${pod.metadata.name}" is invalid: ${message}`, { name: pod.metadata.name, kind: 'Pod', causes });
    }
  }
}

function safeJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}
