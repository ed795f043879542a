import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { routes, type HttpServer } from '../http/server';
import { CONSOLE_JS } from './script';
import { CONSOLE_CSS } from './style';

/**
 * The on-call console: one HTML page, one script, one stylesheet, served under /console. The page
 * itself needs no token (it holds no data); everything it shows comes from the JSON API with the
 * bearer token the user pastes in. A strict Content-Security-Policy allows only these files and
 * calls to this server, so nothing injected into the data can run or send the token elsewhere.
 */

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

interface Asset {
  body: string;
  type: string;
  etag: string;
}

function asset(body: string, type: string): Asset {
  return { body, type, etag: `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"` };
}

const JS = asset(CONSOLE_JS, 'text/javascript; charset=utf-8');
const CSS = asset(CONSOLE_CSS, 'text/css; charset=utf-8');
const HTML = asset(
  `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Cordon console</title>
<link rel="stylesheet" href="/console/app.css?v=${CSS.etag.slice(1, 9)}">
</head>
<body>
<div id="app"><noscript>The Cordon console needs JavaScript.</noscript></div>
<script src="/console/app.js?v=${JS.etag.slice(1, 9)}"></script>
</body>
</html>
`,
  'text/html; charset=utf-8',
);

export function registerConsole(app: HttpServer): void {
  const send = (a: Asset) => async (req: FastifyRequest, reply: FastifyReply) => {
    reply.header('content-security-policy', CSP).header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer').header('etag', a.etag);
    reply.header('cache-control', a === HTML ? 'no-cache' : 'public, max-age=300');
    if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
    return reply.type(a.type).send(a.body);
  };
  const schema = (description: string) => ({ schema: { tags: ['console'], description } });
  routes(app, (r) => {
    r.get('/console', schema('the console page (HTML)'), send(HTML));
    r.get('/console/', schema('the console page (HTML)'), send(HTML));
    r.get('/console/app.js', schema("the console's script"), send(JS));
    r.get('/console/app.css', schema("the console's style sheet"), send(CSS));
  });
}
