import http from 'node:http';
import { LoopbackServer, readBody } from './loopback-server';
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
  private server!: LoopbackServer;

  private constructor(private readonly secret: string | undefined) {}

  static async start(opts: { secret?: string } = {}): Promise<NotifyWebhookReceiver> {
    const s = new NotifyWebhookReceiver(opts.secret);
    s.server = await LoopbackServer.start((req, res) => s.handle(req, res));
    return s;
  }

  get url(): string {
    return this.server.url('/cordon');
  }

  /** The next requests get these answers, in order, before the receiver looks at them. */
  answer(...answers: { status: number; retryAfter?: string }[]): void {
    this.answers.push(...answers);
  }

  get port(): number {
    return this.server.port;
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private reply(res: http.ServerResponse, status: number, rec: { delivery?: string; reason?: string }, headers: Record<string, string> = {}): void {
    this.requests.push({ status, ...rec, at: Date.now() });
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(rec.reason ? { error: rec.reason } : { ok: true }));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const raw = (await readBody(req)).toString('utf8');
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
