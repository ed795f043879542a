import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { errors, type Client } from '@elastic/elasticsearch';
import { createEsClient } from './es-client';
import type Redis from 'ioredis';
import type { Logger } from '../logger';
import { retry } from '../retry';
import type { ElasticsearchSiemConfig } from './config';
import {
  DOC_KINDS,
  aliasName,
  deadLetterToEcs,
  findingToEcs,
  incidentToEcs,
  indexName,
  indexTemplates,
  ledgerToEcs,
  withIngested,
  type DocKind,
  type EsAction,
  type IndexTemplate,
} from './ecs';
import type { SiemDoc } from './inputs';
import { Outbox, type FailedEntry } from './outbox';

/** Counters since start, for the metrics endpoint (monotonic except `pending`). */
export interface SiemWriterCounters {
  enqueued: number;
  /** Documents Elasticsearch took (created or updated). */
  written: number;
  /** Documents already there: a replayed ledger record or dead letter, or an incident version that is not newer. */
  duplicates: number;
  /** Documents refused for good (mapping errors and other 4xx), moved to the failed list. */
  failed: number;
  /** Documents sent again after a retriable per-item error (429, 5xx, blocks). */
  retriedItems: number;
  bulkRequests: number;
  /** Bulk requests that failed as a whole (Elasticsearch down, timeouts, 5xx). */
  bulkErrors: number;
  /** Items moved back to the outbox from a flusher that died. */
  reclaimed: number;
}

export interface SiemWriterOptions {
  client: Client;
  redis: Redis;
  /** The service's Redis key prefix (config.redis.keyPrefix). */
  keyPrefix: string;
  config: ElasticsearchSiemConfig;
  log: Logger;
  /** Stable per process; defaults to host-pid-random. Must be [A-Za-z0-9._-]. */
  consumer?: string;
  now?: () => number;
}

/** A retriable per-item failure inside an otherwise accepted bulk request. */
class PartialFailure extends Error {
  override name = 'PartialFailure';
  constructor(
    readonly count: number,
    readonly first: string,
  ) {
    super(`${count} document(s) to retry: ${first}`);
  }
}

/** An Elasticsearch client for the SIEM writer: no client-side retries (the outbox retries). */
export function createElasticsearchClient(config: ElasticsearchSiemConfig): Client {
  const auth = config.auth
    ? 'apiKey' in config.auth
      ? { apiKey: config.auth.apiKey }
      : { username: config.auth.username, password: config.auth.password }
    : undefined;
  return createEsClient({
    node: config.url,
    auth,
    maxRetries: 0,
    requestTimeout: config.requestTimeoutMs,
    tls: config.url.startsWith('https:')
      ? { ca: config.tls.caFile ? readFileSync(config.tls.caFile) : undefined, rejectUnauthorized: config.tls.rejectUnauthorized }
      : undefined,
  });
}

/** Maps one SIEM document to its ECS form. */
export function toAction(doc: SiemDoc, opts: { maxOriginalBytes: number; now: number }): EsAction {
  switch (doc.kind) {
    case 'incident':
      return incidentToEcs(doc.incident);
    case 'ledger':
      return ledgerToEcs(doc.record);
    case 'dead_letter':
      return deadLetterToEcs(doc.letter, opts);
    case 'finding':
      return findingToEcs(doc.finding);
  }
}

/** True when every node has the module (`nodes info` lists modules by name). */
export function nodesHaveModule(info: { nodes?: Record<string, { modules?: { name?: string }[] }> }, module: string): boolean {
  const nodes = Object.values(info.nodes ?? {});
  return nodes.length > 0 && nodes.every((n) => (n.modules ?? []).some((m) => m.name === module));
}

type Verdict = { outcome: 'written' | 'duplicate' } | { outcome: 'retry'; reason: string } | { outcome: 'failed'; reason: string; status: number };

/** What one bulk item's status means (exported for tests). */
export function judgeBulkItem(status: number, error?: { type?: string; reason?: string | null }): Verdict {
  if (status >= 200 && status < 300) return { outcome: 'written' };
  const reason = `${error?.type ?? 'error'}: ${error?.reason ?? `status ${status}`}`;
  // 409 on `create` = already there; on an external-version `index` = what is there is as new or newer
  if (status === 409) return { outcome: 'duplicate' };
  if (status === 429 || status >= 500) return { outcome: 'retry', reason };
  // index blocks (flood-stage watermark, a maintenance write block) are operational, not the document's fault
  if (error?.type === 'cluster_block_exception') return { outcome: 'retry', reason };
  if (status === 404 && error?.type === 'index_not_found_exception') return { outcome: 'retry', reason };
  return { outcome: 'failed', reason, status };
}

function isTransient(err: unknown): boolean {
  if (err instanceof PartialFailure) return true;
  if (err instanceof errors.ResponseError) {
    const s = err.statusCode ?? 0;
    // 401/403 on the whole request is a credentials problem: keep the documents and keep trying
    // 400/413 on the whole request: flushOnce has halved the batch, the next round is smaller
    return s === 429 || s >= 500 || s === 401 || s === 403 || s === 408 || s === 413 || s === 400;
  }
  return true; // connection refused, timeouts, no living connections, Redis hiccups
}

/**
 * Writes Cordon's incidents, ledger records, dead letters and findings to Elasticsearch, through a
 * durable Redis outbox: `enqueue` returns once Redis has the document, a flusher drains the outbox
 * in bulk, and nothing leaves the outbox before Elasticsearch has it. When Elasticsearch is down the
 * documents wait (and the flusher backs off); per-item retriable failures stay in flight and only
 * they are sent again; documents refused for good go to the failed list with the reason.
 */
export class SiemWriter {
  readonly counters: SiemWriterCounters = {
    enqueued: 0,
    written: 0,
    duplicates: 0,
    failed: 0,
    retriedItems: 0,
    bulkRequests: 0,
    bulkErrors: 0,
    reclaimed: 0,
  };
  private readonly outbox: Outbox;
  private readonly client: Client;
  private readonly config: ElasticsearchSiemConfig;
  private readonly log: Logger;
  private readonly now: () => number;
  private templatesInstalled = false;
  private batchLimit: number;
  private loop: Promise<void> | null = null;
  private stopping = false;
  private draining = false;
  private wakeUp: (() => void) | null = null;
  private abort = new AbortController();
  private lastReclaim = 0;
  private readonly heartbeatTtlMs: number;

  constructor(opts: SiemWriterOptions) {
    this.client = opts.client;
    this.config = opts.config;
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
    this.batchLimit = opts.config.bulk.maxDocs;
    const consumer = opts.consumer ?? `${hostname().replace(/[^A-Za-z0-9._-]/g, '_')}-${process.pid}-${randomBytes(3).toString('hex')}`;
    // a heartbeat must outlive the longest request, or a slow bulk would look like a dead writer
    this.heartbeatTtlMs = Math.max(opts.config.outbox.heartbeatTtlMs, 2 * opts.config.requestTimeoutMs);
    // one hash tag for all keys of this outbox: the Lua scripts stay valid on Redis Cluster
    this.outbox = new Outbox(opts.redis, `{${opts.keyPrefix}:siem:es}`, consumer, {
      maxFailed: opts.config.outbox.maxFailed,
      heartbeatTtlMs: this.heartbeatTtlMs,
    });
  }

  indexName(kind: DocKind): string {
    return indexName(this.config.indexPrefix, kind);
  }

  get consumer(): string {
    return this.outbox.consumer;
  }

  /** The `logs-<dataset>-<namespace>` alias each index answers to (what Elastic Security reads). */
  aliasName(kind: DocKind): string {
    return aliasName(kind, this.config.namespace);
  }

  /**
   * Installs (or updates) the index templates, and brings indices created by an older template up
   * to date: their alias, and the fields added since (mappings only grow). Idempotent; the flusher
   * calls it before its first write.
   */
  async installTemplates(): Promise<void> {
    const opts = {
      numberOfShards: this.config.numberOfShards,
      numberOfReplicas: this.config.numberOfReplicas,
      namespace: this.config.namespace,
    };
    const templates = indexTemplates(this.config.indexPrefix, { ...opts, matchOnlyText: await this.hasMatchOnlyText() });
    // indices made by template version 1 have message fields as text, which cannot change in place
    const asText = indexTemplates(this.config.indexPrefix, { ...opts, matchOnlyText: false });
    for (const [i, t] of templates.entries()) {
      await this.client.indices.putIndexTemplate(t as Parameters<Client['indices']['putIndexTemplate']>[0]);
      await this.upgradeExisting(t, asText[i]!);
    }
    this.templatesInstalled = true;
  }

  /** `match_only_text` comes with the mapper-extras module, which minimal distributions leave out. */
  private async hasMatchOnlyText(): Promise<boolean> {
    try {
      const info = await this.client.nodes.info({ metric: 'plugins' });
      const has = nodesHaveModule(info as Parameters<typeof nodesHaveModule>[0], 'mapper-extras');
      if (!has) this.log.warn('elasticsearch has no mapper-extras module: message fields are mapped as text, not match_only_text');
      return has;
    } catch (err) {
      this.log.warn({ err: describe(err) }, 'could not list the elasticsearch modules (cluster monitor privilege); assuming mapper-extras');
      return true;
    }
  }

  private async upgradeExisting(t: IndexTemplate, asText: IndexTemplate): Promise<void> {
    const index = t.name;
    if (!(await this.client.indices.exists({ index }))) return;
    await this.client.indices.putAlias({ index, name: Object.keys(t.template.aliases)[0]! });
    const put = (x: IndexTemplate) => this.client.indices.putMapping({ index, properties: x.template.mappings.properties as Record<string, never> });
    try {
      await put(t);
    } catch (err) {
      if (!(err instanceof errors.ResponseError) || err.statusCode !== 400) throw err;
      await put(asText);
    }
  }

  /** Queues documents durably: resolves once Redis has them. */
  async enqueue(docs: SiemDoc | readonly SiemDoc[]): Promise<void> {
    const list = Array.isArray(docs) ? docs : [docs as SiemDoc];
    const now = this.now();
    const items = list.map((d) => JSON.stringify(toAction(d, { maxOriginalBytes: this.config.maxOriginalBytes, now })));
    await this.outbox.append(items);
    this.counters.enqueued += items.length;
    this.wake();
  }

  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.draining = false;
    if (this.abort.signal.aborted) this.abort = new AbortController();
    this.loop = this.run().catch((err) => this.log.error({ err }, 'siem writer stopped on an unexpected error'));
  }

  /**
   * Drains the outbox (up to `drainTimeoutMs`) and stops. What is not written by then stays in
   * Redis for the next start: nothing is lost, it is only later.
   */
  async stop(opts: { drainTimeoutMs?: number } = {}): Promise<{ drained: boolean; pending: number }> {
    if (!this.loop) {
      const pending = await this.pending();
      return { drained: pending === 0, pending };
    }
    this.draining = true;
    this.wake();
    const timeout = opts.drainTimeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.loop.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeout))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.stopping = true;
      this.abort.abort();
      this.wake();
      await this.loop;
    }
    this.loop = null;
    await this.outbox.retire().catch(() => undefined);
    const pending = await this.pending();
    return { drained: pending === 0, pending };
  }

  /** Documents not yet in Elasticsearch (waiting plus this writer's in-flight batch). */
  pending(): Promise<number> {
    return this.outbox.pending();
  }

  failed(limit?: number): Promise<FailedEntry[]> {
    return this.outbox.failed(limit);
  }

  /** Puts refused documents back in the outbox, once their cause (a mapping, a privilege) is fixed. */
  requeueFailed(): Promise<number> {
    return this.outbox.requeueFailed();
  }

  // ---------------------------------------------------------------- the flusher

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
  }

  private sleep(ms: number): Promise<void> {
    const signal = this.abort.signal;
    return new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Waits for an enqueue in this process, the poll interval, or stop. */
  private idle(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.wakeUp = null;
        resolve();
      }, ms);
      this.wakeUp = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private async run(): Promise<void> {
    const { initialMs, maxMs } = this.config.retry;
    while (!this.stopping) {
      let taken = 0;
      try {
        taken = await retry(() => this.flushOnce(), {
          retries: Number.MAX_SAFE_INTEGER,
          initialMs,
          maxMs,
          retriable: (err) => !this.stopping && isTransient(err),
          sleep: (ms) => this.sleep(ms),
          onRetry: (err, attempt, delayMs) => {
            const level = attempt === 1 || attempt % 10 === 0 ? 'warn' : 'debug';
            this.log[level]({ err: describe(err), attempt, delayMs }, 'elasticsearch write failed; documents stay in the outbox');
          },
        });
      } catch (err) {
        if (this.stopping) break;
        // not transient: a bug or a malformed request; keep the batch, slow down, keep going
        this.log.error({ err }, 'elasticsearch write failed with a non-transient error; retrying slowly');
        await this.sleep(maxMs);
        continue;
      }
      if (taken === 0) {
        if (this.draining) break;
        await this.idle(this.config.bulk.pollIntervalMs);
      }
    }
  }

  /** One round: heartbeat, templates, take a batch, bulk it, settle it. Returns the batch size. */
  private async flushOnce(): Promise<number> {
    await this.outbox.beat();
    const now = this.now();
    if (now - this.lastReclaim > this.heartbeatTtlMs / 2) {
      this.lastReclaim = now;
      const moved = await this.outbox.reclaimOrphans();
      if (moved > 0) {
        this.counters.reclaimed += moved;
        this.log.warn({ moved }, 'returned the in-flight documents of a flusher that is gone to the outbox');
      }
    }
    if (!this.templatesInstalled) await this.installTemplates();

    const raw = await this.outbox.take(this.batchLimit);
    if (raw.length === 0) return 0;

    const actions: (EsAction | null)[] = raw.map((r) => {
      try {
        const a = JSON.parse(r) as EsAction;
        return DOC_KINDS.includes(a.kind) && typeof a.id === 'string' ? a : null;
      } catch {
        return null;
      }
    });
    const operations: unknown[] = [];
    for (const a of actions) {
      if (!a) continue;
      const meta: Record<string, unknown> = { _index: this.indexName(a.kind), _id: a.id };
      if (a.op === 'index' && a.version !== undefined) {
        meta.version = a.version;
        meta.version_type = 'external';
      }
      operations.push({ [a.op]: meta }, withIngested(a.doc, this.now()));
    }

    const retryItems: string[] = [];
    let retryReason = '';
    const failed: FailedEntry[] = [];
    const at = new Date(this.now()).toISOString();
    actions.forEach((a, i) => {
      if (!a) failed.push({ item: raw[i]!, reason: 'unreadable outbox item', at });
    });

    if (operations.length > 0) {
      this.counters.bulkRequests += 1;
      let response;
      try {
        response = await this.client.bulk({ operations, refresh: this.refreshParam() });
      } catch (err) {
        this.counters.bulkErrors += 1;
        const status = err instanceof errors.ResponseError ? err.statusCode : undefined;
        if (status === 413 || status === 400) {
          // too large a request, or one Elasticsearch cannot read at all: halve the batch until the
          // document responsible is alone, then fail only that one
          if (raw.length === 1) {
            const reason = status === 413 ? 'document larger than http.max_content_length' : `bulk request refused: ${(err as Error).message}`;
            await this.outbox.settle(1, [], [{ item: raw[0]!, reason, status, at }]);
            this.counters.failed += 1;
            return 1;
          }
          this.batchLimit = Math.max(1, Math.floor(raw.length / 2));
        }
        throw err;
      }
      let k = 0;
      actions.forEach((a, i) => {
        if (!a) return;
        const item = response.items[k++];
        const result = item ? Object.values(item)[0] : undefined;
        const verdict = result
          ? judgeBulkItem(result.status, result.error ?? undefined)
          : ({ outcome: 'retry', reason: 'no item in bulk response' } as const);
        switch (verdict.outcome) {
          case 'written':
            this.counters.written += 1;
            break;
          case 'duplicate':
            this.counters.duplicates += 1;
            break;
          case 'retry':
            retryItems.push(raw[i]!);
            retryReason ||= verdict.reason;
            break;
          case 'failed':
            failed.push({ item: raw[i]!, reason: verdict.reason, status: verdict.status, at });
            this.log.error({ kind: a.kind, id: a.id, reason: verdict.reason }, 'elasticsearch refused a document; moved to the failed list');
            break;
        }
      });
    }

    await this.outbox.settle(raw.length, retryItems, failed);
    this.counters.failed += failed.length;
    // a batch went through: grow back towards the configured size after a split
    this.batchLimit = Math.min(this.config.bulk.maxDocs, this.batchLimit * 2);
    if (retryItems.length > 0) {
      this.counters.retriedItems += retryItems.length;
      throw new PartialFailure(retryItems.length, retryReason);
    }
    return raw.length;
  }

  private refreshParam(): boolean | 'wait_for' {
    const r = this.config.bulk.refresh;
    return r === 'wait_for' ? 'wait_for' : r === 'true';
  }
}

function describe(err: unknown): unknown {
  if (err instanceof errors.ResponseError) return { name: err.name, status: err.statusCode, message: err.message };
  if (err instanceof Error) return { name: err.name, message: err.message };
  return err;
}
