import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';

/**
 * An in-process Splunk contract server: HTTP Event Collector and the part of the REST API that a
 * oneshot search needs, written from Splunk's documentation (HEC: "Format events for HTTP Event
 * Collector", "About HTTP Event Collector Indexer Acknowledgment", the HEC status-code table; REST:
 * auth/login, server/info, search/jobs and search/v2/jobs) and from what splunk-sdk 2.0.2 sends
 * (lib/context.js login + getInfo, lib/service.js Jobs.oneshotSearch).
 *
 * It validates strictly and answers refusals with Splunk's codes and texts:
 *
 *   code  HTTP  text
 *    0    200   Success
 *    1    403   Token disabled
 *    2    401   Token is required
 *    3    401   Invalid authorization
 *    4    403   Invalid token
 *    5    400   No data
 *    6    400   Invalid data format
 *    7    400   Incorrect index
 *    8    500   Internal server error
 *    9    503   Server is busy
 *   10    400   Data channel is missing
 *   11    400   Invalid data channel
 *   12    400   Event field is required
 *   13    400   Event field cannot be blank
 *   14    400   ACK is disabled
 *   15    400   Error in handling indexed fields
 *   16    400   Query string authorization is not enabled
 *   17    200   HEC is healthy                       (GET /services/collector/health)
 *   18    503   HEC is unhealthy, queues are full
 *
 * Event-level refusals (6, 7, 12, 13, 15) carry `invalid-event-number`, the zero-based position of
 * the first bad event; splunkd parses the body as a stream, so the events before it were taken.
 *
 * Behaviour reproduced from third-party measurements against real splunkd rather than from
 * Splunk's own pages (marked here so nobody mistakes it for documentation): a top-level JSON array
 * is taken as a batch; a non-numeric `time` is code 15; an ack query on a token without
 * acknowledgement is code 14 before any channel check; `?token=` is code 16 unless allowed, and
 * only for a token that exists (an unknown one is code 4 first). The same source reports code 7's
 * `invalid-event-number` one higher than the other codes'; that is not reproduced (unconfirmed).
 *
 * Oneshot results honour `count` (default 100, 0 = all) and `offset`; `delaySearches(ms)` makes the
 * search head slow, for clients that must give up on time.
 *
 * Not modelled: search jobs other than exec_mode=oneshot, output modes other than json/json_rows
 * for results, the /services/collector/mint endpoint, metrics events, per-channel ack limits.
 *
 * What it accepted is kept in `indexed` (and every HEC request in `hecRequests`), so tests assert
 * on what Splunk would hold, not on what a client believes it sent.
 */

export const HEC_STATUS: Readonly<Record<number, readonly [status: number, text: string]>> = {
  0: [200, 'Success'],
  1: [403, 'Token disabled'],
  2: [401, 'Token is required'],
  3: [401, 'Invalid authorization'],
  4: [403, 'Invalid token'],
  5: [400, 'No data'],
  6: [400, 'Invalid data format'],
  7: [400, 'Incorrect index'],
  8: [500, 'Internal server error'],
  9: [503, 'Server is busy'],
  10: [400, 'Data channel is missing'],
  11: [400, 'Invalid data channel'],
  12: [400, 'Event field is required'],
  13: [400, 'Event field cannot be blank'],
  14: [400, 'ACK is disabled'],
  15: [400, 'Error in handling indexed fields'],
  16: [400, 'Query string authorization is not enabled'],
  17: [200, 'HEC is healthy'],
  18: [503, 'HEC is unhealthy, queues are full'],
};

export interface HecTokenSpec {
  token: string;
  /** Indexes the token may write to; empty or absent = any existing index. */
  indexes?: string[];
  defaultIndex?: string;
  /** Indexer acknowledgement (useACK). */
  ack?: boolean;
  disabled?: boolean;
  sourcetype?: string;
  source?: string;
}

export interface SplunkContractOptions {
  hecTokens: HecTokenSpec[];
  /** Indexes that exist (default: main plus every index a token names). */
  indexes?: string[];
  users?: { username: string; password: string }[];
  /** Splunk authentication tokens for the REST API (`Authorization: Bearer <token>`). */
  authTokens?: string[];
  allowQueryStringAuth?: boolean;
  version?: string;
  /** How long after acceptance an ack turns true. */
  ackDelayMs?: number;
  host?: string;
}

export interface IndexedEvent {
  index: string;
  sourcetype: string;
  source: string;
  host: string;
  /** Epoch seconds. */
  time: number;
  event: unknown;
  fields?: Record<string, string | string[]>;
  channel?: string;
  /** Sequence number of the HEC request that delivered it. */
  request: number;
  endpoint: 'event' | 'raw';
}

export interface HecRequestRecord {
  n: number;
  method: string;
  path: string;
  status: number;
  code: number;
  text: string;
  channel?: string;
  gzip: boolean;
  /** The body after gunzip. */
  body: string;
  ackId?: number;
  accepted: number;
}

export interface RestRequestRecord {
  method: string;
  path: string;
  params: Record<string, string>;
  status: number;
  auth?: string;
}

interface AckEntry {
  readyAt: number;
  lost: boolean;
}

interface Channel {
  nextAckId: number;
  acks: Map<number, AckEntry>;
}

const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const MAX_BODY = 64 * 1024 * 1024;

class HecRefusal {
  constructor(
    readonly code: number,
    readonly invalidEventNumber?: number,
  ) {}
}

export class SplunkContractServer {
  readonly hecRequests: HecRequestRecord[] = [];
  readonly restRequests: RestRequestRecord[] = [];
  readonly indexed: IndexedEvent[] = [];
  readonly searches: string[] = [];
  private readonly tokens = new Map<string, HecTokenSpec>();
  private readonly indexes: Set<string>;
  private readonly channels = new Map<string, Channel>();
  private readonly sessions = new Map<string, string>();
  private busyFor = 0;
  private searchDelayMs = 0;
  private loseAcksFor = 0;
  private requestNo = 0;
  private server!: http.Server;
  port = 0;

  private constructor(private readonly opts: SplunkContractOptions) {
    for (const t of opts.hecTokens) this.tokens.set(t.token, t);
    this.indexes = new Set(opts.indexes ?? ['main', ...opts.hecTokens.flatMap((t) => [...(t.indexes ?? []), ...(t.defaultIndex ? [t.defaultIndex] : [])])]);
  }

  static async start(opts: SplunkContractOptions): Promise<SplunkContractServer> {
    const s = new SplunkContractServer(opts);
    s.server = http.createServer((req, res) => {
      s.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) s.send(res, 500, { text: String(err), code: 8 });
      });
    });
    s.server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve) => s.server.listen(0, '127.0.0.1', resolve));
    s.port = (s.server.address() as AddressInfo).port;
    return s;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The next `n` HEC event/raw requests are answered 503 code 9 (busy), and take nothing. */
  busy(n: number): void {
    this.busyFor = n;
  }

  /**
   * The next `n` requests on a token with acknowledgement are answered Success with an ackId, but
   * their events are lost before indexing (the case indexer acknowledgement exists for): the ack
   * never turns true and the events never appear in `indexed`.
   */
  loseAcks(n: number): void {
    this.loseAcksFor = n;
  }

  /** Search requests are answered only after `ms` (a slow search head); 0 answers at once again. */
  delaySearches(ms: number): void {
    this.searchDelayMs = ms;
  }

  setAckDelay(ms: number): void {
    this.opts.ackDelayMs = ms;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---------------------------------------------------------------- plumbing

  private send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string | string[]> = {}): void {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': typeof body === 'string' && text.startsWith('<') ? 'text/xml; charset=UTF-8' : 'application/json; charset=UTF-8',
      'Content-Length': Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
  }

  private readBody(req: http.IncomingMessage): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) {
          reject(new Error('body too large'));
          req.destroy();
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://splunk');
    const path = url.pathname.replace(/\/+$/, '');
    const raw = await this.readBody(req);
    if (path.startsWith('/services/collector')) return this.handleHec(req, res, url, path, raw);
    return this.handleRest(req, res, url, path, raw);
  }

  // ---------------------------------------------------------------- HEC

  private hecReply(
    res: http.ServerResponse,
    rec: Omit<HecRequestRecord, 'status' | 'code' | 'text' | 'accepted'> & { accepted?: number },
    code: number,
    extra: Record<string, unknown> = {},
  ): void {
    const [status, text] = HEC_STATUS[code]!;
    this.hecRequests.push({ ...rec, status, code, text, accepted: rec.accepted ?? 0 });
    this.send(res, status, { text, code, ...extra });
  }

  private async handleHec(req: http.IncomingMessage, res: http.ServerResponse, url: URL, path: string, rawBody: Buffer): Promise<void> {
    const n = ++this.requestNo;
    const route = path.replace(/\/1\.0$/, '');
    const gzip = (req.headers['content-encoding'] ?? '').toLowerCase().includes('gzip');
    const channelParam = url.searchParams.get('channel') ?? undefined;
    const channelHeader = req.headers['x-splunk-request-channel'];
    const channel = (Array.isArray(channelHeader) ? channelHeader[0] : channelHeader) ?? channelParam;
    const rec = { n, method: req.method ?? 'GET', path, channel, gzip, body: '' };

    if (route === '/services/collector/health') {
      if (req.method !== 'GET') return this.send(res, 405, { text: 'Method not allowed', code: 404 });
      const code = this.busyFor > 0 ? 18 : 17;
      const [status, text] = HEC_STATUS[code]!;
      return this.send(res, status, { text, code });
    }
    if (req.method !== 'POST') {
      // measured on splunkd: 405 whose body says 404
      return this.send(res, 405, { text: 'The requested URL was not found on this server.', code: 404 });
    }
    const known = ['/services/collector', '/services/collector/event', '/services/collector/raw', '/services/collector/ack'];
    if (!known.includes(route)) return this.send(res, 404, { text: 'The requested URL was not found on this server.', code: 404 });

    // authentication; a ?token= is looked up first (an unknown one is 403 code 4) and only a
    // known one reaches code 16 when query-string authentication is off (measured ordering)
    const token = this.hecToken(req, url);
    if (typeof token === 'number') return this.hecReply(res, rec, token);
    if (url.searchParams.has('token') && !this.opts.allowQueryStringAuth) return this.hecReply(res, rec, 16);
    if (token.disabled) return this.hecReply(res, rec, 1);

    if (route === '/services/collector/ack') return this.handleAck(res, rec, token, channel, rawBody, gzip);

    if (this.busyFor > 0) {
      this.busyFor -= 1;
      return this.hecReply(res, rec, 9);
    }
    if (channel !== undefined && !GUID.test(channel)) return this.hecReply(res, rec, 11);
    if (token.ack && channel === undefined) return this.hecReply(res, rec, 10);

    let body: string;
    try {
      body = (gzip ? gunzipSync(rawBody) : rawBody).toString('utf8');
    } catch {
      return this.hecReply(res, rec, 6);
    }
    rec.body = body;
    if (body.trim() === '') return this.hecReply(res, rec, 5);

    const parsed = route === '/services/collector/raw' ? this.rawEvents(body, url, token, n, channel) : this.jsonEvents(body, token, n, channel);
    const { events, refusal } = parsed;

    // acknowledgement: a request that was taken whole gets an ackId
    let ackId: number | undefined;
    let lost = false;
    if (token.ack && refusal === undefined && channel !== undefined) {
      const ch = this.channels.get(channel) ?? { nextAckId: 0, acks: new Map<number, AckEntry>() };
      this.channels.set(channel, ch);
      ackId = ch.nextAckId++;
      lost = this.loseAcksFor > 0;
      if (lost) this.loseAcksFor -= 1;
      ch.acks.set(ackId, { readyAt: Date.now() + (this.opts.ackDelayMs ?? 0), lost });
    }
    if (!lost) this.indexed.push(...events);

    if (refusal !== undefined) {
      return this.hecReply(res, { ...rec, accepted: events.length }, refusal.code, { 'invalid-event-number': refusal.invalidEventNumber });
    }
    return this.hecReply(res, { ...rec, ackId, accepted: events.length }, 0, ackId !== undefined ? { ackId } : {});
  }

  /** The token of a request, or the refusal code. `Splunk <token>`; HEC also takes Basic with the token as password. */
  private hecToken(req: http.IncomingMessage, url: URL): HecTokenSpec | number {
    let value: string | undefined;
    const header = req.headers.authorization;
    if (url.searchParams.has('token')) {
      value = url.searchParams.get('token') ?? '';
    } else if (header === undefined || header.trim() === '') {
      return 2;
    } else {
      const m = /^(\S+)\s+(\S+)$/.exec(header.trim());
      if (!m) return 3;
      const scheme = m[1]!.toLowerCase();
      if (scheme === 'splunk') value = m[2];
      else if (scheme === 'basic') {
        const decoded = Buffer.from(m[2]!, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon < 0) return 3;
        value = decoded.slice(colon + 1);
      } else return 3;
    }
    const spec = value !== undefined ? this.tokens.get(value) : undefined;
    return spec ?? 4;
  }

  private handleAck(
    res: http.ServerResponse,
    rec: Omit<HecRequestRecord, 'status' | 'code' | 'text' | 'accepted'>,
    token: HecTokenSpec,
    channel: string | undefined,
    rawBody: Buffer,
    gzip: boolean,
  ): void {
    if (!token.ack) return this.hecReply(res, rec, 14);
    if (channel === undefined) return this.hecReply(res, rec, 10);
    if (!GUID.test(channel)) return this.hecReply(res, rec, 11);
    let body: unknown;
    try {
      const text = (gzip ? gunzipSync(rawBody) : rawBody).toString('utf8');
      rec.body = text;
      if (text.trim() === '') return this.hecReply(res, rec, 5);
      body = JSON.parse(text);
    } catch {
      return this.hecReply(res, rec, 6);
    }
    const acks = (body as { acks?: unknown })?.acks;
    if (!Array.isArray(acks) || !acks.every((a) => Number.isInteger(a) && (a as number) >= 0)) return this.hecReply(res, rec, 6);
    const ch = this.channels.get(channel);
    const now = Date.now();
    const answer: Record<string, boolean> = {};
    for (const id of acks as number[]) {
      const entry = ch?.acks.get(id);
      const done = entry !== undefined && !entry.lost && now >= entry.readyAt;
      answer[String(id)] = done;
      // an ackId reported true is cleared: asking again answers false
      if (done) ch!.acks.delete(id);
    }
    this.hecRequests.push({ ...rec, status: 200, code: 0, text: 'Success', accepted: 0 });
    this.send(res, 200, { acks: answer });
  }

  private resolveIndex(token: HecTokenSpec, requested: unknown): string | number {
    if (requested !== undefined && typeof requested !== 'string') return 6;
    const index = (requested as string | undefined) ?? token.defaultIndex ?? 'main';
    if (token.indexes && token.indexes.length > 0 && !token.indexes.includes(index)) return 7;
    if (!this.indexes.has(index)) return 7;
    return index;
  }

  /** Concatenated JSON events (or a top-level array of them), taken in order until the first bad one. */
  private jsonEvents(body: string, token: HecTokenSpec, request: number, channel?: string): { events: IndexedEvent[]; refusal?: HecRefusal } {
    const events: IndexedEvent[] = [];
    let position = 0;
    for (const piece of splitJson(body)) {
      if (piece.error) return { events, refusal: new HecRefusal(6, position) };
      const values = Array.isArray(piece.value) ? piece.value : [piece.value];
      for (const v of values) {
        const result = this.validateEvent(v, token, request, channel);
        if (typeof result === 'number') return { events, refusal: new HecRefusal(result, position) };
        events.push(result);
        position += 1;
      }
    }
    return { events };
  }

  private validateEvent(v: unknown, token: HecTokenSpec, request: number, channel?: string): IndexedEvent | number {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return 6;
    const e = v as Record<string, unknown>;
    if (!('event' in e)) return 12;
    const ev = e.event;
    if (ev === null || (typeof ev === 'string' && ev.trim() === '')) return 13;
    for (const k of ['host', 'source', 'sourcetype'] as const) if (e[k] !== undefined && typeof e[k] !== 'string') return 6;
    let time = Date.now() / 1000;
    if (e.time !== undefined) {
      const t = typeof e.time === 'number' ? e.time : typeof e.time === 'string' && /^\d+(\.\d+)?$/.test(e.time) ? Number(e.time) : NaN;
      if (!Number.isFinite(t)) return 15;
      time = t;
    }
    let fields: Record<string, string | string[]> | undefined;
    if (e.fields !== undefined) {
      if (e.fields === null || typeof e.fields !== 'object' || Array.isArray(e.fields)) return 15;
      for (const fv of Object.values(e.fields as Record<string, unknown>)) {
        const ok = typeof fv === 'string' || (Array.isArray(fv) && fv.every((x) => typeof x === 'string'));
        if (!ok) return 15;
      }
      fields = e.fields as Record<string, string | string[]>;
    }
    const index = this.resolveIndex(token, e.index);
    if (typeof index === 'number') return index;
    return {
      index,
      sourcetype: (e.sourcetype as string | undefined) ?? token.sourcetype ?? 'httpevent',
      source: (e.source as string | undefined) ?? token.source ?? 'http:contract',
      host: (e.host as string | undefined) ?? this.opts.host ?? '127.0.0.1',
      time,
      event: ev,
      fields,
      channel,
      request,
      endpoint: 'event',
    };
  }

  /** `/raw`: one event a line; metadata from the query string. */
  private rawEvents(body: string, url: URL, token: HecTokenSpec, request: number, channel?: string): { events: IndexedEvent[]; refusal?: HecRefusal } {
    const index = this.resolveIndex(token, url.searchParams.get('index') ?? undefined);
    if (typeof index === 'number') return { events: [], refusal: new HecRefusal(index, 0) };
    const events = body
      .split(/\r?\n/)
      .filter((l) => l.trim() !== '')
      .map<IndexedEvent>((line) => ({
        index,
        sourcetype: url.searchParams.get('sourcetype') ?? token.sourcetype ?? 'httpevent',
        source: url.searchParams.get('source') ?? token.source ?? 'http:contract',
        host: url.searchParams.get('host') ?? this.opts.host ?? '127.0.0.1',
        time: Date.now() / 1000,
        event: line,
        channel,
        request,
        endpoint: 'raw',
      }));
    return { events };
  }

  // ---------------------------------------------------------------- REST

  private restError(res: http.ServerResponse, rec: RestRequestRecord, status: number, type: string, text: string, headers: Record<string, string> = {}): void {
    rec.status = status;
    this.restRequests.push(rec);
    this.send(res, status, { messages: [{ type, text }] }, headers);
  }

  private async handleRest(req: http.IncomingMessage, res: http.ServerResponse, url: URL, path: string, raw: Buffer): Promise<void> {
    const params: Record<string, string> = {};
    for (const [k, v] of url.searchParams) params[k] = v;
    // splunkd reads a POST body as form parameters whatever the Content-Type: splunk-sdk's
    // Context.request (used by oneshotSearch) sends the form body with no Content-Type at all
    const contentType = req.headers['content-type'] ?? '';
    if (req.method === 'POST' && raw.length > 0 && !contentType.includes('json')) {
      for (const [k, v] of new URLSearchParams(raw.toString('utf8'))) params[k] = v;
    }
    const rec: RestRequestRecord = { method: req.method ?? 'GET', path, params, status: 0 };

    if (path === '/services/auth/login') {
      if (req.method !== 'POST') return this.restError(res, rec, 400, 'ERROR', 'Cannot perform action "GET" without a target name to act on.');
      const { username, password } = params;
      if (!username || !password) return this.restError(res, rec, 400, 'WARN', 'Login failed');
      const user = (this.opts.users ?? []).find((u) => u.username === username && u.password === password);
      if (!user) return this.restError(res, rec, 401, 'WARN', 'Login failed');
      const key = randomBytes(24).toString('base64url');
      this.sessions.set(key, user.username);
      rec.status = 200;
      this.restRequests.push(rec);
      const cookie: Record<string, string[]> = params.cookie === '1' ? { 'Set-Cookie': [`splunkd_${this.port}=${key}; Path=/; HttpOnly; Max-Age=3600`] } : {};
      if (params.output_mode === 'json') return this.send(res, 200, { sessionKey: key }, cookie);
      return this.send(res, 200, `<response>\n  <sessionKey>${key}</sessionKey>\n</response>\n`, cookie);
    }

    const who = this.restAuth(req);
    if (who.user === undefined) {
      return who.basic
        ? this.restError(res, rec, 401, 'ERROR', 'Unauthorized', { 'WWW-Authenticate': 'Basic realm="/splunk"' })
        : this.restError(res, rec, 401, 'WARN', 'call not properly authenticated');
    }
    rec.auth = who.user;

    if (path === '/services/server/info') {
      if (req.method !== 'GET') return this.restError(res, rec, 400, 'ERROR', 'Not Found');
      rec.status = 200;
      this.restRequests.push(rec);
      const version = this.opts.version ?? '9.3.0';
      return this.send(res, 200, {
        links: {},
        origin: `${this.url}/services/server/info`,
        updated: new Date().toISOString(),
        generator: { build: 'contract', version },
        entry: [
          {
            name: 'server-info',
            id: `${this.url}/services/server/info/server-info`,
            updated: new Date().toISOString(),
            links: { alternate: '/services/server/info/server-info', list: '/services/server/info/server-info' },
            author: 'system',
            acl: { app: '', can_list: true, can_write: true, modifiable: false, owner: 'system', perms: { read: ['*'], write: [] }, removable: false, sharing: 'system' },
            content: { version, build: 'contract', serverName: 'cordon-contract', product_type: 'enterprise', isFree: false, isTrial: false },
          },
        ],
        paging: { total: 1, perPage: 30, offset: 0 },
        messages: [],
      });
    }

    const jobs = /^\/(?:services|servicesNS\/[^/]+\/[^/]+)\/search(?:\/v2)?\/jobs$/.exec(path);
    if (jobs) {
      if (req.method !== 'POST') return this.restError(res, rec, 400, 'FATAL', 'contract server: listing search jobs is not modelled');
      const search = params.search;
      if (!search || search.trim() === '') {
        return this.restError(
          res,
          rec,
          400,
          'FATAL',
          "The required 'search' parameter for the Splunk platform REST API search/jobs endpoint is not specified. Specify a valid search.",
        );
      }
      if ((params.exec_mode ?? 'normal') !== 'oneshot') return this.restError(res, rec, 400, 'FATAL', 'contract server: only exec_mode=oneshot is modelled');
      this.searches.push(search);
      if (this.searchDelayMs > 0) await new Promise((r) => setTimeout(r, this.searchDelayMs));
      let rows: Record<string, string | string[]>[];
      try {
        rows = runSpl(search, this.indexed, { earliest: params.earliest_time, latest: params.latest_time, now: Date.now() });
      } catch (err) {
        return this.restError(res, rec, 400, 'FATAL', (err as Error).message);
      }
      // count: at most this many results, 100 by default, 0 for all; offset: the first one returned
      const count = params.count === undefined ? 100 : Number(params.count);
      const offset = params.offset === undefined ? 0 : Number(params.offset);
      if (!Number.isInteger(count) || count < 0 || !Number.isInteger(offset) || offset < 0) {
        return this.restError(res, rec, 400, 'FATAL', `Invalid count or offset: count=${params.count ?? ''} offset=${params.offset ?? ''}`);
      }
      rows = rows.slice(offset, count === 0 ? undefined : offset + count);
      const mode = params.output_mode ?? 'xml';
      const names = unique(rows.flatMap((r) => Object.keys(r)));
      rec.status = 200;
      this.restRequests.push(rec);
      if (mode === 'json') {
        return this.send(res, 200, { preview: false, init_offset: 0, messages: [], fields: names.map((name) => ({ name })), results: rows, highlighted: {} });
      }
      if (mode === 'json_rows') {
        return this.send(res, 200, { preview: false, init_offset: 0, messages: [], fields: names, rows: rows.map((r) => names.map((f) => r[f] ?? null)) });
      }
      return this.restError(res, rec, 400, 'FATAL', `contract server: output_mode=${mode} is not modelled for results`);
    }

    if (path.startsWith('/services/search/')) return this.restError(res, rec, 404, 'FATAL', 'Unknown endpoint.');
    return this.restError(res, rec, 404, 'ERROR', 'Not Found');
  }

  /** Session key (`Splunk <key>` or the splunkd cookie), authentication token (`Bearer`/`Splunk`), or Basic. */
  private restAuth(req: http.IncomingMessage): { user?: string; basic: boolean } {
    const header = req.headers.authorization?.trim();
    if (header) {
      const m = /^(\S+)\s+(.+)$/.exec(header);
      if (!m) return { basic: false };
      const scheme = m[1]!.toLowerCase();
      const value = m[2]!;
      if (scheme === 'basic') {
        const decoded = Buffer.from(value, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        const user = (this.opts.users ?? []).find((u) => colon > 0 && u.username === decoded.slice(0, colon) && u.password === decoded.slice(colon + 1));
        return { user: user?.username, basic: true };
      }
      if (scheme === 'splunk' || scheme === 'bearer') {
        const session = this.sessions.get(value);
        if (session) return { user: session, basic: false };
        if ((this.opts.authTokens ?? []).includes(value)) return { user: 'token-user', basic: false };
      }
      return { basic: false };
    }
    const cookie = req.headers.cookie ?? '';
    const m = new RegExp(`(?:^|;\\s*)splunkd_${this.port}=([^;]+)`).exec(cookie);
    const session = m ? this.sessions.get(m[1]!) : undefined;
    return { user: session, basic: false };
  }
}

// ---------------------------------------------------------------- concatenated JSON

/** Splits concatenated JSON values (whitespace between them allowed), yielding each or the first error. */
export function* splitJson(text: string): Generator<{ value?: unknown; error?: true }> {
  let i = 0;
  const n = text.length;
  while (i < n) {
    while (i < n && /\s/.test(text[i]!)) i++;
    if (i >= n) return;
    const start = i;
    const open = text[i];
    if (open !== '{' && open !== '[') {
      yield { error: true };
      return;
    }
    let depth = 0;
    let inString = false;
    for (; i < n; i++) {
      const c = text[i];
      if (inString) {
        if (c === '\\') i++;
        else if (c === '"') inString = false;
        continue;
      }
      if (c === '"') inString = true;
      else if (c === '{' || c === '[') depth++;
      else if (c === '}' || c === ']') {
        depth--;
        if (depth === 0) {
          i++;
          break;
        }
      }
    }
    if (depth !== 0) {
      yield { error: true };
      return;
    }
    try {
      yield { value: JSON.parse(text.slice(start, i)) };
    } catch {
      yield { error: true };
      return;
    }
  }
}

// ---------------------------------------------------------------- a small SPL

/**
 * Enough SPL for enrichment searches: `search` with field=value terms (quoted or not, `*`
 * wildcards, case-insensitive values), bare terms, NOT, OR (binding tighter than the implicit
 * AND, as in Splunk), parentheses, `index=`, `earliest=`/`latest=`; then `stats count [as x] [by
 * f, ...]`, `sort [N] [-|+]field`, `head N`, `table`/`fields`. Events are seen as Splunk's JSON
 * extraction shows them: top-level keys, nested objects as `a.b`, arrays as `name{}` multivalues.
 */
export function runSpl(
  spl: string,
  events: readonly IndexedEvent[],
  opts: { earliest?: string; latest?: string; now: number },
): Record<string, string | string[]>[] {
  const stages = splitPipes(spl.trim());
  const first = stages.shift() ?? '';
  const m = /^(\S+)\s*([\s\S]*)$/.exec(first);
  if (!m || m[1] !== 'search') throw new Error(`Unknown search command '${m?.[1] ?? ''}'.`);
  const tokens = tokenize(m[2]!);
  const parser = new SearchParser(tokens, opts.now);
  const predicate = parser.parse();
  const window = {
    earliest: parser.earliest ?? (opts.earliest ? relativeTime(opts.earliest, opts.now) : undefined),
    latest: parser.latest ?? (opts.latest ? relativeTime(opts.latest, opts.now) : undefined),
  };
  let rows: Record<string, string | string[]>[] = events
    .filter((e) => (window.earliest === undefined || e.time * 1000 >= window.earliest) && (window.latest === undefined || e.time * 1000 < window.latest))
    .map(eventFields)
    .filter(predicate)
    .sort((a, b) => Number(b._time) - Number(a._time));
  for (const stage of stages) rows = runCommand(stage.trim(), rows);
  return rows;
}

function splitPipes(spl: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inString = false;
  for (let i = 0; i < spl.length; i++) {
    const c = spl[i]!;
    if (inString) {
      cur += c;
      if (c === '\\' && i + 1 < spl.length) cur += spl[++i];
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      cur += c;
    } else if (c === '|') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  if (inString) throw new Error('Unbalanced quotes.');
  out.push(cur);
  return out;
}

type Token = { t: 'word' | 'string' | '(' | ')' | 'op'; v: string };

function tokenize(s: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '(' || c === ')') {
      out.push({ t: c, v: c });
      i++;
    } else if (c === '"') {
      let v = '';
      i++;
      for (;;) {
        if (i >= s.length) throw new Error('Unbalanced quotes.');
        const d = s[i]!;
        if (d === '\\' && i + 1 < s.length) {
          v += s[i + 1];
          i += 2;
        } else if (d === '"') {
          i++;
          break;
        } else {
          v += d;
          i++;
        }
      }
      out.push({ t: 'string', v });
    } else if (c === '!' && s[i + 1] === '=') {
      out.push({ t: 'op', v: '!=' });
      i += 2;
    } else if (c === '=') {
      out.push({ t: 'op', v: '=' });
      i++;
    } else {
      let v = '';
      while (i < s.length && !/[\s()="]/.test(s[i]!) && !(s[i] === '!' && s[i + 1] === '=')) v += s[i++];
      out.push({ t: 'word', v });
    }
  }
  return out;
}

type Row = Record<string, string | string[]>;
type Pred = (r: Row) => boolean;

class SearchParser {
  private i = 0;
  earliest?: number;
  latest?: number;
  constructor(
    private readonly tokens: Token[],
    private readonly now: number,
  ) {}

  parse(): Pred {
    if (this.tokens.length === 0) return () => true;
    const p = this.and();
    if (this.i < this.tokens.length) throw new Error(`Error in 'search' command: unexpected '${this.tokens[this.i]!.v}'.`);
    return p;
  }

  private peek(): Token | undefined {
    return this.tokens[this.i];
  }

  /** Implicit (or explicit) AND of OR-groups: in SPL, OR binds tighter than AND. */
  private and(): Pred {
    const parts: Pred[] = [];
    for (;;) {
      const t = this.peek();
      if (!t || t.t === ')') break;
      if (t.t === 'word' && t.v === 'AND') {
        this.i++;
        continue;
      }
      parts.push(this.or());
    }
    if (parts.length === 0) throw new Error("Error in 'search' command: empty expression.");
    return (r) => parts.every((p) => p(r));
  }

  private or(): Pred {
    const parts = [this.unary()];
    while (this.peek()?.t === 'word' && this.peek()!.v === 'OR') {
      this.i++;
      parts.push(this.unary());
    }
    return parts.length === 1 ? parts[0]! : (r) => parts.some((p) => p(r));
  }

  private unary(): Pred {
    const t = this.peek();
    if (!t) throw new Error("Error in 'search' command: missing term.");
    if (t.t === 'word' && t.v === 'NOT') {
      this.i++;
      const p = this.unary();
      return (r) => !p(r);
    }
    if (t.t === '(') {
      this.i++;
      const p = this.and();
      if (this.peek()?.t !== ')') throw new Error("Error in 'search' command: unbalanced parentheses.");
      this.i++;
      return p;
    }
    return this.term();
  }

  private term(): Pred {
    const t = this.tokens[this.i++]!;
    const op = this.peek();
    if ((t.t === 'word' || t.t === 'string') && op?.t === 'op') {
      this.i++;
      const valueTok = this.tokens[this.i++];
      if (!valueTok || (valueTok.t !== 'word' && valueTok.t !== 'string')) throw new Error(`Error in 'search' command: missing value for '${t.v}'.`);
      const field = t.v;
      const value = valueTok.v;
      if (field === 'earliest' || field === 'latest') {
        const ms = relativeTime(value, this.now);
        if (field === 'earliest') this.earliest = ms;
        else this.latest = ms;
        return () => true;
      }
      const matcher = glob(value);
      const hit: Pred = (r) => {
        const v = r[field];
        if (v === undefined) return false;
        return (Array.isArray(v) ? v : [v]).some((x) => matcher(x));
      };
      return op.v === '=' ? hit : (r) => r[field] !== undefined && !hit(r);
    }
    if (t.t === 'op' || t.t === ')' || t.t === '(') throw new Error(`Error in 'search' command: unexpected '${t.v}'.`);
    const matcher = glob(`*${t.v}*`);
    return (r) => matcher(String(r._raw ?? ''));
  }
}

function glob(pattern: string): (v: string) => boolean {
  const re = new RegExp('^' + pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$', 'is');
  return (v) => re.test(v);
}

/** `-24h`, `-7d@d`, `now`, `0`, epoch seconds → epoch ms. */
function relativeTime(spec: string, now: number): number {
  if (spec === 'now') return now;
  if (/^\d+(\.\d+)?$/.test(spec)) return Number(spec) * 1000;
  const m = /^([-+])(\d+)(s|m|h|d|w|mon|y)(?:@(\w+))?$/.exec(spec);
  if (!m) throw new Error(`Invalid value "${spec}" for time term 'earliest'`);
  const unitMs: Record<string, number> = { s: 1e3, m: 6e4, h: 36e5, d: 864e5, w: 6048e5, mon: 2592e6, y: 31536e6 };
  const delta = Number(m[2]) * unitMs[m[3]!]!;
  let t = m[1] === '-' ? now - delta : now + delta;
  if (m[4]) {
    const snap = unitMs[m[4]] ?? unitMs.d!;
    t = Math.floor(t / snap) * snap;
  }
  return t;
}

/** An indexed event as a search sees it. */
function eventFields(e: IndexedEvent): Row {
  const row: Row = {
    _time: String(e.time),
    _raw: typeof e.event === 'string' ? e.event : JSON.stringify(e.event),
    index: e.index,
    sourcetype: e.sourcetype,
    source: e.source,
    host: e.host,
  };
  if (e.event !== null && typeof e.event === 'object' && !Array.isArray(e.event)) flatten(e.event as Record<string, unknown>, '', row);
  for (const [k, v] of Object.entries(e.fields ?? {})) row[k] = v;
  return row;
}

function flatten(o: Record<string, unknown>, prefix: string, row: Row): void {
  for (const [k, v] of Object.entries(o)) {
    const name = prefix + k;
    if (v === null || v === undefined) continue;
    if (Array.isArray(v)) {
      const scalars = v.filter((x) => x === null || typeof x !== 'object').map((x) => String(x));
      if (scalars.length) row[`${name}{}`] = scalars;
    } else if (typeof v === 'object') flatten(v as Record<string, unknown>, `${name}.`, row);
    else row[name] = String(v);
  }
}

function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

function runCommand(stage: string, rows: Row[]): Row[] {
  const m = /^(\S+)\s*([\s\S]*)$/.exec(stage);
  if (!m) throw new Error('Error in search: empty command after a pipe.');
  const [, cmd, args] = m as unknown as [string, string, string];
  switch (cmd) {
    case 'head': {
      const n = /^(?:limit=)?(\d+)$/.exec(args.trim());
      if (args.trim() !== '' && !n) throw new Error(`Error in 'head' command: invalid argument '${args.trim()}'.`);
      return rows.slice(0, n ? Number(n[1]) : 10);
    }
    case 'stats': {
      const s = /^count(?:\s+as\s+(\w+))?(?:\s+by\s+(.+))?$/i.exec(args.trim());
      if (!s) throw new Error(`contract server: stats '${args}' is not modelled (count [as x] [by fields] only)`);
      const countName = s[1] ?? 'count';
      const by = s[2] ? s[2].split(/[\s,]+/).filter(Boolean) : [];
      const groups = new Map<string, { key: string[]; count: number }>();
      for (const r of rows) {
        // a multivalue group-by field counts the event once per value; an event without one is left out
        let combos: string[][] = [[]];
        for (const f of by) {
          const v = r[f];
          if (v === undefined) {
            combos = [];
            break;
          }
          const vals = Array.isArray(v) ? v : [v];
          combos = combos.flatMap((c) => vals.map((x) => [...c, x]));
        }
        for (const c of combos) {
          const k = JSON.stringify(c);
          const g = groups.get(k) ?? { key: c, count: 0 };
          g.count += 1;
          groups.set(k, g);
        }
      }
      return [...groups.values()]
        .sort((a, b) => (a.key.join('\u0000') < b.key.join('\u0000') ? -1 : 1))
        .map((g) => {
          const row: Row = {};
          by.forEach((f, i) => (row[f] = g.key[i]!));
          row[countName] = String(g.count);
          return row;
        });
    }
    case 'sort': {
      const parts = args.trim().split(/\s+/).filter(Boolean);
      let limit: number | undefined;
      if (parts[0] && /^\d+$/.test(parts[0])) limit = Number(parts.shift());
      const keys: { field: string; desc: boolean }[] = [];
      for (let i = 0; i < parts.length; i++) {
        let p = parts[i]!.replace(/,$/, '');
        let desc = false;
        if (p === '-' || p === '+') {
          desc = p === '-';
          p = (parts[++i] ?? '').replace(/,$/, '');
        } else if (p.startsWith('-') || p.startsWith('+')) {
          desc = p[0] === '-';
          p = p.slice(1);
        }
        if (p) keys.push({ field: p, desc });
      }
      const val = (r: Row, f: string) => {
        const v = r[f];
        return Array.isArray(v) ? v[0] : v;
      };
      const sorted = [...rows].sort((a, b) => {
        for (const k of keys) {
          const x = val(a, k.field);
          const y = val(b, k.field);
          if (x === y) continue;
          if (x === undefined) return 1;
          if (y === undefined) return -1;
          const nx = Number(x);
          const ny = Number(y);
          const c = !Number.isNaN(nx) && !Number.isNaN(ny) ? nx - ny : x < y ? -1 : 1;
          return k.desc ? -c : c;
        }
        return 0;
      });
      return limit !== undefined ? sorted.slice(0, limit) : sorted.slice(0, 10_000);
    }
    case 'table':
    case 'fields': {
      const fields = args.split(/[\s,]+/).filter(Boolean);
      return rows.map((r) => {
        const out: Row = {};
        for (const f of fields) if (r[f] !== undefined) out[f] = r[f]!;
        return out;
      });
    }
    default:
      throw new Error(`Unknown search command '${cmd}'.`);
  }
}
