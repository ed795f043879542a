import type { Command } from 'commander';
import type { Message } from '../kafka';
import { z } from 'zod';
import { createKafka, sendInChunks } from '../kafka';
import { createLogger } from '../logger';
import { PRESETS, presetConfig } from '../simulate/presets';
import { Scenario, type SimRecord } from '../simulate/scenario';
import { writeScenario } from '../simulate/writer';
import { configFrom, parseOptions } from './options';

const SimulateOptions = z
  .object({
    config: z.string().optional(),
    preset: z.enum(PRESETS).default('small'),
    seed: z.coerce.number().int().min(0).max(2 ** 32 - 1).default(1),
    out: z.string().min(1).optional(),
    gzip: z.boolean().default(false),
    produce: z.boolean().default(false),
    maxRecords: z.coerce.number().int().positive().optional(),
  })
  .refine((o) => o.out !== undefined || o.produce, { message: 'say where the records go: --out DIR and/or --produce' });
type SimulateOptions = z.infer<typeof SimulateOptions>;

export function registerSimulate(program: Command): void {
  program
    .command('simulate')
    .description('generate an enterprise\'s telemetry with injected attacks and ground truth, in the real vendor formats')
    .option('-p, --preset <name>', `scenario: ${PRESETS.join(', ')}`, 'small')
    .option('-s, --seed <n>', 'random seed (same seed, same records)', '1')
    .option('-o, --out <dir>', 'write one JSON-lines file per format and ground-truth.json')
    .option('--gzip', 'gzip the files')
    .option('--produce', 'publish the records to Kafka (flows and anomalies topics), keyed by source entity')
    .option('--max-records <n>', 'stop after this many records')
    .option('-c, --config <file>', 'config file (Kafka topics for --produce)')
    .action(async (raw) => {
      const opts = parseOptions('simulate', SimulateOptions, raw);
      const scenario = new Scenario(presetConfig(opts.preset, { seed: opts.seed, ...(opts.maxRecords ? { maxRecords: opts.maxRecords } : {}) }));
      if (opts.out) {
        const result = await writeScenario(scenario, opts.out, { gzip: opts.gzip });
        process.stdout.write(`${JSON.stringify({ files: result.files, groundTruth: result.groundTruth, records: result.stats.records })}\n`);
      }
      if (opts.produce) process.stdout.write(`${JSON.stringify({ produced: await produce(scenario, opts) })}\n`);
    });
}

/** Streams the scenario into Kafka: anomalies (canonical JSON) to the anomalies topic, flows to the flows topic. */
async function produce(scenario: Scenario, opts: SimulateOptions): Promise<number> {
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
      if (++count % 5000 === 0) await flush();
    }
    await flush();
  } finally {
    await producer.disconnect();
  }
  return count;
}

function toMessage(r: SimRecord): Message {
  return { key: r.key, value: r.text, timestamp: String(r.time) };
}
