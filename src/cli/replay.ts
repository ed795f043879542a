import type { Command } from 'commander';
import { z } from 'zod';
import { explainIncident, formatExplanation } from '../correlate/explain';
import { replay } from '../correlate/replay';
import type { CordonEvent } from '../events';
import { fileSize } from '../io/lines';
import { readRecords } from '../io/records';
import { ProgressBar } from '../io/progress';
import { FORMATS, type Format, type StreamContext } from '../normalize/normalizer';
import { normalizeRecord } from '../normalize/registry';
import { describeIncident, OUTPUT_HELP } from './incident-text';
import { configFrom, parseOptions } from './options';
import { paletteFor, type Terminal } from './terminal';

const ReplayOptions = z.object({
  config: z.string().optional(),
  format: z.enum([...FORMATS, 'auto']).default('auto'),
  explain: z.boolean().default(false),
  policyGaps: z.boolean().default(false),
  json: z.boolean().default(false),
  progress: z.boolean().optional(),
  files: z.array(z.string().min(1)).min(1, 'name at least one FILE'),
});
type ReplayOptions = z.infer<typeof ReplayOptions>;

export function registerReplay(program: Command, term: Terminal): void {
  program
    .command('replay')
    .description('run the correlation engine over recorded telemetry files in event-time order; prints the incidents (--json: as JSON lines)')
    .option('-f, --format <format>', `record format: ${[...FORMATS, 'auto'].join(', ')}`, 'auto')
    .option('--explain', 'print, for each incident, the evidence and rule weights that raised it')
    .option('--policy-gaps', 'also print policy-gap findings')
    .option('--json', OUTPUT_HELP.json)
    .option('--progress', OUTPUT_HELP.progress)
    .option('--no-progress', OUTPUT_HELP.noProgress)
    .option('-c, --config <file>', 'config file (correlate.engine holds the engine settings)')
    .argument('<files...>', 'telemetry files, gzip or plain: a record a line, or JSON (pretty-printed, or an array of records)')
    .action(async (files: string[], raw) => {
      const opts = parseOptions('replay', ReplayOptions, { ...raw, files });
      await runReplay(opts, term);
    });
}

async function runReplay(opts: ReplayOptions, term: Terminal): Promise<void> {
  const config = configFrom(opts);
  const bar = new ProgressBar('replay', sizes(opts.files).reduce((a, b) => a + b, 0), { stream: term.err, force: opts.progress });
  const { events, rejected, skipped } = await readEvents(opts.files, opts.format, bar);
  bar.finish();
  const result = replay(events, config.correlate.engine);
  const p = paletteFor(term);
  for (const incident of result.incidents) {
    const explain = opts.explain ? explainIncident(incident, result.engine.config) : undefined;
    if (opts.json) term.out.write(`${JSON.stringify(explain ? { ...incident, explain } : incident)}\n`);
    else term.out.write(`${describeIncident(incident, p)}${explain ? `${formatExplanation(explain)}\n\n` : ''}`);
  }
  if (opts.policyGaps) for (const gap of result.policyGaps) term.out.write(opts.json ? `${JSON.stringify(gap)}\n` : `${p.bold(gap.id)}  policy gap  ${gap.summary}\n`);
  term.err.write(
    `replayed ${events.length} events from ${opts.files.length} file(s): ${result.incidents.length} incident(s), ` +
      `${result.policyGaps.length} policy gap(s); ${skipped} record(s) skipped, ${rejected.length} rejected\n`,
  );
  for (const r of rejected.slice(0, 5)) term.err.write(`  rejected ${r}\n`);
}

async function readEvents(files: string[], format: Format | 'auto', bar: ProgressBar) {
  const events: CordonEvent[] = [];
  const rejected: string[] = [];
  let skipped = 0;
  let records = 0;
  let before = 0;
  const size = sizes(files);
  for (const [i, file] of files.entries()) {
    const ctx: StreamContext = { state: new Map() };
    let line = 0;
    for await (const text of readRecords(file, (bytes) => bar.update(before + bytes, records))) {
      line++;
      records++;
      const outcome = normalizeRecord(text, format, ctx);
      if (outcome.kind === 'events') events.push(...outcome.events);
      else if (outcome.kind === 'skip') skipped++;
      else rejected.push(`${file}:${line}: ${outcome.reason}`);
    }
    before += size[i]!;
    bar.update(before, records);
  }
  return { events, rejected, skipped };
}

/** Each file's size for the progress total; one that cannot be read counts 0 (reading it names the error). */
function sizes(files: string[]): number[] {
  return files.map((f) => {
    try {
      return fileSize(f);
    } catch {
      return 0;
    }
  });
}
