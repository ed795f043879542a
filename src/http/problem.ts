import type { FastifyError, FastifyReply } from 'fastify';
import type { HttpServer } from './server';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { z } from 'zod';

/**
 * The API's one error shape: RFC 9457 problem details, `application/problem+json`. `type` is
 * `about:blank`, so `title` is the HTTP status phrase and `detail` says what was wrong, where.
 */
export const Problem = z
  .object({
    type: z.literal('about:blank'),
    title: z.string(),
    status: z.number().int().min(400).max(599),
    detail: z.string(),
  })
  .meta({ id: 'Problem', description: 'RFC 9457 problem details (application/problem+json)' });
export type Problem = z.infer<typeof Problem>;

export const PROBLEM_TYPE = 'application/problem+json';

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

export function problemOf(status: number, detail: string): Problem {
  return { type: 'about:blank', title: TITLES[status] ?? (status < 500 ? 'Client Error' : 'Server Error'), status, detail };
}

/** Answers with a problem document; returns the reply, so a handler can `return problem(...)`. */
export function problem(reply: FastifyReply, status: number, detail: string): FastifyReply {
  return reply.code(status).type(PROBLEM_TYPE).send(problemOf(status, detail));
}

/** The error responses every route may give, for the OpenAPI document. */
export const PROBLEM_RESPONSES = { 400: Problem, 401: Problem, 403: Problem, 404: Problem, 409: Problem, 503: Problem } as const;

/**
 * Errors and unknown routes as problems. A request that fails its route's zod schema names each
 * field as `<part>.<path>: <message>` (`body.reason: say why`); errors Fastify raises itself keep
 * their status and message; anything else is a 500 whose detail hides the internals.
 */
export function installProblemHandlers(app: HttpServer): void {
  app.setNotFoundHandler((req, reply) => problem(reply, 404, `no route ${req.method} ${req.url.split('?')[0]}`));
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (hasZodFastifySchemaValidationErrors(err)) {
      const detail = err.validation
        .slice(0, 5)
        .map((v) => `${[err.validationContext, ...v.instancePath.split('/').filter(Boolean)].join('.')}: ${v.message}`)
        .join('; ');
      return problem(reply, 400, detail);
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500 && !err.statusCode) {
      req.log.error({ err, url: req.url }, 'request failed');
      return problem(reply, 500, 'the request failed; the service log has the error');
    }
    return problem(reply, status, err.message);
  });
}
