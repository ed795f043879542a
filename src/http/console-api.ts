import { z } from 'zod';
import { entityKeySchema, parseEntity } from '../contain/manual';
import type { LedgerIndex } from '../ledger/incident-index';
import type { Containment } from '../contain/containment';
import { HOUR_MS, type FlowHistory } from '../flows/history';
import type { IncidentStore } from '../incidents/store';
import { requireRole, type TokenConfig } from './auth';
import { runView } from './run-view';
import { PROBLEM_RESPONSES, problem } from './problem';
import { routes, type HttpServer } from './server';

export interface ConsoleApiDeps {
  containment: () => Containment | undefined;
  incidents: IncidentStore;
  tokens: readonly TokenConfig[];
  flows: FlowHistory;
  ledger: LedgerIndex;
  /** The configured enforcement layers, by name (none: containment is off). */
  enforcers?: readonly string[];
}

const ImpactQuery = z.object({ hours: z.coerce.number().int().min(1, 'at least 1').max(24, 'at most 24 (the flow history keeps about a day)').default(6) });
const IdParams = z.object({ id: z.string().min(1).max(1024) });
const EntityParams = z.object({ entity: entityKeySchema('an entity key, e.g. pod:prod/web-1 or ip:10.0.0.5') });

/**
 * The reads the console needs beyond the on-call API: who am I, an incident's ledger records and
 * playbook run, the impact preview of a pending quarantine or of any entity a person may
 * quarantine by hand (the flows it will cut), and the enforcement layers there are.
 */
export function registerConsoleApi(app: HttpServer, deps: ConsoleApiDeps): void {
  const viewer = { preValidation: requireRole('viewer', () => deps.tokens) };
  const doc = { tags: ['console'], security: [{ bearer: [] }], response: { 200: z.unknown(), ...PROBLEM_RESPONSES } };

  routes(app, (r) => {
    r.get('/api/me', { ...viewer, schema: doc }, async (req) => req.principal);

    r.get('/api/incidents/:id/ledger', { ...viewer, schema: { ...doc, params: IdParams } }, async (req) => deps.ledger.forIncident(req.params.id));

    r.get('/api/incidents/:id/run', { ...viewer, schema: { ...doc, params: IdParams } }, async (req, reply) => {
      const id = req.params.id;
      const c = deps.containment();
      if (!c) return problem(reply, 503, 'containment is not running');
      const run = await c.runner.run(id);
      if (!run) return problem(reply, 404, `no playbook run for incident ${id}`);
      const [records, approvals, leases] = await Promise.all([deps.ledger.forIncident(id), c.approvals.forIncident(id), c.quarantines.registry.all()]);
      return runView(run, records, approvals, leases);
    });

    r.get('/api/enforcers', { ...viewer, schema: doc }, async () => [...(deps.enforcers ?? [])]);

    r.get('/api/entities/:entity/impact', { ...viewer, schema: { ...doc, params: EntityParams, querystring: ImpactQuery } }, async (req) => {
      const { entity } = req.params;
      const since = Date.now() - req.query.hours * HOUR_MS;
      const target = parseEntity(entity);
      const ip = typeof target === 'string' ? undefined : target.ip;
      return { entity, hours: req.query.hours, targets: [{ key: entity, ...(await deps.flows.impact(entity, since, { aliases: ip && entity !== `ip:${ip}` ? [`ip:${ip}`] : [] })) }] };
    });

    r.get('/api/approvals/:id/impact', { ...viewer, schema: { ...doc, params: IdParams, querystring: ImpactQuery } }, async (req, reply) => {
      const c = deps.containment();
      if (!c) return problem(reply, 503, 'containment is not running');
      const approval = await c.approvals.get(req.params.id);
      if (!approval) return problem(reply, 404, `no approval ${req.params.id}`);
      const since = Date.now() - req.query.hours * HOUR_MS;
      const targets = await Promise.all(
        approval.targets.map(async (t) => ({ ...t, ...(await deps.flows.impact(t.key, since, { aliases: t.ip ? [`ip:${t.ip}`] : [] })) })),
      );
      return { approvalId: approval.id, hours: req.query.hours, targets };
    });
  });
}
