import type { Command } from 'commander';
import { z } from 'zod';
import { explainIncident } from '../correlate/explain';
import { replay } from '../correlate/replay';
import type { CordonEvent } from '../events';
import { readLines } from '../io/lines';
import { FORMATS, type Format, type StreamContext } from '../normalize/normalizer';
import { normalizeRecord } from '../normalize/registry';
import { configFrom, parseOptions } from './options';

const ReplayOptions = z.object({
  config: z.string().optional(),
  format: z.enum([...FORMATS, 'auto']).default('auto'),
  explain: z.boolean().default(false),
  policyGaps: z.boolean().default(false),
  files: z.array(z.string().min(1)).min(1, 'name at least one FILE'),
});
type ReplayOptions = z.infer<typeof ReplayOptions>;

export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description('run the correlation engine over recorded telemetry files in event-time order; prints incidents as JSON lines')
    .option('-f, --format <format>', `record format: ${[...FORMATS, 'auto'].join(', ')}`, 'auto')
    .option('--explain', 'print, for each incident, the evidence and rule weights that raised it')
    .option('--policy-gaps', 'also print policy-gap findings')
    .option('-c, --config <file>', 'config file (correlate.engine holds the engine settings)')
    .argument('<files...>', 'telemetry files, gzip or plain')
    .action(async (files: string[], raw) => {
      const opts = parseOptions('replay', ReplayOptions, { ...raw, files });
      await runReplay(opts);
    });
}

async function runReplay(opts: ReplayOptions): Promise<void> {
  const config = configFrom(opts);
  const { events, rejected, skipped } = await readEvents(opts.files, opts.format);
  const result = replay(events, config.correlate.engine);
  for (const incident of result.incidents) {
    const line = opts.explain ? { ...incident, explain: explainIncident(incident, result.engine.config) } : incident;
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }
  if (opts.policyGaps) for (const gap of result.policyGaps) process.stdout.write(`${JSON.stringify(gap)}\n`);
  process.stderr.write(
    `replayed ${events.length} events from ${opts.files.length} file(s): ${result.incidents.length} incident(s), ` +
      `${result.policyGaps.length} policy gap(s); ${skipped} record(s) skipped, ${rejected.length} rejected\n`,
  );
  for (const r of rejected.slice(0, 5)) process.stderr.write(`  rejected ${r}\n`);
}

async function readEvents(files: string[], format: Format | 'auto') {
  const events: CordonEvent[] = [];
  const rejected: string[] = [];
  let skipped = 0;
  for (const file of files) {
    const ctx: StreamContext = { state: new Map() };
    let line = 0;
    for await (const text of readLines(file)) {
      line++;
      const outcome = normalizeRecord(text, format, ctx);
      if (outcome.kind === 'events') events.push(...outcome.events);
      else if (outcome.kind === 'skip') skipped++;
      else rejected.push(`${file}:${line}: ${outcome.reason}`);
    }
  }
  return { events, rejected, skipped };
}
