import type { Command } from 'commander';
import type { Message } from '../kafka';
import { z } from 'zod';
import { createKafka, sendInChunks } from '../kafka';
import { createLogger } from '../logger';
import { PRESETS, presetConfig } from '../simulate/presets';
import { Scenario, type SimRecord } from '../simulate/scenario';
import { writeScenario } from '../simulate/writer';
import { ProgressBar } from '../io/progress';
import { OUTPUT_HELP } from './incident-text';
import { configFrom, parseOptions } from './options';
import type { Terminal } from './terminal';

const SimulateOptions = z
  .object({
    config: z.string().optional(),
    preset: z.enum(PRESETS).default('small'),
    seed: z.coerce.number().int().min(0).max(2 ** 32 - 1).default(1),
    out: z.string().min(1).optional(),
    gzip: z.boolean().default(false),
    produce: z.boolean().default(false),
    maxRecords: z.coerce.number().int().positive().optional(),
    json: z.boolean().default(false),
    progress: z.boolean().optional(),
  })
  .refine((o) => o.out !== undefined || o.produce, { message: 'say where the records go: --out DIR and/or --produce' });
type SimulateOptions = z.infer<typeof SimulateOptions>;

export function registerSimulate(program: Command, term: Terminal): void {
  program
    .command('simulate')
    .description('generate an enterprise\'s telemetry with injected attacks and ground truth, in the real vendor formats')
    .option('-p, --preset <name>', `scenario: ${PRESETS.join(', ')}`, 'small')
    .option('-s, --seed <n>', 'random seed (same seed, same records)', '1')
    .option('-o, --out <dir>', 'write one JSON-lines file per format and ground-truth.json')
    .option('--gzip', 'gzip the files')
    .option('--produce', 'publish the records to Kafka (flows and anomalies topics), keyed by source entity')
    .option('--max-records <n>', 'stop after this many records')
    .option('--json', OUTPUT_HELP.json)
    .option('--progress', OUTPUT_HELP.progress)
    .option('--no-progress', OUTPUT_HELP.noProgress)
    .option('-c, --config <file>', 'config file (Kafka topics for --produce)')
    .action(async (raw) => {
      const opts = parseOptions('simulate', SimulateOptions, raw);
      const scenario = new Scenario(presetConfig(opts.preset, { seed: opts.seed, ...(opts.maxRecords ? { maxRecords: opts.maxRecords } : {}) }));
      const bar = () => new ProgressBar('simulate', opts.maxRecords ?? 0, { stream: term.err, force: opts.progress, unit: 'records' });
      if (opts.out) {
        const progress = bar();
        const result = await writeScenario(scenario, opts.out, { gzip: opts.gzip, progressEvery: 1000, onProgress: (s) => progress.update(s.records) });
        progress.update(result.stats.records);
        progress.finish();
        const written = { files: result.files, groundTruth: result.groundTruth, records: result.stats.records };
        term.out.write(opts.json ? `${JSON.stringify(written)}\n` : `wrote ${written.records} record(s) to ${Object.values(written.files).join(', ')}; ground truth in ${written.groundTruth}\n`);
      }
      if (opts.produce) {
        const produced = await produce(scenario, opts, bar());
        term.out.write(opts.json ? `${JSON.stringify({ produced })}\n` : `produced ${produced} record(s) to Kafka\n`);
      }
    });
}

/** Streams the scenario into Kafka: anomalies (canonical JSON) to the anomalies topic, flows to the flows topic. */
async function produce(scenario: Scenario, opts: SimulateOptions, progress: ProgressBar): Promise<number> {
  const config = configFrom(opts);
  const kafka = createKafka(config, createLogger('error'), 'cordon-simulate');
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const [flows, anomalies] = [config.kafka.inputs[0]!.topic, (config.kafka.inputs[1] ?? config.kafka.inputs[0]!).topic];
  let batch: Array<{ topic: string; message: Message }> = [];
  let count = 0;
  const flush = async () => {
    const byTopic = new Map<string, Message[]>();
    for (const { topic, message } of batch) {
      const list = byTopic.get(topic);
      if (list) list.push(message);
      else byTopic.set(topic, [message]);
    }
    await sendInChunks(producer, [...byTopic].map(([topic, messages]) => ({ topic, messages })));
    batch = [];
  };
  try {
    for (const r of scenario.records()) {
      batch.push({ topic: r.expect === 'anomaly' ? anomalies : flows, message: toMessage(r) });
      if (++count % 5000 === 0) {
        await flush();
        progress.update(count);
      }
    }
    await flush();
    progress.update(count);
    progress.finish();
  } finally {
    await producer.disconnect();
  }
  return count;
}

function toMessage(r: SimRecord): Message {
  return { key: r.key, value: r.text, timestamp: String(r.time) };
}
