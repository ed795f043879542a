import { randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type Redis from 'ioredis';
import { z } from 'zod';
import type { Logger } from '../logger';
import { authenticate, requireRole, ROLES, sha256Hex, type Principal, type TokenConfig } from './auth';
import { ChangeFeed, type Change } from './change-feed';
import { PROBLEM_RESPONSES, problem } from './problem';
import { routes, type HttpServer } from './server';

/**
 * Server-sent events: the console is told when incidents or containment change, and fetches what
 * it shows through the API as before.
 *
 * A browser's EventSource cannot send an Authorization header, and a bearer token in a URL would
 * sit in proxies' logs for as long as it is valid. So the console first trades its token for a
 * stream ticket (POST /api/events/ticket, bearer as everywhere): 32 random bytes, good for one
 * stream opened within 30 s, kept in Redis by its SHA-256 only (any replica can open the stream).
 * A client that can set headers (curl, a SOAR) opens the stream with its bearer token instead. A
 * stream lasts at most `maxStreamMs`, then asks the client to come back (`event: reauth`): a token
 * taken out of auth.tokens stops streaming within that time.
 */

export interface EventStreamDeps {
  redis: Redis;
  prefix: string;
  tokens: readonly TokenConfig[];
  log: Logger;
  /** Default 10 min. */
  maxStreamMs?: number;
  /** Streams one replica serves at once; default 256. */
  maxStreams?: number;
  /** Comment lines that keep idle proxies from closing the stream; default 15 s. */
  keepAliveMs?: number;
  pollMs?: number;
}

export const TICKET_TTL_MS = 30_000;
const Ticket = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'expected a ticket from POST /api/events/ticket');
const StreamQuery = z.object({ ticket: Ticket.optional() });
/** The ticket route takes nothing: an empty object, or no body. */
const NoBody = z.strictObject({}).nullish();
/** What a ticket holds in Redis (shared, so read as input). */
const TicketHolder = z.object({ name: z.string().max(128), role: z.enum(ROLES), groups: z.array(z.string().max(128)).max(64) });
const TicketAnswer = z.object({ ticket: z.string(), expiresAt: z.number() });

declare module 'fastify' {
  interface FastifyRequest {
    streamAuth?: Principal;
  }
}

export function registerEventStream(app: HttpServer, deps: EventStreamDeps): ChangeFeed {
  const feed = new ChangeFeed({ redis: deps.redis, prefix: deps.prefix, log: deps.log, ...(deps.pollMs ? { pollMs: deps.pollMs } : {}) });
  const open = new Set<() => void>();
  const ticketKey = (ticket: string) => `${deps.prefix}:sse:ticket:${sha256Hex(ticket)}`;

  // Open streams end before the server closes, or close() would wait for them.
  app.addHook('preClose', async () => {
    for (const end of [...open]) end();
  });

  routes(app, (r) => {
    r.post(
      '/api/events/ticket',
      { preValidation: requireRole('viewer', () => deps.tokens), schema: { tags: ['console'], security: [{ bearer: [] }], description: 'a one-use ticket that opens GET /api/events/stream within 30 s', body: NoBody, response: { 200: TicketAnswer, ...PROBLEM_RESPONSES } } },
      async (req) => {
        const ticket = randomBytes(32).toString('base64url');
        await deps.redis.set(ticketKey(ticket), JSON.stringify(req.principal), 'PX', TICKET_TTL_MS);
        return { ticket, expiresAt: Date.now() + TICKET_TTL_MS };
      },
    );

    r.get(
      '/api/events/stream',
      {
        preValidation: async (req, reply) => streamAuth(req, reply, deps, ticketKey),
        schema: {
          tags: ['console'],
          security: [{ bearer: [] }],
          description:
            'text/event-stream: `incident` ({ids, count}) when incidents change, `containment` ({seq}) when the ledger grows, `reauth` before the stream ends; bearer token, or ?ticket= from POST /api/events/ticket',
          querystring: StreamQuery,
          response: { 200: z.string().describe('text/event-stream'), ...PROBLEM_RESPONSES },
        },
      },
      async (req, reply) => {
        if (open.size >= (deps.maxStreams ?? 256)) return problem(reply, 503, `this replica serves ${open.size} streams already; poll the API instead`);
        stream(req, reply, feed, open, deps);
        return reply;
      },
    );
  });
  return feed;
}

/** A bearer token, else a ticket (used up here): 401 otherwise. The query is not validated yet, so the ticket is checked here. */
async function streamAuth(req: FastifyRequest, reply: FastifyReply, deps: EventStreamDeps, key: (t: string) => string): Promise<void> {
  const refuse = (detail: string) => problem(reply.header('www-authenticate', 'Bearer'), 401, detail);
  if (req.headers.authorization !== undefined) {
    const principal = authenticate(req.headers.authorization, deps.tokens);
    if (!principal) return void (await refuse('a valid bearer token is required'));
    req.streamAuth = principal;
    return;
  }
  const ticket = Ticket.safeParse((req.query as { ticket?: unknown }).ticket);
  if (!ticket.success) return void (await refuse('a bearer token or a ticket (POST /api/events/ticket) is required'));
  const held = await deps.redis.getdel(key(ticket.data));
  if (held === null) return void (await refuse('the ticket is unknown, used or expired: ask POST /api/events/ticket for another'));
  let principal: Principal | undefined;
  try {
    principal = TicketHolder.parse(JSON.parse(held));
  } catch {
    principal = undefined;
  }
  // The token behind the ticket must still be configured.
  if (!principal || !deps.tokens.some((t) => t.name === principal.name)) return void (await refuse('the token behind this ticket is no longer configured'));
  req.streamAuth = principal;
}

function stream(req: FastifyRequest, reply: FastifyReply, feed: ChangeFeed, open: Set<() => void>, deps: EventStreamDeps): void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-store',
    'x-accel-buffering': 'no',
    'x-content-type-options': 'nosniff',
    connection: 'keep-alive',
  });
  const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  res.write('retry: 5000\n\n');
  send('ready', { name: req.streamAuth!.name, role: req.streamAuth!.role });
  const unsubscribe = feed.subscribe((c: Change) => {
    const { type, ...data } = c;
    send(type, data);
  });
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), deps.keepAliveMs ?? 15_000);
  const lifetime = setTimeout(() => end(true), deps.maxStreamMs ?? 600_000);
  let ended = false;
  const end = (reauth = false) => {
    if (ended) return;
    ended = true;
    clearInterval(keepAlive);
    clearTimeout(lifetime);
    unsubscribe();
    open.delete(end);
    if (reauth && !res.writableEnded) send('reauth', { reason: 'the stream lasted its longest; open a new one' });
    res.end();
  };
  open.add(end);
  // The response closes when the client goes away (or the stream ended): the stream lets go of the feed.
  res.on('close', () => end());
}
