import { z } from 'zod';
import type { IncidentDecision } from '../contain/containment';
import { requireRole, type TokenConfig } from '../http/auth';
import type { HttpServer } from '../http/server';
import { describeIssues } from '../validation';
import { transition } from './lifecycle';
import type { StatusRequests } from './status-requests';
import type { IncidentStore } from './store';

export interface IncidentRoutesDeps {
  incidents: IncidentStore;
  requests: StatusRequests;
  tokens: readonly TokenConfig[];
  /** Puts the analyst's decision on record (the ledger) before it is asked for. */
  audit: (entry: IncidentDecision) => Promise<void>;
}

const CloseBody = z.strictObject({ reason: z.string().trim().min(3, 'say why (at least 3 characters)').max(2000) });

/**
 * `POST /api/incidents/:id/close`: an analyst closes an incident (resolved, or not an attack).
 * The correlator owns incidents, so this asks it to and answers 202; later evidence on the same
 * entities opens a new incident.
 */
export function registerIncidentRoutes(app: HttpServer, deps: IncidentRoutesDeps): void {
  const responder = { preHandler: requireRole('responder', () => deps.tokens) };
  app.post<{ Params: { id: string } }>('/api/incidents/:id/close', responder, async (req, reply) => {
    const body = CloseBody.safeParse(req.body ?? {});
    if (!body.success) return reply.code(400).send({ error: 'bad request', message: describeIssues(body.error, 'body') });
    const incident = await deps.incidents.get(req.params.id);
    if (!incident) return reply.code(404).send({ error: 'not found', message: `no incident ${req.params.id}` });
    const step = transition(incident.status, 'closed');
    if (step.outcome === 'refused') return reply.code(409).send({ error: 'conflict', message: step.reason });
    if (step.outcome === 'unchanged') return reply.code(409).send({ error: 'conflict', message: `incident ${incident.id} is already closed` });
    const actor = `user:${req.principal!.name}`;
    await deps.audit({ actor, incidentId: incident.id, target: incident.root, reason: body.data.reason, after: { status: 'closed', from: incident.status } });
    await deps.requests.request(incident, 'closed', actor, body.data.reason);
    return reply.code(202).send({ incident: incident.id, requested: 'closed', by: actor });
  });
}
