import { Option, type Command } from 'commander';
import Redis from 'ioredis';
import { z } from 'zod';
import { IncidentStore } from '../incidents/store';
import { describeIncident, OUTPUT_HELP } from './incident-text';
import { configFrom, parseOptions } from './options';
import { paletteFor, type Terminal } from './terminal';

const IncidentsOptions = z.object({
  config: z.string().optional(),
  wait: z.coerce.number().int().min(0).default(0),
  timeout: z.coerce.number().int().min(1).default(60),
  limit: z.coerce.number().int().min(1).max(10_000).default(100),
  json: z.boolean().default(false),
  text: z.boolean().default(false),
});

export function registerIncidents(program: Command, term: Terminal): void {
  program
    .command('incidents')
    .description('list incidents (newest first), from the service\'s Redis view; --json: as JSON lines')
    .option('--wait <n>', 'wait until at least n incidents exist', '0')
    .option('--timeout <seconds>', 'how long --wait waits', '60')
    .option('--limit <n>', 'at most this many', '100')
    .option('--json', OUTPUT_HELP.json)
    .addOption(new Option('--text', 'deprecated: text is the default').hideHelp())
    .option('-c, --config <file>', 'config file')
    .action(async (raw) => {
      const opts = parseOptions('incidents', IncidentsOptions, raw);
      if (opts.text) term.err.write('cordon incidents: --text is deprecated, text is the default (--json for JSON lines)\n');
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
        const p = paletteFor(term);
        for (const incident of list) term.out.write(opts.json ? `${JSON.stringify(incident)}\n` : describeIncident(incident, p));
        if (list.length < opts.wait) {
          term.err.write(`cordon incidents: ${list.length} incident(s) after ${opts.timeout} s, expected ${opts.wait}\n`);
          process.exitCode = 1;
        }
      } finally {
        redis.disconnect();
      }
    });
}
