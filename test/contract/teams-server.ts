import http from 'node:http';
import { LoopbackServer, readBody } from './loopback-server';

/**
 * An in-process Microsoft Teams incoming-webhook contract server, written from Microsoft's Teams
 * platform documentation: "Create and send messages" (connectors-using: a simple `{"text": ...}`,
 * a MessageCard, or an Adaptive Card sent as `{"type": "message", "attachments": [{"contentType":
 * "application/vnd.microsoft.card.adaptive", "content": {...}}]}`; success answers `1`; of the
 * actions only Action.OpenUrl, Action.ShowCard and Action.ToggleVisibility are supported),
 * "Rate limiting for connectors" (more than 4 requests in a second to one webhook are throttled,
 * and the throttle shows in the body: "Microsoft Teams endpoint returned HTTP error 429", connectors
 * do not throw 429s), "Create Incoming Webhooks" (messages are limited to 28 KB) and "Format cards
 * in Teams" (Markdown in TextBlock and in Fact title and value; HTML is not supported).
 *
 *   status  body                                                        when
 *   200     1                                                           accepted
 *   200     Microsoft Teams endpoint returned HTTP error 429 ...        throttled (over 4 a second, or `throttle(n)`)
 *   200     Microsoft Teams endpoint returned HTTP error 413 ...        over 28 KB            (the limit is documented, this answer reported)
 *   400     Bad payload received by generic incoming webhook.           not JSON, not a card   (reported)
 *   400     Summary or Text is required.                                a MessageCard without either (reported)
 *   404     (empty)                                                     an unknown webhook URL (not documented)
 *   500     (empty)                                                     `fail(n)`
 *
 * What it accepted is kept in `messages`; `render` shows an Adaptive Card as a reader sees it:
 * Markdown rendered in the fields Teams renders it in (so an unescaped `[x](http://evil)` becomes a
 * link), TextRun text as it is, and the URLs of the actions.
 */

const MAX_BYTES = 28 * 1024;
export const ADAPTIVE = 'application/vnd.microsoft.card.adaptive';
const BAD_PAYLOAD = 'Bad payload received by generic incoming webhook.';
const ELEMENTS = new Set(['TextBlock', 'RichTextBlock', 'FactSet', 'Container', 'ColumnSet', 'Column', 'Image']);
const ACTIONS = new Set(['Action.OpenUrl', 'Action.ShowCard', 'Action.ToggleVisibility']);

export interface TeamsMessage {
  path: string;
  payload: Record<string, unknown>;
  at: number;
}

export class TeamsWebhookServer {
  readonly requests: { path: string; status: number; body: string; at: number }[] = [];
  readonly messages: TeamsMessage[] = [];
  private readonly hooks: Set<string>;
  private readonly window = new Map<string, number[]>();
  private throttled = 0;
  private failing = 0;
  private server!: LoopbackServer;

  private constructor(hooks: string[]) {
    this.hooks = new Set(hooks);
  }

  static async start(opts: { hooks: string[] }): Promise<TeamsWebhookServer> {
    const s = new TeamsWebhookServer(opts.hooks);
    s.server = await LoopbackServer.start((req, res) => s.handle(req, res));
    return s;
  }

  url(hook: string): string {
    return this.server.url(hook);
  }

  /** The next `n` requests are throttled, whatever their rate. */
  throttle(n: number): void {
    this.throttled = n;
  }

  fail(n: number): void {
    this.failing = n;
  }

  get port(): number {
    return this.server.port;
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private reply(res: http.ServerResponse, path: string, status: number, body: string): void {
    this.requests.push({ path, status, body, at: Date.now() });
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  private inner(code: number): string {
    return `Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error ${code} with ContextId tcid=0,server=contract,cv=${Date.now()}`;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const path = new URL(req.url ?? '/', 'http://teams').pathname;
    if (req.method !== 'POST' || !this.hooks.has(path)) return this.reply(res, path, 404, '');
    if (this.failing > 0) {
      this.failing -= 1;
      return this.reply(res, path, 500, '');
    }
    const now = Date.now();
    const recent = (this.window.get(path) ?? []).filter((t) => now - t < 1000);
    recent.push(now);
    this.window.set(path, recent);
    if (this.throttled > 0 || recent.length > 4) {
      this.throttled = Math.max(0, this.throttled - 1);
      return this.reply(res, path, 200, this.inner(429));
    }
    if (raw.length > MAX_BYTES) return this.reply(res, path, 200, this.inner(413));
    let payload: unknown;
    try {
      payload = JSON.parse(raw.toString('utf8'));
    } catch {
      return this.reply(res, path, 400, BAD_PAYLOAD);
    }
    if (!isObj(payload)) return this.reply(res, path, 400, BAD_PAYLOAD);
    const problem = check(payload);
    if (problem) return this.reply(res, path, 400, problem);
    this.messages.push({ path, payload, at: now });
    return this.reply(res, path, 200, '1');
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** What Teams refuses in a payload, or undefined. */
function check(p: Obj): string | undefined {
  if (p['@type'] === 'MessageCard') return typeof p.summary === 'string' || typeof p.text === 'string' ? undefined : 'Summary or Text is required.';
  if (p.type === 'message') {
    if (!Array.isArray(p.attachments) || p.attachments.length === 0) return BAD_PAYLOAD;
    for (const a of p.attachments) {
      if (!isObj(a) || a.contentType !== ADAPTIVE || !isObj(a.content) || !card(a.content)) return BAD_PAYLOAD;
    }
    return undefined;
  }
  return typeof p.text === 'string' && p.text !== '' ? undefined : BAD_PAYLOAD;
}

function card(c: Obj): boolean {
  if (c.type !== 'AdaptiveCard' || typeof c.version !== 'string' || !/^1\.\d$/.test(c.version)) return false;
  if (!Array.isArray(c.body) || !c.body.every(element)) return false;
  return c.actions === undefined || (Array.isArray(c.actions) && c.actions.every(action));
}

function element(e: unknown): boolean {
  if (!isObj(e) || typeof e.type !== 'string' || !ELEMENTS.has(e.type)) return false;
  switch (e.type) {
    case 'TextBlock':
      return typeof e.text === 'string';
    case 'RichTextBlock':
      return Array.isArray(e.inlines) && e.inlines.every((i) => typeof i === 'string' || (isObj(i) && i.type === 'TextRun' && typeof i.text === 'string'));
    case 'FactSet':
      return Array.isArray(e.facts) && e.facts.every((f) => isObj(f) && typeof f.title === 'string' && typeof f.value === 'string');
    case 'Container':
    case 'Column':
      return Array.isArray(e.items) && e.items.every(element);
    case 'ColumnSet':
      return Array.isArray(e.columns) && e.columns.every(element);
    default:
      return true;
  }
}

function action(a: unknown): boolean {
  if (!isObj(a) || typeof a.type !== 'string' || !ACTIONS.has(a.type)) return false;
  return a.type !== 'Action.OpenUrl' || (typeof a.url === 'string' && /^https?:\/\//.test(a.url));
}

// ---------------------------------------------------------------- what a reader sees

export interface Rendered {
  text: string;
  /** Links a reader can click: Markdown links and autolinks in Markdown fields, and action URLs. */
  links: { url: string; label: string }[];
  /** Markdown emphasis, headings or code that changed how text looks (a sign of unescaped input). */
  formatted: string[];
}

export function render(payload: Obj): Rendered {
  const out: Rendered = { text: '', links: [], formatted: [] };
  const attachments = Array.isArray(payload.attachments) ? payload.attachments : [];
  for (const a of attachments) {
    if (!isObj(a) || !isObj(a.content)) continue;
    for (const e of (a.content.body as unknown[]) ?? []) visit(e, out);
    for (const act of (a.content.actions as unknown[]) ?? []) {
      if (isObj(act) && act.type === 'Action.OpenUrl') out.links.push({ url: String(act.url), label: String(act.title ?? '') });
    }
  }
  return out;
}

function visit(e: unknown, out: Rendered): void {
  if (!isObj(e)) return;
  if (e.type === 'TextBlock') out.text += `${markdown(String(e.text), out)}\n`;
  if (e.type === 'RichTextBlock') out.text += `${(e.inlines as unknown[]).map((i) => (typeof i === 'string' ? i : String((i as Obj).text))).join('')}\n`;
  if (e.type === 'FactSet') for (const f of e.facts as Obj[]) out.text += `${markdown(String(f.title), out)}: ${markdown(String(f.value), out)}\n`;
  for (const child of [...((e.items as unknown[]) ?? []), ...((e.columns as unknown[]) ?? [])]) visit(child, out);
}

/** The Markdown subset Teams renders: links, autolinks, bare URLs, emphasis, code; `\x` is a literal x. */
function markdown(text: string, out: Rendered): string {
  const escaped: string[] = [];
  const src = text.replace(/\\([!-/:-@[-`{-~])/g, (_, c: string) => `\u0000${escaped.push(c) - 1}\u0000`);
  const back = (s: string) => s.replace(/\u0000(\d+)\u0000/g, (_, i: string) => escaped[Number(i)]!);
  const shown = src
    .replace(/\[([^\]]*)\]\(([^)\s]*)\)/g, (_, label: string, url: string) => {
      out.links.push({ url: back(url), label: back(label) });
      return label;
    })
    .replace(/<(https?:\/\/[^>\s]+)>/g, (_, url: string) => {
      out.links.push({ url: back(url), label: back(url) });
      return url;
    })
    .replace(/(\*\*|__|\*|_|`|~~)(?=\S)([^\u0000]*?\S)\1/g, (m, mark: string, inner: string) => {
      out.formatted.push(m);
      return inner;
    })
    .replace(/^#{1,6}\s/gm, (m) => {
      out.formatted.push(m);
      return '';
    });
  for (const m of shown.matchAll(/\bhttps?:\/\/[^\s<>()]+/g)) if (!out.links.some((l) => l.url === m[0])) out.links.push({ url: back(m[0]), label: back(m[0]) });
  return back(shown);
}
