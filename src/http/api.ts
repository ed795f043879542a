import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { LinkRefused, mintLinksFor, verifyLink } from '../approvals/links';
import type { Containment } from '../contain/containment';
import type { IncidentStore } from '../incidents/store';
import { duration, durationMs } from '../playbook/duration';
import { describeIssues } from '../validation';
import { inGroups, requireRole, type TokenConfig } from './auth';
import type { HttpServer } from './server';

export interface ApiDeps {
  containment: () => Containment | undefined;
  incidents: IncidentStore;
  tokens: readonly TokenConfig[];
  linkSecret: string | undefined;
  publicUrl: string;
  linkTtlMs: number;
}

const Reason = z.string().trim().min(3, 'say why (at least 3 characters)').max(2000);
const Ttl = duration();
const ApproveBody = z.object({ reason: Reason, ttl: Ttl.optional() });
const DenyBody = z.object({ reason: Reason });
const ExtendBody = z.object({ ttl: Ttl, reason: Reason });
const ReleaseBody = z.object({ reason: Reason });

/**
 * The on-call API: incidents, pending approvals (approve, deny, approve for a shorter TTL, signed
 * one-click links) and live quarantines (extend, release). Every body is validated; every decision
 * carries who (the token's name) and why (the reason), and lands in the ledger.
 */
export function registerApi(app: HttpServer, deps: ApiDeps): void {
  const tokens = () => deps.tokens;
  const viewer = { preHandler: requireRole('viewer', tokens) };
  const responder = { preHandler: requireRole('responder', tokens) };
  const approver = { preHandler: requireRole('approver', tokens) };

  app.get('/api/incidents', viewer, async () => deps.incidents.list(200));
  app.get<{ Params: { id: string } }>('/api/incidents/:id', viewer, async (req, reply) => {
    const incident = await deps.incidents.get(req.params.id);
    return incident ?? reply.code(404).send({ error: 'not found', message: `no incident ${req.params.id}` });
  });

  app.get('/api/approvals', viewer, async (_req, reply) => withContainment(deps, reply, (c) => c.approvals.pending()));
  app.post<{ Params: { id: string } }>('/api/approvals/:id/approve', approver, async (req, reply) => {
    const body = parse(ApproveBody, req, reply);
    if (!body) return reply;
    return decide(deps, reply, req.params.id, 'approve', req.principal!, body.reason, body.ttl ? durationMs(body.ttl) : undefined);
  });
  app.post<{ Params: { id: string } }>('/api/approvals/:id/deny', approver, async (req, reply) => {
    const body = parse(DenyBody, req, reply);
    if (!body) return reply;
    return decide(deps, reply, req.params.id, 'deny', req.principal!, body.reason);
  });
  app.post<{ Params: { id: string }; Body: unknown }>('/api/approvals/:id/links', approver, async (req, reply) => {
    if (!deps.linkSecret) return reply.code(501).send({ error: 'not configured', message: 'auth.linkSecret is not set' });
    return withContainment(deps, reply, (c) => mintLinksFor(c.approvals, req.params.id, req.principal!, deps, Date.now())).catch((err: Error) => {
      if (!(err instanceof LinkRefused)) throw err;
      return reply.code(LINK_REFUSED[err.code]).send({ error: LINK_REFUSED[err.code] === 404 ? 'not found' : LINK_REFUSED[err.code] === 403 ? 'forbidden' : 'conflict', message: err.message });
    });
  });

  app.get<{ Params: { token: string } }>('/a/:token', async (req, reply) => {
    const check = checkLink(deps, req.params.token);
    if (!check.ok) return reply.code(403).type('text/html').send(page('Link refused', check.reason));
    const { claims } = check;
    return reply.type('text/html').send(page(`${claims.decision === 'approve' ? 'Approve' : 'Deny'} ${claims.approvalId}?`, `<form method="post"><button type="submit">${claims.decision} as ${claims.approver}</button></form>`));
  });
  app.post<{ Params: { token: string } }>('/a/:token', async (req, reply) => {
    const check = checkLink(deps, req.params.token);
    if (!check.ok) return reply.code(403).send({ error: 'forbidden', message: check.reason });
    const c = deps.containment();
    if (!c) return reply.code(503).send({ error: 'unavailable', message: 'containment is not running' });
    if (!(await c.approvals.useNonce(check.claims.nonce, Math.ceil(deps.linkTtlMs / 1000)))) {
      return reply.code(403).send({ error: 'forbidden', message: 'link already used' });
    }
    return decide(deps, reply, check.claims.approvalId, check.claims.decision, { name: check.claims.approver, groups: check.claims.groups }, `one-click ${check.claims.decision} link`);
  });

  app.get('/api/quarantines', viewer, async (_req, reply) => withContainment(deps, reply, (c) => c.quarantines.registry.all()));
  app.post<{ Params: { entity: string } }>('/api/quarantines/:entity/extend', responder, async (req, reply) => {
    const body = parse(ExtendBody, req, reply);
    if (!body) return reply;
    return withContainment(deps, reply, async (c) => {
      const done = await c.extend(req.params.entity, { ttlMs: durationMs(body.ttl), ttlText: body.ttl }, { actor: `user:${req.principal!.name}`, reason: body.reason });
      return 'refused' in done ? reply.code(400).send({ error: 'bad request', message: done.refused }) : done.lease;
    }).catch((err: Error) => reply.code(409).send({ error: 'conflict', message: err.message }));
  });
  app.post<{ Params: { entity: string } }>('/api/quarantines/:entity/release', responder, async (req, reply) => {
    const body = parse(ReleaseBody, req, reply);
    if (!body) return reply;
    return withContainment(deps, reply, (c) => c.quarantines.release(req.params.entity, { actor: `user:${req.principal!.name}`, reason: body.reason }));
  });
}

function checkLink(deps: ApiDeps, token: string) {
  if (!deps.linkSecret) return { ok: false as const, reason: 'one-click links are not configured' };
  return verifyLink(token, deps.linkSecret, Math.floor(Date.now() / 1000));
}

const LINK_REFUSED = { not_configured: 501, missing: 404, not_pending: 409, not_member: 403 } as const;

/** A person decides: only a member of one of the approval's groups, only before its deadline (checked again atomically in the store). */
async function decide(deps: ApiDeps, reply: FastifyReply, id: string, decision: 'approve' | 'deny', who: { name: string; groups: readonly string[] }, reason: string, ttlMs?: number) {
  const c = deps.containment();
  if (!c) return reply.code(503).send({ error: 'unavailable', message: 'containment is not running' });
  const current = await c.approvals.get(id);
  if (!current) return reply.code(404).send({ error: 'not found', message: `no approval ${id}` });
  if (current.state === 'pending' && !inGroups(who.groups, current.approvers)) return reply.code(403).send({ error: 'forbidden', message: notMember(who.name, current) });
  const outcome = await c.decide(id, decision, `user:${who.name}`, who.groups, reason, ttlMs);
  switch (outcome.result) {
    case 'missing':
      return reply.code(404).send({ error: 'not found', message: `no approval ${id}` });
    case 'already':
      return reply.code(409).send({ error: 'conflict', message: `approval ${id} is already ${outcome.approval.state}` });
    case 'forbidden':
      return reply.code(403).send({ error: 'forbidden', message: notMember(who.name, outcome.approval) });
    case 'late':
      return reply.code(409).send({ error: 'conflict', message: `approval ${id} passed its deadline (${new Date(outcome.approval.deadline).toISOString()}): its on_timeout (${outcome.approval.onTimeout}) decides` });
    case 'decided':
      return outcome.approval;
  }
}

function notMember(name: string, a: { id: string; approvers: readonly string[] }): string {
  return `${name} is in none of the groups approval ${a.id} asks (${a.approvers.join(', ')})`;
}

async function withContainment<T>(deps: ApiDeps, reply: FastifyReply, work: (c: Containment) => Promise<T>) {
  const c = deps.containment();
  if (!c) return reply.code(503).send({ error: 'unavailable', message: 'containment is not running' });
  return work(c);
}

function parse<S extends z.ZodType>(schema: S, req: FastifyRequest, reply: FastifyReply): z.infer<S> | undefined {
  const parsed = schema.safeParse(req.body ?? {});
  if (parsed.success) return parsed.data;
  void reply.code(400).send({ error: 'bad request', message: describeIssues(parsed.error, 'body') });
  return undefined;
}

function page(title: string, body: string): string {
  const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html><meta name="viewport" content="width=device-width"><title>${esc(title)}</title><h1>${esc(title)}</h1><p>${body.startsWith('<form') ? body : esc(body)}</p>`;
}
