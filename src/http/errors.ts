/** An error a route may throw: Fastify answers with its `statusCode` and message. */
export class Unavailable extends Error {
  readonly statusCode = 503;
}
