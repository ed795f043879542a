import type { FastifyReply, FastifyRequest } from 'fastify';
import { problem } from './problem';

/**
 * On a standby replica, the requests that need containment (decisions, the approvals and
 * quarantines it keeps, an incident's run) are forwarded to the leader and its answer relayed as
 * it is: the leader checks the caller's token and writes the ledger. A forwarded request is never
 * forwarded again (FORWARDED header), so two replicas that both think the other leads answer 503
 * instead of bouncing it between them.
 */

export const FORWARDED = 'x-cordon-forwarded-by';

/** Paths (without the query) whose handling needs containment; POST /a/:token is a one-click decision. */
const CONTAINMENT_ROUTES: ReadonlyArray<{ method?: string; path: RegExp }> = [
  { path: /^\/api\/approvals(\/|$)/ },
  { path: /^\/api\/quarantines(\/|$)/ },
  { path: /^\/api\/incidents\/[^/]+\/(run|close)$/ },
  { method: 'POST', path: /^\/a\/[^/]+$/ },
];

/** Headers carried to the leader: who asks, and what they send and accept. */
const CARRIED = ['authorization', 'content-type', 'accept', 'cookie'] as const;

export interface ForwardDeps {
  /** The leader's base URL when this replica is a standby and a leader is known; undefined: handle here. */
  leaderUrl: () => Promise<string | undefined>;
  /** This replica's own URL, named in the FORWARDED header. */
  self: () => string;
  timeoutMs?: number;
}

export function needsContainment(method: string, url: string): boolean {
  const path = url.split('?', 1)[0] ?? url;
  return CONTAINMENT_ROUTES.some((r) => (r.method === undefined || r.method === method) && r.path.test(path));
}

interface HookHost {
  addHook(name: 'preHandler', hook: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>): unknown;
}

export function registerForwarding(app: HookHost, deps: ForwardDeps): void {
  app.addHook('preHandler', async (req, reply) => {
    if (!needsContainment(req.method, req.url)) return;
    if (req.headers[FORWARDED] !== undefined) return;
    const leader = await deps.leaderUrl();
    if (!leader || sameOrigin(leader, deps.self())) return;
    return forward(req, reply, leader, deps);
  });
}

async function forward(req: FastifyRequest, reply: FastifyReply, leader: string, deps: ForwardDeps): Promise<FastifyReply> {
  const headers: Record<string, string> = { [FORWARDED]: deps.self() };
  for (const name of CARRIED) {
    const value = req.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  const hasBody = req.body !== undefined && req.method !== 'GET' && req.method !== 'HEAD';
  let res: Response;
  try {
    res = await fetch(new URL(req.url, leader), {
      method: req.method,
      headers,
      ...(hasBody ? { body: JSON.stringify(req.body) } : {}),
      redirect: 'manual',
      signal: AbortSignal.timeout(deps.timeoutMs ?? 10_000),
    });
  } catch (err) {
    return problem(reply, 503, `this replica is a standby; the leader at ${leader} did not answer: ${(err as Error).message}`);
  }
  const body = Buffer.from(await res.arrayBuffer());
  const type = res.headers.get('content-type');
  if (type) void reply.header('content-type', type);
  void reply.header('x-cordon-served-by', leader);
  return reply.code(res.status).send(body);
}

function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}
