import type { Command } from 'commander';
import { z } from 'zod';
import { createLogger } from '../logger';
import { Service } from '../service';
import { configFrom, parseOptions } from './options';

const RunOptions = z.object({ config: z.string().optional() });

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run the Cordon service: ingest, correlation, containment, HTTP API')
    .option('-c, --config <file>', 'config file (YAML or JSON); env CORDON_CONFIG')
    .action(async (raw) => {
      const opts = parseOptions('run', RunOptions, raw);
      const config = configFrom(opts);
      const log = createLogger(config.log.level, 'cordon', { format: config.log.format });
      const service = new Service(config, log);
      let stopping = false;
      const shutdown = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        log.info({ signal }, 'shutting down');
        await service.stop();
        process.exit(0);
      };
      process.on('SIGTERM', () => void shutdown('SIGTERM'));
      process.on('SIGINT', () => void shutdown('SIGINT'));
      try {
        await service.start();
      } catch (err) {
        log.fatal({ err }, 'start failed');
        await service.stop();
        process.exit(1);
      }
    });
}
