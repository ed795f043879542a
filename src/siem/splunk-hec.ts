import http from 'node:http';
import https from 'node:https';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import type { Logger } from '../logger';
import { retry } from '../retry';
import { deadLetterToCim, findingToCim, incidentToCim, ledgerToCim, type HecEvent, type HecMeta } from './cim';
import type { SplunkSiemConfig } from './config';
import type { SiemDoc } from './inputs';

const gzip = promisify(gzipCb);

/**
 * A Splunk HTTP Event Collector sender.
 *
 * - Events are batched into one request body of concatenated JSON envelopes (not a JSON array), up
 *   to a count, a size and a latency bound, and gzip-compressed.
 * - A 503 (code 9, busy), a 5xx or a network error is retried with backoff (src/retry.ts); the
 *   request took nothing, so each event is still delivered once.
 * - A 4xx is final: a `HecFailure` with Splunk's code and text is recorded and passed to
 *   `onFailure`, never retried. When Splunk names the bad event (`invalid-event-number`), the
 *   events before it were taken, that one fails, and the ones after it are sent again.
 * - With indexer acknowledgement the sender owns one channel (a GUID), polls
 *   /services/collector/ack until each ackId is true, and sends a batch again when its ack has not
 *   come within `ack.timeoutMs`. That is at-least-once: an ack lost after indexing means a
 *   duplicate, which is the trade Splunk's acknowledgement makes.
 */

export interface HecSenderOptions {
  url: string;
  token: string;
  gzip: boolean;
  batch: { maxEvents: number; maxBytes: number; maxLatencyMs: number; concurrency: number };
  ack: { enabled: boolean; pollIntervalMs: number; timeoutMs: number; maxResends: number };
  retry: { initialMs: number; maxMs: number; retries: number };
  requestTimeoutMs: number;
  tls?: { ca?: string | Buffer; rejectUnauthorized: boolean };
  /** Defaults to a random GUID: one channel per sender. */
  channel?: string;
  log: Logger;
  onFailure?: (failure: HecFailure) => void;
  /** Failures kept in `failures` (oldest dropped first). */
  maxFailures?: number;
  /** Injected for tests. */
  random?: () => number;
}

/** Events Splunk refused for good (or that never got an ack), with Splunk's own code and text. */
export interface HecFailure {
  status: number | null;
  code: number | null;
  text: string;
  events: HecEvent[];
  at: number;
}

export class HecError extends Error {
  override name = 'HecError';
  constructor(
    readonly status: number | null,
    readonly code: number | null,
    readonly text: string,
    readonly invalidEventNumber?: number,
  ) {
    super(`Splunk HEC ${status ?? 'network error'}${code !== null ? ` code ${code}` : ''}: ${text}`);
  }

  /** Busy (503/9), internal errors (5xx), throttling and network errors are worth another try. */
  get retriable(): boolean {
    if (this.status === null) return true;
    return this.status === 429 || this.status >= 500;
  }
}

export interface HecCounters {
  /** Events handed to `send`. */
  events: number;
  /** Events Splunk took (and, with acknowledgement, acknowledged). */
  delivered: number;
  failed: number;
  batches: number;
  requests: number;
  /** Requests sent again after a 503, a 5xx or a network error. */
  retries: number;
  /** Batches sent again because their ack did not come in time. */
  resends: number;
  acked: number;
  ackPolls: number;
  bytesSent: number;
}

interface Pending {
  json: string;
  event: HecEvent;
}

interface Reply {
  status: number;
  body: Record<string, unknown> | null;
  text: string;
}

/** Codes whose `invalid-event-number` names one bad event (the rest of the batch is fine). */
const EVENT_CODES = new Set([5, 6, 12, 13, 15]);

export class HecSender {
  readonly channel: string;
  readonly failures: HecFailure[] = [];
  readonly counters: HecCounters = {
    events: 0,
    delivered: 0,
    failed: 0,
    batches: 0,
    requests: 0,
    retries: 0,
    resends: 0,
    acked: 0,
    ackPolls: 0,
    bytesSent: 0,
  };
  private readonly base: URL;
  private readonly agent: http.Agent;
  private current: Pending[] = [];
  private currentBytes = 0;
  private lingerTimer: NodeJS.Timeout | null = null;
  private readonly queue: Pending[][] = [];
  private active = 0;
  private outstanding = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly acks = new Map<number, { deadline: number; resolve: (acked: boolean) => void }>();
  private ackTimer: NodeJS.Timeout | null = null;
  private polling = false;
  private warnedNoAck = false;
  private closed = false;

  constructor(private readonly opts: HecSenderOptions) {
    this.base = new URL(opts.url);
    this.channel = opts.channel ?? randomUUID();
    const agentOpts = { keepAlive: true, maxSockets: opts.batch.concurrency + 1 };
    this.agent =
      this.base.protocol === 'https:'
        ? new https.Agent({ ...agentOpts, ca: opts.tls?.ca, rejectUnauthorized: opts.tls?.rejectUnauthorized ?? true })
        : new http.Agent(agentOpts);
  }

  /** Queues one event; it leaves with its batch when the batch is full or `maxLatencyMs` has passed. */
  send(event: HecEvent): void {
    if (this.closed) throw new Error('HEC sender is closed');
    const json = JSON.stringify(event);
    const bytes = Buffer.byteLength(json);
    if (this.current.length > 0 && this.currentBytes + bytes > this.opts.batch.maxBytes) this.closeBatch();
    this.current.push({ json, event });
    this.currentBytes += bytes;
    this.counters.events += 1;
    this.outstanding += 1;
    if (this.current.length >= this.opts.batch.maxEvents || this.currentBytes >= this.opts.batch.maxBytes) this.closeBatch();
    else if (!this.lingerTimer) this.lingerTimer = setTimeout(() => this.closeBatch(), this.opts.batch.maxLatencyMs);
  }

  /** Sends what is queued and resolves once every event so far is delivered or recorded as failed. */
  async flush(): Promise<void> {
    this.closeBatch();
    if (this.outstanding === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** Flushes, then releases the connections and timers. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.agent.destroy();
  }

  // ---------------------------------------------------------------- batches

  private closeBatch(): void {
    if (this.lingerTimer) {
      clearTimeout(this.lingerTimer);
      this.lingerTimer = null;
    }
    if (this.current.length === 0) return;
    this.queue.push(this.current);
    this.current = [];
    this.currentBytes = 0;
    this.counters.batches += 1;
    this.pump();
  }

  private pump(): void {
    while (this.active < this.opts.batch.concurrency && this.queue.length > 0) {
      const batch = this.queue.shift()!;
      this.active += 1;
      this.deliver(batch)
        .catch((err: unknown) => {
          // deliver records its own failures; this is a bug guard so no event is left outstanding
          this.fail(batch, null, null, `unexpected: ${(err as Error).message}`);
        })
        .finally(() => {
          this.active -= 1;
          this.pump();
        });
    }
  }

  private settled(n: number): void {
    this.outstanding -= n;
    if (this.outstanding === 0 && this.current.length === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private delivered(events: Pending[]): void {
    if (events.length === 0) return;
    this.counters.delivered += events.length;
    this.settled(events.length);
  }

  private fail(events: Pending[], status: number | null, code: number | null, text: string): void {
    if (events.length === 0) return;
    const failure: HecFailure = { status, code, text, events: events.map((p) => p.event), at: Date.now() };
    this.failures.push(failure);
    const max = this.opts.maxFailures ?? 1_000;
    if (this.failures.length > max) this.failures.splice(0, this.failures.length - max);
    this.counters.failed += events.length;
    this.opts.log.error({ status, code, text, events: events.length }, 'Splunk HEC refused events');
    try {
      this.opts.onFailure?.(failure);
    } finally {
      this.settled(events.length);
    }
  }

  /** Sends one batch until each of its events is delivered or failed. */
  private async deliver(batch: Pending[]): Promise<void> {
    let events = batch;
    let resends = 0;
    while (events.length > 0) {
      let reply: Reply;
      try {
        reply = await retry(
          async () => {
            try {
              return await this.postEvents(events);
            } catch (err) {
              // a busy splunkd may have taken the events before the one it names
              if (err instanceof HecError && err.retriable && err.invalidEventNumber !== undefined && err.invalidEventNumber > 0) {
                this.delivered(events.slice(0, err.invalidEventNumber));
                events = events.slice(err.invalidEventNumber);
              }
              throw err;
            }
          },
          {
            retries: this.opts.retry.retries,
            initialMs: this.opts.retry.initialMs,
            maxMs: this.opts.retry.maxMs,
            random: this.opts.random,
            retriable: (err) => !(err instanceof HecError) || err.retriable,
            onRetry: (err, attempt, delayMs) => {
              this.counters.retries += 1;
              this.opts.log.warn({ err: (err as Error).message, attempt, delayMs }, 'Splunk HEC request failed; retrying');
            },
          },
        );
      } catch (err) {
        const e = err instanceof HecError ? err : new HecError(null, null, (err as Error).message);
        if (e.retriable) {
          this.fail(events, e.status, e.code, `${e.text} (gave up after ${this.opts.retry.retries} retries)`);
          return;
        }
        const n = e.invalidEventNumber;
        if (n !== undefined && e.code !== null && EVENT_CODES.has(e.code) && n < events.length) {
          this.delivered(events.slice(0, n));
          this.fail([events[n]!], e.status, e.code, e.text);
          events = events.slice(n + 1);
          continue;
        }
        if (n !== undefined && e.code === 7 && n < events.length) {
          // Incorrect index: the events before it were taken; every later event bound for the same
          // index would be refused too, so they fail together and the others are sent again.
          const badIndex = events[n]!.event.index;
          this.delivered(events.slice(0, n));
          const rest = events.slice(n);
          this.fail(
            rest.filter((p) => p.event.index === badIndex),
            e.status,
            e.code,
            e.text,
          );
          events = rest.filter((p) => p.event.index !== badIndex);
          continue;
        }
        this.fail(events, e.status, e.code, e.text);
        return;
      }

      const ackId = typeof reply.body?.ackId === 'number' ? reply.body.ackId : undefined;
      if (!this.opts.ack.enabled) {
        this.delivered(events);
        return;
      }
      if (ackId === undefined) {
        if (!this.warnedNoAck) {
          this.warnedNoAck = true;
          this.opts.log.warn('Splunk answered without an ackId: the HEC token has no indexer acknowledgement (useACK)');
        }
        this.delivered(events);
        return;
      }
      if (await this.awaitAck(ackId)) {
        this.counters.acked += events.length;
        this.delivered(events);
        return;
      }
      resends += 1;
      if (resends > this.opts.ack.maxResends) {
        this.fail(events, 200, 0, `not acknowledged within ${this.opts.ack.timeoutMs} ms after ${resends} sends`);
        return;
      }
      this.counters.resends += 1;
      this.opts.log.warn({ ackId, channel: this.channel, events: events.length }, 'Splunk did not acknowledge a batch in time; sending it again');
    }
  }

  private async postEvents(events: Pending[]): Promise<Reply> {
    const text = events.map((p) => p.json).join('');
    const body = this.opts.gzip ? await gzip(Buffer.from(text)) : Buffer.from(text);
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (this.opts.gzip) headers['Content-Encoding'] = 'gzip';
    const reply = await this.request('/services/collector/event', body, headers);
    if (reply.status === 200 && (reply.body?.code === 0 || reply.body?.code === undefined)) return reply;
    throw toHecError(reply);
  }

  // ---------------------------------------------------------------- acknowledgement

  private awaitAck(ackId: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      this.acks.set(ackId, { deadline: Date.now() + this.opts.ack.timeoutMs, resolve });
      this.schedulePoll();
    });
  }

  private schedulePoll(): void {
    if (this.ackTimer || this.polling || this.acks.size === 0) return;
    this.ackTimer = setTimeout(() => {
      this.ackTimer = null;
      void this.pollAcks();
    }, this.opts.ack.pollIntervalMs);
  }

  private async pollAcks(): Promise<void> {
    this.polling = true;
    try {
      const ids = [...this.acks.keys()];
      if (ids.length > 0) {
        this.counters.ackPolls += 1;
        const reply = await this.request('/services/collector/ack', Buffer.from(JSON.stringify({ acks: ids })), {
          'Content-Type': 'application/json',
        });
        if (reply.status !== 200) throw toHecError(reply);
        const answer = (reply.body?.acks ?? {}) as Record<string, unknown>;
        for (const id of ids) {
          if (answer[String(id)] === true) {
            this.acks.get(id)?.resolve(true);
            this.acks.delete(id);
          }
        }
      }
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'Splunk HEC ack poll failed');
    } finally {
      const now = Date.now();
      for (const [id, a] of this.acks) {
        if (now >= a.deadline) {
          a.resolve(false);
          this.acks.delete(id);
        }
      }
      this.polling = false;
      this.schedulePoll();
    }
  }

  // ---------------------------------------------------------------- HTTP

  private request(path: string, body: Buffer, headers: Record<string, string>): Promise<Reply> {
    const url = new URL(path.replace(/^\//, ''), this.base.href.endsWith('/') ? this.base.href : this.base.href + '/');
    const lib = url.protocol === 'https:' ? https : http;
    this.counters.requests += 1;
    this.counters.bytesSent += body.length;
    return new Promise<Reply>((resolve, reject) => {
      const req = lib.request(
        url,
        {
          method: 'POST',
          agent: this.agent,
          timeout: this.opts.requestTimeoutMs,
          headers: {
            ...headers,
            Authorization: `Splunk ${this.opts.token}`,
            'X-Splunk-Request-Channel': this.channel,
            'Content-Length': String(body.length),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: Record<string, unknown> | null = null;
            try {
              const v: unknown = JSON.parse(text);
              if (v !== null && typeof v === 'object' && !Array.isArray(v)) parsed = v as Record<string, unknown>;
            } catch {
              parsed = null;
            }
            resolve({ status: res.statusCode ?? 0, body: parsed, text });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer from Splunk HEC within ${this.opts.requestTimeoutMs} ms`)));
      req.on('error', (err) => reject(new HecError(null, null, err.message)));
      req.end(body);
    });
  }
}

function toHecError(reply: Reply): HecError {
  const code = typeof reply.body?.code === 'number' ? reply.body.code : null;
  const text = typeof reply.body?.text === 'string' ? reply.body.text : reply.text.slice(0, 200) || `HTTP ${reply.status}`;
  const n = reply.body?.['invalid-event-number'];
  return new HecError(reply.status, code, text, typeof n === 'number' ? n : undefined);
}

/** Cordon's records to Splunk: CIM mapping (cim.ts) in front of one HEC sender. */
export class SplunkWriter {
  readonly sender: HecSender;
  readonly meta: HecMeta;

  constructor(
    config: SplunkSiemConfig,
    log: Logger,
    opts: { onFailure?: (f: HecFailure) => void; now?: () => number } = {},
  ) {
    if (!config.token) throw new Error('siem.splunk.token is required');
    this.now = opts.now ?? Date.now;
    this.meta = { index: config.index, host: config.host ?? hostname(), source: config.source, sourcetypes: config.sourcetypes };
    this.sender = new HecSender({
      url: config.hecUrl,
      token: config.token,
      gzip: config.gzip,
      batch: config.batch,
      ack: config.ack,
      retry: config.retry,
      requestTimeoutMs: config.requestTimeoutMs,
      tls: { ca: config.tls.caFile ? readFileSync(config.tls.caFile) : undefined, rejectUnauthorized: config.tls.rejectUnauthorized },
      log,
      onFailure: opts.onFailure,
    });
  }

  private readonly now: () => number;

  enqueue(doc: SiemDoc | readonly SiemDoc[]): void {
    for (const d of Array.isArray(doc) ? doc : [doc as SiemDoc]) this.sender.send(this.toEvent(d));
  }

  toEvent(doc: SiemDoc): HecEvent {
    switch (doc.kind) {
      case 'incident':
        return incidentToCim(doc.incident, this.meta);
      case 'ledger':
        return ledgerToCim(doc.record, this.meta);
      case 'dead_letter':
        return deadLetterToCim(doc.letter, this.meta, { maxOriginalBytes: 32 * 1024, now: this.now() });
      case 'finding':
        return findingToCim(doc.finding, this.meta);
    }
  }

  flush(): Promise<void> {
    return this.sender.flush();
  }

  stop(): Promise<void> {
    return this.sender.close();
  }
}
