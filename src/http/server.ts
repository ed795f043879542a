import Fastify, { LogController } from 'fastify';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { DEFAULT_JSON_LIMITS, parseJson } from '../validation';

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

/**
 * The service's HTTP port: liveness, readiness with each dependency's state, Prometheus metrics.
 * Later capabilities (approvals API, console, inbound alerts) register as Fastify plugins here.
 */
export function createHttpServer(deps: HttpDeps) {
  const app = Fastify({
    loggerInstance: deps.log.child({ component: 'http' }),
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { maxParamLength: 2048 },
    bodyLimit: (deps.limits ?? DEFAULT_LIMITS).bodyLimit,
  });
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, jsonBodyParser(deps.limits ?? DEFAULT_LIMITS));

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const results = await Promise.all(deps.checks.map(runCheck));
    const ready = results.every((r) => r.ok);
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks: results });
  });

  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });

  return app;
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

export type HttpServer = ReturnType<typeof createHttpServer>;
