import type { Command } from 'commander';
import type { ProgressStream } from '../io/progress';
import { z } from 'zod';
import { createKafka, partitionCount } from '../kafka';
import { createLogger } from '../logger';
import { FORMATS } from '../normalize/normalizer';
import { produceFile } from '../produce';
import { OUTPUT_HELP } from './incident-text';
import { configFrom, parseOptions } from './options';
import type { Terminal } from './terminal';

const ProduceOptions = z.object({
  config: z.string().optional(),
  format: z.enum([...FORMATS, 'auto']),
  topic: z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, 'expected a Kafka topic name').optional(),
  timestamp: z.enum(['event', 'now']).default('event'),
  rate: z.coerce.number().positive().optional(),
  json: z.boolean().default(false),
  progress: z.boolean().optional(),
  files: z.array(z.string().min(1)).min(1, 'name at least one FILE'),
});
type ProduceOptions = z.infer<typeof ProduceOptions>;

export function registerProduce(program: Command, term: Terminal): void {
  program
    .command('produce')
    .description('publish recorded telemetry files (gzip or plain, one record a line) to Kafka, keyed by source entity')
    .requiredOption('-f, --format <format>', `record format: ${[...FORMATS, 'auto'].join(', ')}`)
    .option('-t, --topic <topic>', 'topic (default: cordon.anomalies for anomalies in cordon format, else cordon.flows)')
    .option('--timestamp <mode>', 'Kafka timestamp: event (the record\'s own time) or now', 'event')
    .option('--rate <n>', 'records per second (default: as fast as the broker takes them)')
    .option('--json', OUTPUT_HELP.json)
    .option('--progress', OUTPUT_HELP.progress)
    .option('--no-progress', OUTPUT_HELP.noProgress)
    .option('-c, --config <file>', 'config file')
    .argument('<files...>', 'telemetry files')
    .action(async (files: string[], raw) => {
      const opts = parseOptions('produce', ProduceOptions, { ...raw, files });
      const { topic, counts } = await produceFiles(opts, term.err);
      if (opts.json) term.out.write(`${JSON.stringify({ topic, produced: counts })}\n`);
      else for (const [file, n] of Object.entries(counts)) term.out.write(`produced ${n} record(s) from ${file} to ${topic}\n`);
    });
}

async function produceFiles(opts: ProduceOptions, progress: ProgressStream): Promise<{ topic: string; counts: Record<string, number> }> {
  const config = configFrom(opts);
  const log = createLogger(config.log.level === 'info' ? 'error' : config.log.level, 'cordon', { format: config.log.format });
  const kafka = createKafka(config, log, 'cordon-produce');
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const topic = opts.topic ?? config.kafka.inputs[0]!.topic;
  const partitions = await partitionCount(kafka, topic);
  const counts: Record<string, number> = {};
  try {
    for (const file of opts.files) counts[file] = await produceFile(producer, file, topic, { ...opts, progressStream: progress }, partitions);
  } finally {
    await producer.disconnect();
  }
  return { topic, counts };
}
