import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import type { LedgerIndex } from '../ledger/incident-index';
import type { Containment } from '../contain/containment';
import { HOUR_MS, type FlowHistory } from '../flows/history';
import type { IncidentStore } from '../incidents/store';
import { describeIssues } from '../validation';
import { requireRole, type TokenConfig } from './auth';
import { runView } from './run-view';
import type { HttpServer } from './server';

export interface ConsoleApiDeps {
  containment: () => Containment | undefined;
  incidents: IncidentStore;
  tokens: readonly TokenConfig[];
  flows: FlowHistory;
  ledger: LedgerIndex;
}

const ImpactQuery = z.object({ hours: z.coerce.number().int().min(1, 'at least 1').max(24, 'at most 24 (the flow history keeps about a day)').default(6) });
const Id = z.string().min(1).max(1024);

/**
 * The reads the console needs beyond the on-call API: who am I, an incident's ledger records and
 * playbook run, and the impact preview of a pending quarantine (the flows it will cut).
 */
export function registerConsoleApi(app: HttpServer, deps: ConsoleApiDeps): void {
  const viewer = { preHandler: requireRole('viewer', () => deps.tokens) };

  app.get('/api/me', viewer, async (req) => req.principal);

  app.get<{ Params: { id: string } }>('/api/incidents/:id/ledger', viewer, async (req, reply) => {
    const id = parseId(req.params.id, reply);
    return id === undefined ? reply : deps.ledger.forIncident(id);
  });

  app.get<{ Params: { id: string } }>('/api/incidents/:id/run', viewer, async (req, reply) => {
    const id = parseId(req.params.id, reply);
    if (id === undefined) return reply;
    const c = deps.containment();
    if (!c) return reply.code(503).send({ error: 'unavailable', message: 'containment is not running' });
    const run = await c.runner.run(id);
    if (!run) return reply.code(404).send({ error: 'not found', message: `no playbook run for incident ${id}` });
    const [records, approvals, leases] = await Promise.all([deps.ledger.forIncident(id), c.approvals.forIncident(id), c.quarantines.registry.all()]);
    return runView(run, records, approvals, leases);
  });

  app.get<{ Params: { id: string }; Querystring: unknown }>('/api/approvals/:id/impact', viewer, async (req, reply) => {
    const query = ImpactQuery.safeParse(req.query ?? {});
    if (!query.success) return reply.code(400).send({ error: 'bad request', message: describeIssues(query.error, 'query') });
    const c = deps.containment();
    if (!c) return reply.code(503).send({ error: 'unavailable', message: 'containment is not running' });
    const approval = await c.approvals.get(req.params.id);
    if (!approval) return reply.code(404).send({ error: 'not found', message: `no approval ${req.params.id}` });
    const since = Date.now() - query.data.hours * HOUR_MS;
    const targets = await Promise.all(
      approval.targets.map(async (t) => ({ ...t, ...(await deps.flows.impact(t.key, since, { aliases: t.ip ? [`ip:${t.ip}`] : [] })) })),
    );
    return { approvalId: approval.id, hours: query.data.hours, targets };
  });
}

function parseId(raw: string, reply: FastifyReply): string | undefined {
  const parsed = Id.safeParse(raw);
  if (parsed.success) return parsed.data;
  void reply.code(400).send({ error: 'bad request', message: describeIssues(parsed.error, 'id') });
  return undefined;
}
