import http from 'node:http';
import { LoopbackServer, readBody } from './loopback-server';

/**
 * An in-process Slack incoming-webhook contract server, written from Slack's documentation:
 * "Sending messages using incoming webhooks" (a JSON body with `text` and/or `blocks`, 200 `ok`),
 * "Improving error conditions for Incoming Webhooks" (the error strings and their statuses),
 * "Rate limits" (HTTP 429 with a Retry-After header in seconds), the Block Kit reference (block and
 * element shapes, at most 50 blocks, text lengths) and "Formatting text for app surfaces" (mrkdwn:
 * `<...>` is a link or mention, `&amp; &lt; &gt;` are the only escapes).
 *
 *   status  body                  when
 *   200     ok                    accepted
 *   400     invalid_payload       the body is not JSON (or a form with a JSON `payload`) of an object
 *   400     no_text               neither text nor blocks nor attachments        (reported, not on Slack's error page)
 *   400     invalid_blocks        blocks that are not valid Block Kit            (reported, not on Slack's error page)
 *   404     no_service            the webhook URL is unknown, disabled or revoked
 *   410     channel_is_archived   `archive(hook)` was called
 *   429     (JSON)                `rateLimit(n, seconds)`: the next n requests, with Retry-After
 *   500     rollup_error          `fail(n)`: the next n requests
 *
 * What it accepted is kept in `messages`; `render` shows a message as a reader would see it (the
 * text with escapes decoded, and the links and mentions Slack would make of it), so tests assert
 * on what people see, not on what a client believes it sent.
 */

const MAX_BLOCKS = 50;
const TEXT_TYPES = new Set(['plain_text', 'mrkdwn']);

export interface SlackRequestRecord {
  path: string;
  status: number;
  body: string;
  at: number;
}

export interface SlackMessage {
  path: string;
  payload: { text?: string; blocks?: unknown[] };
  at: number;
}

export class SlackWebhookServer {
  readonly requests: SlackRequestRecord[] = [];
  readonly messages: SlackMessage[] = [];
  private readonly hooks: Set<string>;
  private readonly archived = new Set<string>();
  private limited = 0;
  private retryAfterSec = 1;
  private failing = 0;
  private server!: LoopbackServer;

  private constructor(hooks: string[]) {
    this.hooks = new Set(hooks);
  }

  static async start(opts: { hooks: string[] }): Promise<SlackWebhookServer> {
    const s = new SlackWebhookServer(opts.hooks);
    s.server = await LoopbackServer.start((req, res) => s.handle(req, res));
    return s;
  }

  url(hook: string): string {
    return this.server.url(hook);
  }

  rateLimit(n: number, retryAfterSec: number): void {
    this.limited = n;
    this.retryAfterSec = retryAfterSec;
  }

  fail(n: number): void {
    this.failing = n;
  }

  archive(hook: string): void {
    this.archived.add(hook);
  }

  revoke(hook: string): void {
    this.hooks.delete(hook);
  }

  get port(): number {
    return this.server.port;
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private reply(res: http.ServerResponse, path: string, status: number, body: string, headers: Record<string, string> = {}): void {
    this.requests.push({ path, status, body, at: Date.now() });
    res.writeHead(status, { 'content-type': body.startsWith('{') ? 'application/json' : 'text/html', 'content-length': Buffer.byteLength(body), ...headers });
    res.end(body);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const raw = (await readBody(req)).toString('utf8');
    const path = new URL(req.url ?? '/', 'http://slack').pathname;
    if (req.method !== 'POST') return this.reply(res, path, 405, 'invalid_method');
    if (!this.hooks.has(path)) return this.reply(res, path, 404, 'no_service');
    if (this.archived.has(path)) return this.reply(res, path, 410, 'channel_is_archived');
    if (this.limited > 0) {
      this.limited -= 1;
      return this.reply(res, path, 429, JSON.stringify({ ok: false, error: 'rate_limited' }), { 'retry-after': String(this.retryAfterSec) });
    }
    if (this.failing > 0) {
      this.failing -= 1;
      return this.reply(res, path, 500, 'rollup_error');
    }
    const payload = parseBody(raw, String(req.headers['content-type'] ?? ''));
    if (payload === undefined) return this.reply(res, path, 400, 'invalid_payload');
    const hasText = typeof payload.text === 'string' && payload.text.trim() !== '';
    if (!hasText && payload.blocks === undefined && payload.attachments === undefined) return this.reply(res, path, 400, 'no_text');
    if (payload.blocks !== undefined && !validBlocks(payload.blocks)) return this.reply(res, path, 400, 'invalid_blocks');
    this.messages.push({ path, payload: payload as SlackMessage['payload'], at: Date.now() });
    return this.reply(res, path, 200, 'ok');
  }
}

/** A JSON body, or the legacy form body with the JSON in `payload`. */
function parseBody(raw: string, contentType: string): Record<string, unknown> | undefined {
  let text = raw;
  if (contentType.includes('application/x-www-form-urlencoded')) text = new URLSearchParams(raw).get('payload') ?? '';
  else if (!contentType.includes('application/json')) return undefined;
  try {
    const v = JSON.parse(text) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- Block Kit

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const only = (o: Obj, keys: string[]) => Object.keys(o).every((k) => keys.includes(k));

function textObject(v: unknown, max: number, type?: 'plain_text'): boolean {
  if (!isObj(v) || !only(v, ['type', 'text', 'emoji', 'verbatim'])) return false;
  if (typeof v.type !== 'string' || !TEXT_TYPES.has(v.type) || (type && v.type !== type)) return false;
  if (v.type === 'plain_text' && v.verbatim !== undefined) return false;
  if (v.type === 'mrkdwn' && v.emoji !== undefined) return false;
  return typeof v.text === 'string' && v.text.length >= 1 && v.text.length <= max;
}

function button(v: unknown): boolean {
  if (!isObj(v) || v.type !== 'button' || !only(v, ['type', 'text', 'action_id', 'url', 'value', 'style', 'confirm', 'accessibility_label'])) return false;
  if (!textObject(v.text, 75, 'plain_text')) return false;
  if (v.url !== undefined && (typeof v.url !== 'string' || v.url.length > 3000 || !/^https?:\/\//.test(v.url))) return false;
  if (v.action_id !== undefined && (typeof v.action_id !== 'string' || v.action_id.length > 255)) return false;
  return v.style === undefined || v.style === 'primary' || v.style === 'danger';
}

function block(v: unknown): boolean {
  if (!isObj(v) || typeof v.type !== 'string') return false;
  if (v.block_id !== undefined && (typeof v.block_id !== 'string' || v.block_id.length > 255)) return false;
  switch (v.type) {
    case 'header':
      return only(v, ['type', 'block_id', 'text']) && textObject(v.text, 150, 'plain_text');
    case 'divider':
      return only(v, ['type', 'block_id']);
    case 'section': {
      if (!only(v, ['type', 'block_id', 'text', 'fields', 'accessory'])) return false;
      if (v.text === undefined && v.fields === undefined) return false;
      if (v.text !== undefined && !textObject(v.text, 3000)) return false;
      if (v.fields !== undefined && !(Array.isArray(v.fields) && v.fields.length >= 1 && v.fields.length <= 10 && v.fields.every((f) => textObject(f, 2000)))) return false;
      return v.accessory === undefined || button(v.accessory);
    }
    case 'context':
      return only(v, ['type', 'block_id', 'elements']) && Array.isArray(v.elements) && v.elements.length >= 1 && v.elements.length <= 10 && v.elements.every((e) => textObject(e, 3000));
    case 'actions':
      return only(v, ['type', 'block_id', 'elements']) && Array.isArray(v.elements) && v.elements.length >= 1 && v.elements.length <= 25 && v.elements.every(button);
    default:
      return false;
  }
}

function validBlocks(blocks: unknown): boolean {
  return Array.isArray(blocks) && blocks.length <= MAX_BLOCKS && blocks.every(block);
}

// ---------------------------------------------------------------- what a reader sees

export interface Rendered {
  /** Every text a reader sees, escapes decoded, in order. */
  text: string;
  /** Links Slack makes: `<url|label>` and `<url>` in mrkdwn, and the URLs of buttons. */
  links: { url: string; label: string }[];
  /** `<!here>`, `<!channel>`, `<@U...>`, `<#C...>`: what would notify people. */
  mentions: string[];
}

export function render(payload: SlackMessage['payload']): Rendered {
  const out: Rendered = { text: '', links: [], mentions: [] };
  const add = (t: unknown, mrkdwn: boolean) => {
    if (!isObj(t) || typeof t.text !== 'string') return;
    out.text += `${mrkdwn ? mrkdwnText(t.text, out) : t.text}\n`;
  };
  for (const b of payload.blocks ?? []) {
    if (!isObj(b)) continue;
    if (isObj(b.text)) add(b.text, b.text.type === 'mrkdwn');
    for (const f of Array.isArray(b.fields) ? b.fields : []) add(f, isObj(f) && f.type === 'mrkdwn');
    for (const e of Array.isArray(b.elements) ? b.elements : []) {
      if (isObj(e) && e.type === 'button') {
        out.links.push({ url: String(e.url), label: isObj(e.text) ? String(e.text.text) : '' });
      } else add(e, isObj(e) && e.type === 'mrkdwn');
    }
  }
  if (!payload.blocks && typeof payload.text === 'string') out.text += mrkdwnText(payload.text, out);
  return out;
}

/** mrkdwn as Slack reads it: `<...>` controls, and the three entities decoded once elsewhere. */
function mrkdwnText(text: string, out: Rendered): string {
  const decoded = (s: string) => s.replace(/&(lt|gt|amp);/g, (_, e: string) => ({ lt: '<', gt: '>', amp: '&' })[e]!);
  return text
    .split(/(<[^>]*>)/)
    .map((part) => {
      if (!part.startsWith('<') || !part.endsWith('>')) return decoded(part);
      const [target = '', label] = part.slice(1, -1).split('|');
      if (/^[!@#]/.test(target)) {
        out.mentions.push(target);
        return decoded(label ?? (target.startsWith('!') ? `@${target.slice(1)}` : target));
      }
      out.links.push({ url: decoded(target), label: decoded(label ?? target) });
      return decoded(label ?? target);
    })
    .join('');
}
