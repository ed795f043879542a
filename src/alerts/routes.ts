import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Anomaly } from '../events';
import { Anomaly as AnomalySchema } from '../events';
import { allows, authenticate, sha256Hex, type TokenConfig } from '../http/auth';
import { PROBLEM_RESPONSES, problem } from '../http/problem';
import { routes, type HttpServer } from '../http/server';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { describeIssues } from '../validation';
import type { AlertSecret, AlertsConfig } from './config';
import { ElasticAlert, elasticToAnomalies } from './elastic';
import type { AlertPublisher } from './publisher';
import { SplunkAlert, splunkToAnomalies, type Conversion } from './splunk';

export const ALERT_SOURCES = ['splunk', 'elastic'] as const;
export type AlertSource = (typeof ALERT_SOURCES)[number];

export interface AlertRoutesDeps {
  config: AlertsConfig;
  /** API tokens (auth.tokens): a responder or above may post alerts too. */
  tokens: readonly TokenConfig[];
  publisher: AlertPublisher;
  metrics?: Metrics;
  log: Logger;
  now?: () => number;
}

/** How an alert post ended, as the metrics count it. */
function outcomeOf(status: number): string {
  if (status === 202) return 'accepted';
  if (status === 401 || status === 403) return 'unauthorized';
  if (status === 503) return 'unavailable';
  return 'refused';
}

type Verdict = { ok: true; by: string } | { ok: false; status: 401 | 403; message: string };

/**
 * Who may post to a source's endpoint: one of that source's shared secrets, as a bearer token or,
 * for Splunk's webhook action which cannot set headers, as `?token=`; or an API token of role
 * responder or above. A secret of the other source, or a viewer token, is known but not allowed (403).
 */
export function authorizeAlert(source: AlertSource, presented: { authorization?: string; token?: string }, deps: Pick<AlertRoutesDeps, 'config' | 'tokens'>): Verdict {
  const bearer = /^Bearer (\S{16,512})$/.exec(presented.authorization ?? '')?.[1];
  const secret = bearer ?? (presented.token && presented.token.length >= 16 ? presented.token : undefined);
  if (secret === undefined) return { ok: false, status: 401, message: 'a bearer token or ?token= with this source\'s shared secret is required' };
  const own = matchSecret(secret, deps.config[source].secrets);
  if (own) return { ok: true, by: `alerts:${source}:${own.name}` };
  const principal = bearer ? authenticate(presented.authorization, deps.tokens) : undefined;
  if (principal) {
    return allows(principal, 'responder')
      ? { ok: true, by: `user:${principal.name}` }
      : { ok: false, status: 403, message: `role ${principal.role} may not post alerts; it needs responder` };
  }
  const other = ALERT_SOURCES.find((s) => s !== source && matchSecret(secret, deps.config[s].secrets));
  if (other) return { ok: false, status: 403, message: `that secret is for /api/alerts/${other}` };
  return { ok: false, status: 401, message: 'unknown token' };
}

function matchSecret(secret: string, secrets: readonly AlertSecret[]): AlertSecret | undefined {
  const digest = Buffer.from(sha256Hex(secret), 'hex');
  return secrets.find((s) => timingSafeEqual(Buffer.from(s.sha256, 'hex'), digest));
}

/**
 * POST /api/alerts/splunk and POST /api/alerts/elastic: each alert becomes a `siem_alert` anomaly
 * on the anomalies input topic, keyed by its entity, and from there reaches the correlator like any
 * detector's anomaly. 202 once Kafka has them; 400 naming the field that is wrong.
 */
export function registerAlertRoutes(app: HttpServer, deps: AlertRoutesDeps): void {
  if (!deps.config.enabled) return;
  const now = deps.now ?? Date.now;
  const poster = new WeakMap<FastifyRequest, string>();
  const authorize = (source: AlertSource) => async (req: FastifyRequest, reply: FastifyReply) => {
    const token = (req.query as { token?: unknown } | undefined)?.token;
    const verdict = authorizeAlert(source, { authorization: req.headers.authorization, token: typeof token === 'string' ? token : undefined }, deps);
    if (verdict.ok) return void poster.set(req, verdict.by);
    if (verdict.status === 401) void reply.header('www-authenticate', 'Bearer');
    return problem(reply, verdict.status, verdict.message);
  };
  const route = <S extends z.ZodType>(r: HttpServer, source: AlertSource, body: S, convert: (body: z.infer<S>, config: AlertsConfig, now: number) => Conversion) =>
    r.post(
      `/api/alerts/${source}`,
      {
        preValidation: authorize(source),
        onResponse: async (_req, reply) => void deps.metrics?.alerts.inc({ source, outcome: outcomeOf(reply.statusCode) }),
        schema: {
          tags: ['alerts'],
          description: `a ${source} alert becomes a siem_alert anomaly on the anomalies topic`,
          querystring: AlertQuery,
          body,
          response: { 202: z.unknown(), ...PROBLEM_RESPONSES },
        },
      },
      async (req, reply) => {
        const converted = convert(req.body as z.infer<S>, deps.config, now());
        if (!converted.ok) return problem(reply, 400, converted.message);
        const invalid = firstInvalid(converted.anomalies);
        if (invalid) return problem(reply, 400, invalid);
        if (!deps.publisher.isRunning()) return problem(reply, 503, 'the alert publisher is not running');
        try {
          const published = await deps.publisher.publish(converted.anomalies);
          deps.log.info({ source, by: poster.get(req), anomalies: published.map((p) => ({ id: p.id, entity: p.entity })) }, 'SIEM alert accepted');
          return reply.code(202).send({ accepted: published.length, anomalies: published });
        } catch (err) {
          deps.log.error({ source, err }, 'could not publish SIEM alert');
          return problem(reply, 503, `Kafka did not take the alert: ${(err as Error).message}`);
        }
      },
    );
  routes(app, (r) => {
    route(r, 'splunk', SplunkAlert, splunkToAnomalies);
    route(r, 'elastic', ElasticAlert, elasticToAnomalies);
  });
}

const AlertQuery = z.object({ token: z.string().max(4096).optional().describe("the source's shared secret, for senders that cannot set headers (Splunk's webhook action)") });

/** The events contract is the last word: an anomaly that would not pass ingest is refused here. */
function firstInvalid(anomalies: readonly Anomaly[]): string | undefined {
  for (const [i, a] of anomalies.entries()) {
    const r = AnomalySchema.safeParse(a);
    if (!r.success) return describeIssues(r.error, anomalies.length > 1 ? `anomaly.${i}` : 'anomaly');
  }
  return undefined;
}
