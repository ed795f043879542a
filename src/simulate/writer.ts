import { once } from 'node:events';
import { createWriteStream, mkdirSync, writeFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { createGzip, type Gzip } from 'node:zlib';
import type { Format } from '../normalize/normalizer';
import type { GroundTruth } from './groundtruth';
import { emptyStats, type Scenario, type ScenarioStats } from './scenario';

/**
 * Writes a scenario to a directory (`cordon simulate --out DIR`): one JSON-lines file per format
 * (`wfp.jsonl`, `hubble.jsonl`, ... or `.jsonl.gz`), each in event-time order, and
 * `ground-truth.json` with the attacks, the benign traps, the engine configuration and the counts.
 * Streams with back-pressure: memory stays flat however many records are written.
 */

export interface WriteOptions {
  gzip?: boolean;
  /** Called every `progressEvery` records. */
  onProgress?: (stats: ScenarioStats) => void;
  progressEvery?: number;
}

export interface WriteResult {
  files: Partial<Record<Format, string>>;
  groundTruth: string;
  stats: ScenarioStats;
  truth: GroundTruth;
}

export async function writeScenario(scenario: Scenario, dir: string, options: WriteOptions = {}): Promise<WriteResult> {
  mkdirSync(dir, { recursive: true });
  const gzip = options.gzip ?? false;
  const outputs = new Map<Format, { file: string; out: WriteStream; sink: Gzip | WriteStream }>();
  const stats = emptyStats();
  const every = options.progressEvery ?? 100_000;

  const sinkFor = (format: Format) => {
    let o = outputs.get(format);
    if (!o) {
      const file = join(dir, `${format}.jsonl${gzip ? '.gz' : ''}`);
      const out = createWriteStream(file);
      if (gzip) {
        const z = createGzip({ level: 6 });
        z.pipe(out);
        o = { file, out, sink: z };
      } else o = { file, out, sink: out };
      outputs.set(format, o);
    }
    return o.sink;
  };

  try {
    for (const rec of scenario.records(stats)) {
      const sink = sinkFor(rec.format);
      if (!sink.write(rec.text + '\n')) await once(sink, 'drain');
      if (options.onProgress && stats.records % every === 0) options.onProgress(stats);
    }
  } finally {
    for (const { sink, out } of outputs.values()) {
      sink.end();
      if (!out.writableFinished) await once(out, 'finish');
    }
  }
  const truth: GroundTruth = { ...scenario.truth, stats };
  const groundTruth = join(dir, 'ground-truth.json');
  writeFileSync(groundTruth, JSON.stringify(truth, null, 2) + '\n');
  const files: Partial<Record<Format, string>> = {};
  for (const [format, { file }] of outputs) files[format] = file;
  return { files, groundTruth, stats, truth };
}
