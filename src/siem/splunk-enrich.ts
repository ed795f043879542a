import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { Incident } from '../correlate/incident';
import type { SplunkSiemConfig } from './config';
import { parties } from './inputs';

/**
 * Enrichment from Splunk: one oneshot search (splunk-sdk `Service.oneshotSearch`) for what the
 * incident's entities did recently in whatever Splunk holds (firewall, proxy, EDR sourcetypes),
 * summarised small enough to attach to the incident.
 *
 * The SPL is built from values Cordon did not choose (entity names come from telemetry), so every
 * value is a quoted SPL string with `\` and `"` escaped, field names and time modifiers are
 * validated by the config schema, and nothing is ever spliced in unquoted.
 */

type SearchConfig = SplunkSiemConfig['search'];

export interface ActivityRow {
  sourcetype: string;
  dest_port: string;
  count: number;
}

/** What gets attached to the incident. */
export interface IncidentEnrichment {
  source: 'splunk';
  query: string;
  earliest: string;
  /** Events across all rows. */
  total: number;
  rows: ActivityRow[];
  sourcetypes: string[];
  ports: string[];
  /** The search hit the row limit: there may be more. */
  truncated: boolean;
  /** Entities that did not fit into one search (maxEntities). */
  entitiesLeftOut: number;
  searchedAt: string;
}

/** An SPL string literal: `"..."` with backslash and double quote escaped. */
export function splQuote(value: string): string {
  return '"' + value.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
}

/** The recent-activity search for some IPs and host names. */
export function activitySearch(
  entities: { ips: readonly string[]; hosts: readonly string[] },
  opts: Pick<SearchConfig, 'indexes' | 'ipFields' | 'hostFields' | 'earliest' | 'limit'>,
): string {
  const terms: string[] = [];
  for (const ip of entities.ips) for (const f of opts.ipFields) terms.push(`${f}=${splQuote(ip)}`);
  for (const h of entities.hosts) for (const f of opts.hostFields) terms.push(`${f}=${splQuote(h)}`);
  if (terms.length === 0) throw new Error('no entity to search for');
  const indexes = opts.indexes.map((i) => (i === '*' ? 'index=*' : `index=${splQuote(i)}`));
  const indexClause = indexes.length === 1 ? indexes[0]! : `(${indexes.join(' OR ')})`;
  return (
    `search ${indexClause} (${terms.join(' OR ')}) earliest=${opts.earliest}` +
    ` | stats count by sourcetype, dest_port | sort - count | head ${opts.limit}`
  );
}

// ---------------------------------------------------------------- splunk-sdk

/** The parts of splunk-sdk (no type definitions shipped) used here. */
interface SdkResponse {
  status: number | string;
  data: unknown;
  error: unknown;
  response: { headers: Record<string, unknown>; statusCode: number | string } | null;
}
interface SdkHttp {
  _buildResponse(error: unknown, response: SdkResponse['response'], data: string | null): SdkResponse;
}
interface SdkHttpClass {
  extend(proto: Record<string, unknown>): new (...args: unknown[]) => SdkHttp;
}
interface SdkService {
  oneshotSearch(query: string, params: Record<string, string>, namespace?: unknown, responseTimeout?: number): Promise<unknown>;
}
type SdkServiceClass = new (http: unknown, params: Record<string, unknown>) => SdkService;

// lib/* directly: the package index also loads dotenv, which reads a .env from the working directory.
// The SDK's logger prints splunkd's messages to the console (its level lives in process.env.LOG_LEVEL);
// those messages travel in SplunkSearchError instead, so it is silenced unless LOG_LEVEL was set.
const logLevelSet = process.env.LOG_LEVEL !== undefined;
const SdkHttpBase = require('splunk-sdk/lib/http') as SdkHttpClass;
const SdkServiceCtor = require('splunk-sdk/lib/service') as SdkServiceClass;
if (!logLevelSet) (require('splunk-sdk/lib/log') as { Logger: { setLevel(level: string): void } }).Logger.setLevel('NONE');

/**
 * A splunk-sdk Http over node:http/https that verifies TLS. The SDK's own NodeHttp sets
 * `rejectUnauthorized: false` on every request, which would hand the search credentials to
 * whoever sits on the path; this one takes a CA instead.
 */
function verifyingHttp(tls: { ca?: Buffer; rejectUnauthorized: boolean }, timeoutMs: number): SdkHttp {
  const agent = new https.Agent({ keepAlive: true, ca: tls.ca, rejectUnauthorized: tls.rejectUnauthorized });
  const Ctor = SdkHttpBase.extend({
    init: function (this: { _super: () => void }) {
      this._super();
    },
    makeRequest: function (this: SdkHttp, url: string, message: { method: string; headers: Record<string, string>; body?: string }) {
      const self = this;
      return new Promise<SdkResponse>((resolve, reject) => {
        const u = new URL(url);
        const lib = u.protocol === 'https:' ? https : http;
        const body = message.body ?? '';
        const req = lib.request(
          u,
          {
            method: message.method,
            agent: u.protocol === 'https:' ? agent : undefined,
            timeout: timeoutMs,
            headers: { ...message.headers, 'Content-Length': String(Buffer.byteLength(body)), 'User-Agent': 'cordon-splunk-enrich' },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () =>
              resolve(self._buildResponse(null, { headers: res.headers as Record<string, unknown>, statusCode: res.statusCode ?? 0 }, Buffer.concat(chunks).toString('utf8'))),
            );
            res.on('error', (err) => reject(failure(err)));
          },
        );
        req.on('timeout', () => req.destroy(new Error(`no answer from Splunk within ${timeoutMs} ms`)));
        req.on('error', (err) => reject(failure(err)));
        req.end(body);
      });
    },
    parseJson: function (json: string) {
      return JSON.parse(json) as unknown;
    },
  });
  return new Ctor();
}

/** A request that got no answer, as the SDK's callers expect it (its own _buildResponse throws without a response). */
function failure(error: Error): SdkResponse {
  return { status: 0, data: null, error, response: null };
}

export class SplunkSearchError extends Error {
  override name = 'SplunkSearchError';
  constructor(
    readonly status: number | null,
    message: string,
  ) {
    super(message);
  }
}

/** Turns what splunk-sdk rejects with (a response object, an Error, a string) into an Error. */
function searchError(err: unknown): SplunkSearchError {
  if (err instanceof Error) return new SplunkSearchError(null, err.message);
  if (typeof err === 'string') return new SplunkSearchError(null, err);
  const r = err as Partial<SdkResponse>;
  const status = typeof r.status === 'number' && r.status > 0 ? r.status : null;
  const messages = (r.data as { messages?: { type?: string; text?: string }[] } | undefined)?.messages;
  const text = messages?.map((m) => `${m.type ?? 'ERROR'}: ${m.text ?? ''}`).join('; ');
  const cause = typeof (r.error as Error | undefined)?.message === 'string' ? (r.error as Error).message : undefined;
  return new SplunkSearchError(status, `Splunk search failed (${status ?? 'no response'}): ${text || cause || 'no message'}`);
}

export class SplunkEnricher {
  private readonly service: SdkService;

  constructor(
    private readonly config: SearchConfig,
    private readonly now: () => number = Date.now,
  ) {
    const u = new URL(config.url);
    const tls = { ca: config.tls.caFile ? readFileSync(config.tls.caFile) : undefined, rejectUnauthorized: config.tls.rejectUnauthorized };
    const params: Record<string, unknown> = {
      scheme: u.protocol.replace(':', ''),
      host: u.hostname,
      port: Number(u.port || (u.protocol === 'https:' ? 443 : 80)),
      app: config.app,
      timeout: config.timeoutMs,
    };
    if (config.token) {
      params.sessionKey = config.token;
      params.authorization = 'Bearer';
    } else {
      params.username = config.username;
      params.password = config.password;
    }
    // the whole exchange has config.timeoutMs (oneshot); a socket idle past it is cut a little later
    this.service = new SdkServiceCtor(verifyingHttp(tls, config.timeoutMs + 1_000), params);
  }

  /**
   * Runs one SPL oneshot search and returns its rows (field values are strings, as Splunk sends
   * them): at most `count` (0: all), and within the configured timeout for the whole exchange.
   */
  async oneshot(spl: string, count = 0): Promise<Record<string, unknown>[]> {
    let data: unknown;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new SplunkSearchError(null, `Splunk search gave no result within ${this.config.timeoutMs} ms`)), this.config.timeoutMs);
    });
    try {
      data = await Promise.race([this.service.oneshotSearch(spl, { output_mode: 'json', count: String(count) }), timeout]);
    } catch (err) {
      throw err instanceof SplunkSearchError ? err : searchError(err);
    } finally {
      clearTimeout(timer);
    }
    const results = (data as { results?: unknown })?.results;
    if (!Array.isArray(results)) throw new SplunkSearchError(null, 'Splunk answered a oneshot search without results');
    return results as Record<string, unknown>[];
  }

  /** Recent activity of the incident's entities, in a compact summary. */
  async recentActivity(incident: Incident): Promise<IncidentEnrichment> {
    const p = parties(incident);
    const max = this.config.maxEntities;
    const ips = p.ips.slice(0, max);
    const hosts = this.config.hostFields.length > 0 ? p.hosts.slice(0, Math.max(0, max - ips.length)) : [];
    const entitiesLeftOut = p.ips.length - ips.length + (this.config.hostFields.length > 0 ? p.hosts.length - hosts.length : 0);
    const query = activitySearch({ ips, hosts }, this.config);
    const results = await this.oneshot(query);
    const rows: ActivityRow[] = results.map((r) => ({
      sourcetype: String(r.sourcetype ?? ''),
      dest_port: String(r.dest_port ?? ''),
      count: Number(r.count ?? 0),
    }));
    return {
      source: 'splunk',
      query,
      earliest: this.config.earliest,
      total: rows.reduce((s, r) => s + r.count, 0),
      rows,
      sourcetypes: [...new Set(rows.map((r) => r.sourcetype))],
      ports: [...new Set(rows.map((r) => r.dest_port))],
      truncated: rows.length >= this.config.limit,
      entitiesLeftOut,
      searchedAt: new Date(this.now()).toISOString(),
    };
  }
  /**
   * What an enrich step attaches to its incident: the playbook's query (already rendered with every
   * value quoted) or, without one, the built-in recent-activity search. A failed or slow search is
   * an outcome like any other; it never throws.
   */
  async enrich(incident: Incident, query: string | undefined): Promise<EnrichOutcome> {
    try {
      if (query === undefined) return { outcome: 'ok', ...(await this.recentActivity(incident)) };
      const results = await this.oneshot(query, this.config.limit + 1);
      return { outcome: 'ok', source: 'splunk', query, ...boundRows(results, this.config.limit), searchedAt: new Date(this.now()).toISOString() };
    } catch (err) {
      const e = err instanceof SplunkSearchError ? err : new SplunkSearchError(null, (err as Error).message);
      return { outcome: 'failed', source: 'splunk', query: query ?? null, status: e.status, error: e.message.slice(0, 1_000) };
    }
  }
}

/** Rows an enrich step keeps of a search, and how much of each: the ledger record stays small. */
export const ROW_BOUNDS = { fields: 32, valueChars: 256, values: 16, bytes: 32 * 1024 } as const;

export type SearchRow = Record<string, string | string[]>;

export type EnrichOutcome =
  | ({ outcome: 'ok' } & (IncidentEnrichment | { source: 'splunk'; query: string; rows: SearchRow[]; truncated: boolean; searchedAt: string }))
  | { outcome: 'failed'; source: 'splunk'; query: string | null; status: number | null; error: string }
  | { outcome: 'skipped'; source: 'splunk'; reason: string };

/**
 * At most `limit` rows, each with at most ROW_BOUNDS.fields fields (Splunk's internal `_*` fields
 * but `_time` and `_raw` left out), values cut to ROW_BOUNDS.valueChars, multivalues to
 * ROW_BOUNDS.values, and rows dropped from the end until the whole fits in ROW_BOUNDS.bytes.
 */
export function boundRows(results: readonly Record<string, unknown>[], limit: number): { rows: SearchRow[]; truncated: boolean } {
  let truncated = results.length > limit;
  const cut = (v: unknown) => {
    const text = typeof v === 'string' ? v : JSON.stringify(v) ?? '';
    if (text.length <= ROW_BOUNDS.valueChars) return text;
    truncated = true;
    return `${text.slice(0, ROW_BOUNDS.valueChars - 1)}…`;
  };
  const rows = results.slice(0, limit).map((r) => {
    const row: SearchRow = {};
    const keys = Object.keys(r).filter((k) => !k.startsWith('_') || k === '_time' || k === '_raw');
    if (keys.length > ROW_BOUNDS.fields) truncated = true;
    for (const k of keys.slice(0, ROW_BOUNDS.fields)) {
      const v = r[k];
      if (Array.isArray(v)) {
        if (v.length > ROW_BOUNDS.values) truncated = true;
        row[k.slice(0, 128)] = v.slice(0, ROW_BOUNDS.values).map(cut);
      } else row[k.slice(0, 128)] = cut(v);
    }
    return row;
  });
  while (rows.length > 0 && Buffer.byteLength(JSON.stringify(rows)) > ROW_BOUNDS.bytes) {
    rows.pop();
    truncated = true;
  }
  return { rows, truncated };
}
