import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { userInfo } from 'node:os';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import Redis from 'ioredis';
import { z } from 'zod';
import type { Config } from '../config';
import { createKafka } from '../kafka';
import { createLogger } from '../logger';
import { enforcersFrom } from '../enforcer/registry';
import { LedgerBrokenError, exportLedger, verifyLedger, verifyLedgerCheckpoints, type CheckpointMismatch, type LedgerVerifyResult } from '../ledger/audit';
import { CheckpointError, describeCheckpoint } from '../ledger/checkpoint';
import { checkpointStoreFrom, checkpointVerifyKeys } from '../ledger/checkpoint-stores';
import { RebuildRefusedError, enforcerDropGuard } from '../ledger/rebuild';
import { verifyAsync } from '../ledger/chain';
import { Ledger, LedgerStateError } from '../ledger/ledger';
import { LedgerLockedError } from '../ledger/lock';
import { Actor, type RebuildPayload } from '../ledger/records';
import { configFrom, CliError, parseOptions } from './options';
import type { Terminal } from './terminal';

const VerifyOptions = z.object({
  config: z.string().optional(),
  file: z.string().min(1).optional(),
  json: z.boolean().default(false),
});
const ExportOptions = z.object({
  config: z.string().optional(),
  out: z.string().min(1).optional(),
});
const RebuildOptions = z.object({
  config: z.string().optional(),
  actor: Actor.optional(),
  record: z.boolean().default(true),
  json: z.boolean().default(false),
});

/** What `audit rebuild` reports. */
export interface RebuildSummary extends RebuildPayload {
  unresolved: number;
  head: { seq: number; hash: string };
  recordedSeq: number | undefined;
}

export function registerAudit(program: Command, term: Terminal): void {
  const audit = program.command('audit').description('the tamper-evident ledger: verify the chain, export it, rebuild the quarantine registry from it');

  audit
    .command('verify')
    .description('walk the hash chain of the ledger topic (or of an exported file) and check it against the signed checkpoints of ledger.checkpoint; exit 1 naming the first break')
    .option('--file <file>', 'verify an export (JSON lines) instead of the topic')
    .option('--json', 'print the result as JSON: {ok, message} and, for the chain alone, its count and head or where it broke')
    .option('-c, --config <file>', 'config file')
    .action(async (raw) => {
      const opts = parseOptions('audit verify', VerifyOptions, raw);
      const config = configFrom(opts);
      if (opts.file || !config.ledger.checkpoint) {
        const result = opts.file ? await verifyFile(opts.file) : await withKafka(config, (kafka) => verifyLedger(kafka, config.kafka.topics.ledger));
        term.out.write(opts.json ? `${JSON.stringify({ ...result, message: describeVerify(result) })}\n` : `${describeVerify(result)}\n`);
        if (!result.ok) process.exitCode = 1;
        return;
      }
      const result = await withKafka(config, (kafka, log) => verifyAgainstCheckpoints(config, kafka, log));
      term.out.write(opts.json ? `${JSON.stringify({ ok: result.ok, message: result.text })}\n` : `${result.text}\n`);
      if (!result.ok) process.exitCode = 1;
    });

  audit
    .command('export')
    .description('write every ledger record, as stored, one JSON object a line')
    .option('-o, --out <file>', 'write to this file instead of stdout')
    .option('-c, --config <file>', 'config file')
    .action(async (raw) => {
      const opts = parseOptions('audit export', ExportOptions, raw);
      const config = configFrom(opts);
      const out = opts.out ? createWriteStream(opts.out, { encoding: 'utf8' }) : process.stdout;
      const write = async (line: string) => {
        if (!out.write(`${line}\n`)) await once(out, 'drain');
      };
      const count = await withKafka(config, (kafka) => exportLedger(kafka, config.kafka.topics.ledger, write));
      if (opts.out) await new Promise<void>((resolve, reject) => (out as ReturnType<typeof createWriteStream>).end((err?: Error | null) => (err ? reject(err) : resolve())));
      process.stderr.write(`exported ${count} record(s) from ${config.kafka.topics.ledger}${opts.out ? ` to ${opts.out}` : ''}\n`);
    });

  audit
    .command('rebuild')
    .description('rebuild the quarantine registry in Redis from the ledger alone (takes the writer lock: stop the service first); prints counts')
    .option('--actor <actor>', 'who rebuilds, for the ledger record (default user:<login name>)')
    .option('--no-record', 'do not append a rebuild record to the ledger')
    .option('--json', 'print the counts as JSON')
    .option('-c, --config <file>', 'config file')
    .action(async (raw) => {
      const opts = parseOptions('audit rebuild', RebuildOptions, raw);
      const config = configFrom(opts);
      const actor = opts.actor ?? defaultActor();
      const summary = await withKafka(config, async (kafka, log): Promise<RebuildSummary | undefined> => {
        // A broken or diverged ledger is a finding, not a crash: name it and exit 1.
        const refused = (err: unknown) => {
          if (!(err instanceof LedgerBrokenError || err instanceof LedgerStateError || err instanceof RebuildRefusedError)) throw err;
          process.stderr.write(`cordon audit rebuild: refused, the registry is left as it was: ${err.message}\n`);
          process.exitCode = 1;
          return undefined;
        };
        const redis = new Redis(config.redis.url, { maxRetriesPerRequest: 3, lazyConnect: true });
        try {
          await redis.connect();
          const ledger = await Ledger.open({
            kafka,
            redis,
            log,
            topic: config.kafka.topics.ledger,
            prefix: config.redis.keyPrefix,
            owner: `cordon-audit-rebuild@${process.pid}`,
            startup: 'rebuild',
            dropGuard: enforcerDropGuard(enforcersFrom(config, redis, log)),
          }).catch((err: unknown) => {
            if (err instanceof LedgerLockedError) throw new CliError(`cordon audit rebuild: ${err.message}`);
            return refused(err);
          });
          if (!ledger) return undefined;
          try {
            if (ledger.startup.registry !== 'rebuilt') throw new Error('the registry was not rebuilt');
            const r = ledger.startup.rebuild;
            const counts: RebuildPayload = { records: r.records, leases: r.leases, byState: r.byState, reschedule: r.reschedule.length };
            const recorded = opts.record
              ? await ledger.append({
                  actor,
                  action: 'rebuild',
                  target: 'quarantine-registry',
                  after: counts,
                  reason: `quarantine registry rebuilt from ${r.records} ledger record(s) by cordon audit rebuild`,
                })
              : undefined;
            return { ...counts, unresolved: r.unresolved.length, head: { seq: r.head.seq, hash: r.head.hash }, recordedSeq: recorded?.seq };
          } finally {
            await ledger.close();
          }
        } finally {
          redis.disconnect();
        }
      });
      if (summary) term.out.write(opts.json ? `${JSON.stringify(summary)}\n` : `${describeRebuild(summary)}\n`);
    });
}

async function withKafka<T>(config: Config, use: (kafka: ReturnType<typeof createKafka>, log: ReturnType<typeof createLogger>) => Promise<T>): Promise<T> {
  const log = createLogger(config.log.level === 'info' ? 'error' : config.log.level, 'cordon', { format: config.log.format });
  return use(createKafka(config, log, 'cordon-audit'), log);
}

/** The chain, then the checkpoints in the configured store (tail cut, rewritten chain, bad signature). */
async function verifyAgainstCheckpoints(config: Config, kafka: ReturnType<typeof createKafka>, log: ReturnType<typeof createLogger>): Promise<{ ok: boolean; text: string }> {
  const c = config.ledger.checkpoint!;
  let keys: ReturnType<typeof checkpointVerifyKeys>;
  let store: ReturnType<typeof checkpointStoreFrom>;
  try {
    keys = checkpointVerifyKeys(c);
    store = checkpointStoreFrom(c.store, config, log);
  } catch (err) {
    if (err instanceof CheckpointError) throw new CliError(`cordon audit verify: ${err.message}`);
    throw err;
  }
  try {
    const checkpoints = (await store.list()).filter((cp) => cp.topic === config.kafka.topics.ledger);
    const result = await verifyLedgerCheckpoints(kafka, config.kafka.topics.ledger, checkpoints, keys);
    if ('checkpoint' in result) return { ok: false, text: describeMismatch(result, store.describe) };
    if (!result.ok) return { ok: false, text: describeVerify(result) };
    return { ok: true, text: `${describeVerify(result)}; ${checkpoints.length} checkpoint(s) in ${store.describe} agree` };
  } catch (err) {
    if (err instanceof CheckpointError) throw new CliError(`cordon audit verify: ${err.message}`);
    throw err;
  } finally {
    await store.close?.();
  }
}

export function describeMismatch(m: CheckpointMismatch, where: string): string {
  return `FAILED against the ${describeCheckpoint(m.checkpoint)} in ${where}: ${m.reason}; ${m.count} record(s) verified`;
}

async function verifyFile(file: string): Promise<LedgerVerifyResult> {
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  async function* records() {
    yield* lines;
  }
  return verifyAsync(records());
}

export function describeRebuild(s: RebuildSummary): string {
  const states = Object.entries(s.byState).filter(([, n]) => n > 0).map(([state, n]) => `${state} ${n}`).join(', ');
  return [
    `rebuilt the quarantine registry from ${s.records} ledger record(s), head seq ${s.head.seq}: ${s.leases} lease(s)${states ? ` (${states})` : ''}`,
    `  expiry jobs to re-schedule: ${s.reschedule}; pending leases left unresolved: ${s.unresolved}`,
    `  ${s.recordedSeq === undefined ? 'not recorded in the ledger (--no-record)' : `recorded in the ledger as seq ${s.recordedSeq}`}`,
  ].join('\n');
}

export function describeVerify(result: LedgerVerifyResult): string {
  const fenced = result.fenced ? `; ${result.fenced} fenced late write(s) of replaced writers skipped` : '';
  if (result.ok) return `ok: ${result.count} records, head ${result.head}${fenced}`;
  const where = 'offset' in result ? `offset ${result.offset}` : `line ${result.index + 1}`;
  return `FAILED at seq ${result.seq} (${where}): ${result.reason}; ${result.count} record(s) verified before it${fenced}`;
}

function defaultActor(): string {
  let name = 'unknown';
  try {
    name = userInfo().username || name;
  } catch {
    // no passwd entry (containers): keep "unknown"
  }
  return `user:${name.replace(/[\s\u0000-\u001f\u007f]/g, '_')}`;
}
