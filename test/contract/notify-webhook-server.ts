import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER, verifyWebhookSignature } from '../../src/enforcer/webhook';
import { DELIVERY_HEADER, NotificationBody } from '../../src/notify/webhook';

/**
 * A receiver of Cordon's generic notification webhook, as docs/playbooks.md describes one: it checks
 * the signature (when it has a secret) over the exact bytes received, refuses a body that is not a
 * `cordon.notification` (400), drops a delivery id it has seen (answering 200, as the docs ask), and
 * can be made to answer 429 with Retry-After or 503 for a number of requests.
 */
export class NotifyWebhookReceiver {
  readonly requests: { status: number; delivery?: string; reason?: string; at: number }[] = [];
  readonly received: NotificationBody[] = [];
  private readonly seen = new Set<string>();
  private answers: { status: number; retryAfter?: string }[] = [];
  private server!: http.Server;
  port = 0;

  private constructor(private readonly secret: string | undefined) {}

  static async start(opts: { secret?: string } = {}): Promise<NotifyWebhookReceiver> {
    const s = new NotifyWebhookReceiver(opts.secret);
    s.server = http.createServer((req, res) => void s.handle(req, res));
    await new Promise<void>((resolve) => s.server.listen(0, '127.0.0.1', resolve));
    s.port = (s.server.address() as AddressInfo).port;
    return s;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/cordon`;
  }

  /** The next requests get these answers, in order, before the receiver looks at them. */
  answer(...answers: { status: number; retryAfter?: string }[]): void {
    this.answers.push(...answers);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private reply(res: http.ServerResponse, status: number, rec: { delivery?: string; reason?: string }, headers: Record<string, string> = {}): void {
    this.requests.push({ status, ...rec, at: Date.now() });
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(rec.reason ? { error: rec.reason } : { ok: true }));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const delivery = header(req, DELIVERY_HEADER);
    const forced = this.answers.shift();
    if (forced) return this.reply(res, forced.status, { ...(delivery ? { delivery } : {}), reason: 'forced' }, forced.retryAfter ? { 'retry-after': forced.retryAfter } : {});
    if (this.secret) {
      const check = verifyWebhookSignature({ secrets: [this.secret], timestamp: header(req, WEBHOOK_TIMESTAMP_HEADER), signature: header(req, WEBHOOK_SIGNATURE_HEADER), rawBody: raw });
      if (!check.ok) return this.reply(res, 401, { reason: check.reason });
    }
    let body: NotificationBody;
    try {
      body = NotificationBody.parse(JSON.parse(raw));
    } catch (err) {
      return this.reply(res, 400, { reason: `not a cordon.notification: ${(err as Error).message.slice(0, 200)}` });
    }
    if (!delivery) return this.reply(res, 400, { reason: `no ${DELIVERY_HEADER}` });
    if (!this.seen.has(delivery)) this.received.push(body);
    this.seen.add(delivery);
    return this.reply(res, 200, { delivery });
  }
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}
