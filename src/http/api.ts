import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { LinkRefused, mintLinksFor, verifyLink } from '../approvals/links';
import type { Containment } from '../contain/containment';
import { entityKeySchema, type ManualOutcome } from '../contain/manual';
import type { IncidentStore } from '../incidents/store';
import { duration, durationMs } from '../playbook/duration';
import { inGroups, requireRole, type TokenConfig } from './auth';
import { Problem, PROBLEM_RESPONSES, problem } from './problem';
import { routes, type HttpServer } from './server';

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
const EntityKey = entityKeySchema('the entity key to quarantine, e.g. pod:prod/web-1, vm:db-2 or ip:10.0.0.5');
const QuarantineBody = z.object({
  entity: EntityKey,
  ttl: Ttl.describe('how long, e.g. 2h: bounded like an extension (contain.maxExtensionMs, maxLifetimeMs, 7d hard limit)'),
  reason: Reason,
  enforcer: z.string().min(1).max(64).optional().describe('the enforcement layer; may be left out when only one is configured'),
});

const Id = z.string().min(1).max(1024);
const IdParams = z.object({ id: Id });
const EntityParams = z.object({ entity: Id.describe('the quarantined entity key, e.g. pod:prod/web-1') });
const TokenParams = z.object({ token: z.string().min(1).max(4096) });
const Any = z.unknown();

/**
 * The on-call API: incidents, pending approvals (approve, deny, approve for a shorter TTL, signed
 * one-click links) and live quarantines (extend, release). Every body is validated; every decision
 * carries who (the token's name) and why (the reason), and lands in the ledger.
 */
export function registerApi(app: HttpServer, deps: ApiDeps): void {
  const tokens = () => deps.tokens;
  const as = (role: 'viewer' | 'responder' | 'approver') => ({ preValidation: requireRole(role, tokens) });
  const doc = (tags: string[], response: Record<number, z.ZodType> = {}) => ({ tags, security: [{ bearer: [] }], response: { 200: Any, ...PROBLEM_RESPONSES, ...response } });

  routes(app, (r) => {
    r.get('/api/incidents', { ...as('viewer'), schema: doc(['incidents']) }, async () => deps.incidents.list(200));
    r.get('/api/incidents/:id', { ...as('viewer'), schema: { ...doc(['incidents']), params: IdParams } }, async (req, reply) => {
      const incident = await deps.incidents.get(req.params.id);
      return incident ?? problem(reply, 404, `no incident ${req.params.id}`);
    });

    r.get('/api/approvals', { ...as('viewer'), schema: doc(['approvals']) }, async (_req, reply) => withContainment(deps, reply, (c) => c.approvals.pending()));
    r.post('/api/approvals/:id/approve', { ...as('approver'), schema: { ...doc(['approvals']), params: IdParams, body: ApproveBody } }, async (req, reply) =>
      decide(deps, reply, req.params.id, 'approve', req.principal!, req.body.reason, req.body.ttl ? durationMs(req.body.ttl) : undefined),
    );
    r.post('/api/approvals/:id/deny', { ...as('approver'), schema: { ...doc(['approvals']), params: IdParams, body: DenyBody } }, async (req, reply) =>
      decide(deps, reply, req.params.id, 'deny', req.principal!, req.body.reason),
    );
    r.post('/api/approvals/:id/links', { ...as('approver'), schema: { ...doc(['approvals'], { 501: Problem }), params: IdParams } }, async (req, reply) => {
      if (!deps.linkSecret) return problem(reply, 501, 'auth.linkSecret is not set');
      return withContainment(deps, reply, (c) => mintLinksFor(c.approvals, req.params.id, req.principal!, deps, Date.now())).catch((err: Error) => {
        if (!(err instanceof LinkRefused)) throw err;
        return problem(reply, LINK_REFUSED[err.code], err.message);
      });
    });

    r.get('/a/:token', { schema: { tags: ['approvals'], description: 'the confirmation page of a one-click link (HTML)', params: TokenParams } }, async (req, reply) => {
      const check = checkLink(deps, req.params.token);
      if (!check.ok) return reply.code(403).type('text/html').send(page('Link refused', check.reason));
      const { claims } = check;
      return reply.type('text/html').send(page(`${claims.decision === 'approve' ? 'Approve' : 'Deny'} ${claims.approvalId}?`, `<form method="post"><button type="submit">${claims.decision} as ${claims.approver}</button></form>`));
    });
    r.post('/a/:token', { schema: { tags: ['approvals'], params: TokenParams, response: { 200: Any, ...PROBLEM_RESPONSES } } }, async (req, reply) => {
      const check = checkLink(deps, req.params.token);
      if (!check.ok) return problem(reply, 403, check.reason);
      const c = deps.containment();
      if (!c) return problem(reply, 503, 'containment is not running');
      if (!(await c.approvals.useNonce(check.claims.nonce, Math.ceil(deps.linkTtlMs / 1000)))) return problem(reply, 403, 'link already used');
      return decide(deps, reply, check.claims.approvalId, check.claims.decision, { name: check.claims.approver, groups: check.claims.groups }, `one-click ${check.claims.decision} link`);
    });

    r.get('/api/quarantines', { ...as('viewer'), schema: doc(['quarantines']) }, async (_req, reply) => withContainment(deps, reply, (c) => c.quarantines.registry.all()));
    r.post(
      '/api/quarantines',
      { ...as('responder'), schema: { ...doc(['quarantines'], { 201: Any, 502: Problem }), description: 'a manual quarantine: who and why in the ledger; protected targets refused (409), no override', body: QuarantineBody } },
      async (req, reply) =>
        withContainment(deps, reply, async (c) => {
          const { entity, ttl, reason, enforcer } = req.body;
          const outcome = await c.quarantineByHand({ entity, ttlMs: durationMs(ttl), ttlText: ttl, enforcer, actor: `user:${req.principal!.name}`, reason });
          return answerManual(reply, outcome);
        }),
    );
    r.post('/api/quarantines/:entity/extend', { ...as('responder'), schema: { ...doc(['quarantines']), params: EntityParams, body: ExtendBody } }, async (req, reply) => {
      const { ttl, reason } = req.body;
      return withContainment(deps, reply, async (c) => {
        const done = await c.extend(req.params.entity, { ttlMs: durationMs(ttl), ttlText: ttl }, { actor: `user:${req.principal!.name}`, reason });
        return 'refused' in done ? problem(reply, 400, done.refused) : done.lease;
      }).catch((err: Error) => problem(reply, 409, err.message));
    });
    r.post('/api/quarantines/:entity/release', { ...as('responder'), schema: { ...doc(['quarantines']), params: EntityParams, body: ReleaseBody } }, async (req, reply) =>
      withContainment(deps, reply, (c) => c.quarantines.release(req.params.entity, { actor: `user:${req.principal!.name}`, reason: req.body.reason })),
    );
  });
}

const MANUAL_STATUS = { invalid: 400, missing: 404, refused: 409, failed: 502 } as const;

function answerManual(reply: FastifyReply, outcome: ManualOutcome) {
  if (outcome.result === 'contained') return reply.code(201).send(outcome.lease);
  return problem(reply, MANUAL_STATUS[outcome.result], outcome.detail);
}

function checkLink(deps: ApiDeps, token: string) {
  if (!deps.linkSecret) return { ok: false as const, reason: 'one-click links are not configured' };
  return verifyLink(token, deps.linkSecret, Math.floor(Date.now() / 1000));
}

const LINK_REFUSED = { not_configured: 501, missing: 404, not_pending: 409, not_member: 403 } as const;

/** A person decides: only a member of one of the approval's groups, only before its deadline (checked again atomically in the store). */
async function decide(deps: ApiDeps, reply: FastifyReply, id: string, decision: 'approve' | 'deny', who: { name: string; groups: readonly string[] }, reason: string, ttlMs?: number) {
  const c = deps.containment();
  if (!c) return problem(reply, 503, 'containment is not running');
  const current = await c.approvals.get(id);
  if (!current) return problem(reply, 404, `no approval ${id}`);
  if (current.state === 'pending' && !inGroups(who.groups, current.approvers)) return problem(reply, 403, notMember(who.name, current));
  const outcome = await c.decide(id, decision, `user:${who.name}`, who.groups, reason, ttlMs);
  switch (outcome.result) {
    case 'missing':
      return problem(reply, 404, `no approval ${id}`);
    case 'already':
      return problem(reply, 409, `approval ${id} is already ${outcome.approval.state}`);
    case 'forbidden':
      return problem(reply, 403, notMember(who.name, outcome.approval));
    case 'late':
      return problem(reply, 409, `approval ${id} passed its deadline (${new Date(outcome.approval.deadline).toISOString()}): its on_timeout (${outcome.approval.onTimeout}) decides`);
    case 'decided':
      return outcome.approval;
  }
}

function notMember(name: string, a: { id: string; approvers: readonly string[] }): string {
  return `${name} is in none of the groups approval ${a.id} asks (${a.approvers.join(', ')})`;
}

async function withContainment<T>(deps: ApiDeps, reply: FastifyReply, work: (c: Containment) => Promise<T>) {
  const c = deps.containment();
  if (!c) return problem(reply, 503, 'containment is not running');
  return work(c);
}

function page(title: string, body: string): string {
  const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html><meta name="viewport" content="width=device-width"><title>${esc(title)}</title><h1>${esc(title)}</h1><p>${body.startsWith('<form') ? body : esc(body)}</p>`;
}
