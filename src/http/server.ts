import swagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyInstance, type RawServerDefault } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { jsonSchemaTransform, jsonSchemaTransformObject, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { DEFAULT_JSON_LIMITS, parseJson } from '../validation';
import { installProblemHandlers } from './problem';

/** A named readiness check: resolves when the dependency is usable, throws with the reason when not. */
export type HealthCheck = { name: string; check: () => Promise<void | string> };

export interface HttpDeps {
  log: Logger;
  metrics: Metrics;
  checks: HealthCheck[];
  /** Request body limits; defaults: 1 MiB, JSON 64 levels deep. */
  limits?: BodyLimits;
}

export interface BodyLimits {
  bodyLimit: number;
  maxJsonDepth: number;
}

const DEFAULT_LIMITS: BodyLimits = { bodyLimit: DEFAULT_JSON_LIMITS.maxBytes, maxJsonDepth: DEFAULT_JSON_LIMITS.maxDepth };

const Readiness = z.object({
  status: z.enum(['ready', 'not ready']),
  checks: z.array(z.object({ name: z.string(), ok: z.boolean(), detail: z.string().optional(), error: z.string().optional() })),
});

/**
 * The service's HTTP port: liveness, readiness with each dependency's state, Prometheus metrics,
 * and the OpenAPI document of every route (`/openapi.json`). Routes declare zod schemas for their
 * params, query and body (validated before the handler) and their responses; every error is an
 * RFC 9457 problem (./problem). Capabilities (approvals API, console, inbound alerts) add their
 * routes with `routes()`, so the OpenAPI document sees them.
 */
export function createHttpServer(deps: HttpDeps): HttpServer {
  const app: HttpServer = Fastify({
    loggerInstance: deps.log.child({ component: 'http' }),
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { maxParamLength: 2048 },
    bodyLimit: (deps.limits ?? DEFAULT_LIMITS).bodyLimit,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installProblemHandlers(app);
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, jsonBodyParser(deps.limits ?? DEFAULT_LIMITS));
  void app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Cordon', description: 'Automated containment of lateral movement: incidents, approvals, quarantines.', version: API_VERSION },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });

  routes(app, (r) => {
    r.get('/healthz', { schema: { tags: ['service'], response: { 200: z.object({ status: z.literal('ok') }) } } }, async () => ({ status: 'ok' as const }));

    r.get('/readyz', { schema: { tags: ['service'], response: { 200: Readiness, 503: Readiness } } }, async (_req, reply) => {
      const results = await Promise.all(deps.checks.map(runCheck));
      const ready = results.every((c) => c.ok);
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks: results });
    });

    r.get('/metrics', { schema: { tags: ['service'], description: 'Prometheus text exposition format' } }, async (_req, reply) => {
      reply.header('content-type', deps.metrics.registry.contentType);
      return deps.metrics.registry.metrics();
    });

    r.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  });
  return app;
}

/** The version of the HTTP API the OpenAPI document describes. */
export const API_VERSION = '1.0.0';

/** Adds routes in a plugin of their own, so they are registered after the OpenAPI plugin and it sees them. */
export function routes(app: HttpServer, define: (scope: HttpServer) => void): void {
  void app.register(async (scope) => define(scope.withTypeProvider<ZodTypeProvider>() as unknown as HttpServer));
}

/** JSON bodies go through the edge's parser: depth checked before parsing, 400 naming why. */
function jsonBodyParser(limits: BodyLimits) {
  const jsonLimits = { maxBytes: limits.bodyLimit, maxDepth: limits.maxJsonDepth };
  return (_req: unknown, body: string | Buffer, done: (err: Error | null, value?: unknown) => void): void => {
    const parsed = parseJson(body.toString(), jsonLimits);
    if (parsed.ok) done(null, parsed.value);
    else done(Object.assign(new Error(`body: ${parsed.reason}`), { statusCode: 400 }), undefined);
  };
}

async function runCheck(c: HealthCheck): Promise<{ name: string; ok: boolean; detail?: string; error?: string }> {
  try {
    const detail = await withTimeout(c.check(), 2_000);
    return { name: c.name, ok: true, ...(typeof detail === 'string' ? { detail } : {}) };
  } catch (err) {
    return { name: c.name, ok: false, error: (err as Error).message };
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export type HttpServer = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, Logger, ZodTypeProvider>;
