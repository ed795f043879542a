import { writeFileSync } from 'node:fs';
import { loadConfig, type Config } from '../config';
import { createLogger } from '../logger';
import { Service } from '../service';

/**
 * The OpenAPI document of every route the service serves with `config` (default: the default
 * config, which turns every capability with routes on), from a service that is built and never
 * started: no connection is opened.
 */
export async function openApiDocument(config: Config = loadConfig({ env: {} })): Promise<object> {
  const service = new Service(config, createLogger('silent'));
  await service.http.ready();
  const document = service.http.swagger();
  await service.http.close();
  service.redis.disconnect();
  return document;
}

/** The committed copy, docs/openapi.json, as `npm run openapi` writes it. */
export const renderOpenApi = (document: object): string => `${JSON.stringify(document, null, 2)}\n`;

if (require.main === module) {
  const out = process.argv[2] ?? 'docs/openapi.json';
  void openApiDocument().then((d) => {
    writeFileSync(out, renderOpenApi(d));
    process.stdout.write(`wrote ${out}\n`);
  });
}
