import { z } from 'zod';
import type { IncidentDecision } from '../contain/containment';
import { requireRole, type TokenConfig } from '../http/auth';
import { PROBLEM_RESPONSES, problem } from '../http/problem';
import { routes, type HttpServer } from '../http/server';
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
const Requested = z.object({ incident: z.string(), requested: z.literal('closed'), by: z.string() });

/**
 * `POST /api/incidents/:id/close`: an analyst closes an incident (resolved, or not an attack).
 * The correlator owns incidents, so this asks it to and answers 202; later evidence on the same
 * entities opens a new incident.
 */
export function registerIncidentRoutes(app: HttpServer, deps: IncidentRoutesDeps): void {
  const responder = { preValidation: requireRole('responder', () => deps.tokens) };
  const schema = {
    tags: ['incidents'],
    security: [{ bearer: [] }],
    params: z.object({ id: z.string().min(1).max(1024) }),
    body: CloseBody,
    response: { 202: Requested, ...PROBLEM_RESPONSES },
  };
  routes(app, (r) =>
    r.post('/api/incidents/:id/close', { ...responder, schema }, async (req, reply) => {
      const incident = await deps.incidents.get(req.params.id);
      if (!incident) return problem(reply, 404, `no incident ${req.params.id}`);
      const step = transition(incident.status, 'closed');
      if (step.outcome === 'refused') return problem(reply, 409, step.reason);
      if (step.outcome === 'unchanged') return problem(reply, 409, `incident ${incident.id} is already closed`);
      const actor = `user:${req.principal!.name}`;
      await deps.audit({ actor, incidentId: incident.id, target: incident.root, reason: req.body.reason, after: { status: 'closed', from: incident.status } });
      await deps.requests.request(incident, 'closed', actor, req.body.reason);
      return reply.code(202).send({ incident: incident.id, requested: 'closed' as const, by: actor });
    }),
  );
}
