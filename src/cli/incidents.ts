import type { Command } from 'commander';
import Redis from 'ioredis';
import { z } from 'zod';
import type { Incident } from '../correlate/incident';
import { IncidentStore } from '../incidents/store';
import { configFrom, parseOptions } from './options';

const IncidentsOptions = z.object({
  config: z.string().optional(),
  wait: z.coerce.number().int().min(0).default(0),
  timeout: z.coerce.number().int().min(1).default(60),
  limit: z.coerce.number().int().min(1).max(10_000).default(100),
  text: z.boolean().default(false),
});

export function registerIncidents(program: Command): void {
  program
    .command('incidents')
    .description('list incidents (newest first) as JSON lines, from the service\'s Redis view')
    .option('--wait <n>', 'wait until at least n incidents exist', '0')
    .option('--timeout <seconds>', 'how long --wait waits', '60')
    .option('--limit <n>', 'at most this many', '100')
    .option('--text', 'one readable paragraph per incident instead of JSON')
    .option('-c, --config <file>', 'config file')
    .action(async (raw) => {
      const opts = parseOptions('incidents', IncidentsOptions, raw);
      const config = configFrom(opts);
      const redis = new Redis(config.redis.url, { maxRetriesPerRequest: 3 });
      const store = new IncidentStore(redis, config.redis.keyPrefix);
      try {
        const deadline = Date.now() + opts.timeout * 1000;
        let list = await store.list(opts.limit);
        while (list.length < opts.wait && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 250));
          list = await store.list(opts.limit);
        }
        for (const incident of list) process.stdout.write(opts.text ? describe(incident) : `${JSON.stringify(incident)}\n`);
        if (list.length < opts.wait) {
          process.stderr.write(`cordon incidents: ${list.length} incident(s) after ${opts.timeout} s, expected ${opts.wait}\n`);
          process.exitCode = 1;
        }
      } finally {
        redis.disconnect();
      }
    });
}

function describe(i: Incident): string {
  const targets = i.entities.filter((e) => e.position !== 'root').map((e) => e.name ?? e.ip ?? e.key);
  return [
    `${i.id}  ${i.severity.toUpperCase()}  score ${i.score}  confidence ${i.confidence}  ${i.status}`,
    `  root:       ${i.root}`,
    `  targets:    ${targets.join(', ')}`,
    `  techniques: ${i.techniques.join(', ')}`,
    `  seen:       ${new Date(i.firstSeen).toISOString()} .. ${new Date(i.lastSeen).toISOString()}`,
    `  summary:    ${i.summary}`,
    '',
  ].join('\n');
}
