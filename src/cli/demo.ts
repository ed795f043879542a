import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createEsClient } from '../siem/es-client';
import type { Command } from 'commander';
import Redis from 'ioredis';
import type { Consumer, Kafka } from '../kafka';
import YAML from 'yaml';
import { z } from 'zod';
import { freePort, OUTPUT_DIR, REPO_ROOT, startCordon, writeConfig, type CordonProcess } from '../../bench/support/cordon-process';
// The network lab is shared with the nftables enforcer's end-to-end test.
import { createLab, destroyLab, labSupport, removeStaleLabs, startEchoServer, tryConnect, type Lab, type NsProcess } from '../../test/support/netns';
import { loadConfig, type Config } from '../config';
import { isolatedKafka } from '../../bench/run-config';
import type { Incident } from '../correlate/incident';
import { IncidentStore } from '../incidents/store';
import { createKafka, partitionCount } from '../kafka';
import { verifyLedger } from '../ledger/audit';
import type { LedgerRecord } from '../ledger/records';
import { createLogger } from '../logger';
import { produceFile } from '../produce';
import { EpochFence, fenceHeaders } from '../ledger/fence';
import { parseOptions } from './options';
import { colourOn, palette } from './terminal';

/**
 * `cordon demo`: the quick start's main job. Plays a recorded attack into Kafka against a real
 * `cordon run` child with the auto-quarantine playbook (short TTL), follows the ledger as it is
 * written, and, where it can (root, nft), makes the recording's attacker and victim real network
 * namespaces and shows a connection between them working, dropped while quarantined, and working
 * again after the rollback. Elsewhere the playbook runs dry and the output says so.
 */

const DemoOptions = z.object({
  recording: z.string().min(1),
  groundTruth: z.string().min(1),
  ttl: z.coerce.number().int().min(5).max(3600).default(20),
  httpPort: z.coerce.number().int().min(0).max(65535).default(0),
  dryRun: z.boolean().default(false),
});
type DemoOptions = z.infer<typeof DemoOptions>;

const GroundTruthRow = z.object({
  dataset: z.string().min(1),
  attacker_ip: z.ipv4({ error: 'expected the attacker IPv4 address' }),
  victim_ip: z.ipv4({ error: 'expected the victim IPv4 address' }),
});

const PORT = 445; // the recording's attack is SMB / RPC service control
const DATASETS = '../shared/datasets/otrf-lateral-movement';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('the quick start: a recorded attack contained live (network namespaces + nftables when root, else dry-run)')
    .option('--recording <file>', 'recorded attack (NXLog JSON lines, gzip)', `${DATASETS}/covenant_sharpsc_create_dcerpc_smb_svcctl.jsonl.gz`)
    .option('--ground-truth <file>', 'ground-truth.csv naming the recording\'s attacker and victim', `${DATASETS}/ground-truth.csv`)
    .option('--ttl <seconds>', 'quarantine TTL', '20')
    .option('--http-port <port>', 'the service\'s HTTP port (default: a free one)', '0')
    .option('--dry-run', 'run the enforcer dry even when the network lab could run')
    .action(async (raw) => {
      const opts = parseOptions('demo', DemoOptions, raw);
      process.exitCode = (await new Demo(opts).run()) ? 0 : 1;
    });
}

interface Outcome {
  incident?: Incident;
  applied?: LedgerRecord;
  released?: LedgerRecord;
  dryRun?: LedgerRecord;
  probes: { before?: string; during?: string; after?: string };
  ledger?: string;
  elasticsearch?: string;
}

class Demo {
  private readonly runId = `demo-${Date.now().toString(36)}`;
  private readonly out: Outcome = { probes: {} };
  private readonly cleanups: Array<() => Promise<void>> = [];
  private readonly start = Date.now();
  private lab: Lab | undefined;

  constructor(private readonly opts: DemoOptions) {}

  async run(): Promise<boolean> {
    const onSignal = () => {
      say('interrupted: stopping cordon and removing the network namespaces...');
      void this.cleanup().finally(() => process.exit(130));
    };
    process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
    try {
      return await this.story();
    } finally {
      await this.cleanup();
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    }
  }

  private async story(): Promise<boolean> {
    const truth = groundTruth(this.opts.groundTruth, this.opts.recording);
    const support = this.opts.dryRun ? { ok: false as const, reason: '--dry-run given' } : labSupport();
    const live = support.ok;
    section(`recording ${truth.dataset}: attacker ${truth.attacker_ip} -> victim ${truth.victim_ip} (ground truth)`);
    let echo: NsProcess | undefined;
    if (live) {
      echo = await this.buildLab(truth);
    } else {
      say(`ENFORCER IN DRY-RUN: ${support.reason}. The playbook runs dry: every decision is recorded, nothing is touched.`);
    }
    const config = await this.writeConfig(live);
    const cordon = await this.startService(config);
    const kafka = createKafka(config.parsed, createLogger('error'), `${this.runId}-demo`);
    await this.follow(kafka, config.parsed);
    section(`playing the recorded attack into Kafka (${config.parsed.kafka.inputs[0]!.topic})`);
    const produced = await this.produce(kafka, config.parsed);
    say(`produced ${produced} records`);
    await this.waitFor(() => (live ? this.out.released : this.out.dryRun), (this.opts.ttl + 60) * 1000, live ? 'the quarantine to be rolled back' : 'the dry-run decision');
    if (live && this.lab) {
      this.out.probes.after = await this.probe('after rollback');
    }
    echo?.stop();
    await this.searchElasticsearch(config.parsed);
    section('stopping cordon (SIGTERM)');
    const exit = await cordon.stop();
    say(`cordon exited ${exit.signal ?? `with code ${exit.code}`} (log ${cordon.logFile})`);
    await this.verify(kafka, config.parsed);
    return this.summary(live, support.ok ? undefined : support.reason);
  }

  private async buildLab(truth: z.infer<typeof GroundTruthRow>): Promise<NsProcess> {
    await removeStaleLabs();
    this.lab = await createLab({ attacker: truth.attacker_ip, victim: truth.victim_ip });
    const lab = this.lab;
    this.cleanups.push(() => destroyLab(lab));
    say(`network lab: namespaces ${lab.attacker.ns} (${lab.attacker.ipv4}) and ${lab.victim.ns} (${lab.victim.ipv4}), routed through ${lab.router} where nftables enforces`);
    const echo = await startEchoServer(lab.victim.ns, PORT);
    this.out.probes.before = await this.probe('before the attack is played');
    return echo;
  }

  private async probe(when: string): Promise<string> {
    const lab = this.lab!;
    const result = await tryConnect(lab.attacker.ns, lab.victim.ipv4, PORT, 1_500);
    const verdict = result === 'ok' ? 'WORKS (round trip ok)' : `DROPPED (${result})`;
    say(`connection ${lab.attacker.ipv4} -> ${lab.victim.ipv4}:${PORT} ${when}: ${verdict}`);
    return result;
  }

  private async writeConfig(live: boolean): Promise<{ file: string; parsed: Config }> {
    const playbook = this.writePlaybook(live);
    const port = this.opts.httpPort || (await freePort());
    const raw = {
      kafka: {
        inputs: [{ topic: `${this.runId}.flows`, format: 'auto' }, { topic: `${this.runId}.anomalies`, format: 'cordon' }],
        ...isolatedKafka(this.runId),
      },
      redis: { keyPrefix: this.runId },
      http: { port },
      correlate: { snapshotIntervalMs: 1000 },
      contain: {
        playbooks: playbook,
        dryRun: !live,
        reconcileIntervalMs: 2_000,
        enforcers: live ? { nftables: { enabled: true, table: 'cordon', netns: this.lab!.router } } : {},
      },
      // The SIEM writer on, into this run's own indices; refreshed on write so the search sees it.
      elasticsearch: { enabled: true, indexPrefix: this.runId, bulk: { refresh: 'wait_for', pollIntervalMs: 200 } },
    };
    const file = writeConfig(this.runId, raw);
    return { file, parsed: loadConfig({ file, env: {} }) };
  }

  /** The shipped auto-quarantine playbook with the demo's TTL and a match the recording reaches. */
  private writePlaybook(live: boolean): string {
    const doc = YAML.parse(readFileSync(join(REPO_ROOT, 'playbooks/auto-quarantine.yaml'), 'utf8')) as {
      description: string;
      match: { severity: string; confidence: number };
      steps: Array<{ type: string; ttl?: string; message?: string }>;
    };
    const shipped = { ...doc.match };
    doc.description = `auto-quarantine for the demo: notify the SOC, quarantine the root for ${this.opts.ttl}s with nftables, then enrich.`;
    doc.match.severity = 'low';
    doc.match.confidence = 0.5;
    for (const step of doc.steps) {
      if (step.type === 'quarantine') step.ttl = `${this.opts.ttl}s`;
      if (step.message) step.message = step.message.replace('for 1h', `for ${this.opts.ttl}s`);
    }
    mkdirSync(OUTPUT_DIR, { recursive: true });
    const file = join(OUTPUT_DIR, `${this.runId}.auto-quarantine.yaml`);
    writeFileSync(file, YAML.stringify(doc));
    say(
      `playbook: playbooks/auto-quarantine.yaml with ttl ${this.opts.ttl}s (shipped: 1h) and match severity >= low, confidence >= 0.5 ` +
        `(shipped: >= ${shipped.severity}, >= ${shipped.confidence}): one recorded attack, one workstation against one other, scores low; ` +
        `enforcer nftables${live ? '' : ' (dry-run)'}`,
    );
    return file;
  }

  private async startService(config: { file: string; parsed: Config }): Promise<CordonProcess> {
    section(`starting cordon run (config ${config.file})`);
    const cordon = await startCordon({ name: this.runId, configFile: config.file, env: { CORDON_LOG_LEVEL: 'info' } });
    this.cleanups.push(async () => void (await cordon.stop()));
    await cordon.waitReady(120_000);
    say(`cordon is ready (pid ${cordon.pid}, ${cordon.url}, log ${cordon.logFile})`);
    return cordon;
  }

  /** Prints every ledger record as the service writes it, and reacts to the quarantine. */
  private async follow(kafka: Kafka, config: Config): Promise<void> {
    const consumer: Consumer = kafka.consumer({ groupId: `${this.runId}-demo-follow` });
    const redis = new Redis(config.redis.url, { maxRetriesPerRequest: 3 });
    const store = new IncidentStore(redis, config.redis.keyPrefix);
    this.cleanups.push(async () => {
      await consumer.disconnect().catch(() => {});
      redis.disconnect();
    });
    await consumer.connect();
    await consumer.subscribe({ topic: config.kafka.topics.ledger, fromBeginning: true });
    const fence = new EpochFence();
    await consumer.run({
      eachMessage: async ({ message }) => {
        if (fence.admit(fenceHeaders(message.headers)) !== 'record') return;
        const record = JSON.parse(String(message.value)) as LedgerRecord;
        await this.onRecord(record, store);
      },
    });
  }

  private async onRecord(r: LedgerRecord, store: IncidentStore): Promise<void> {
    const at = `+${((Date.now() - this.start) / 1000).toFixed(1)}s`;
    if (r.action === 'incident_raised') {
      this.out.incident = r.incidentId ? await store.get(r.incidentId) : undefined;
      section(`incident raised ${at}`);
      if (this.out.incident) process.stdout.write(describeIncident(this.out.incident));
    }
    say(`ledger #${r.seq} ${at} ${r.action.padEnd(19)} ${r.target}  ${detail(r)}`);
    if (r.action === 'dry_run') this.out.dryRun = r;
    const after = r.after as { state?: string; expiresAt?: number } | null;
    if (r.action === 'quarantine_applied' && after?.state === 'applied' && !this.out.applied) {
      this.out.applied = r;
      say(`QUARANTINED ${r.target} until ${new Date(after.expiresAt!).toISOString()} (in ${((after.expiresAt! - Date.now()) / 1000).toFixed(1)} s)`);
      if (this.lab) this.out.probes.during = await this.probe('while quarantined');
    }
    if ((r.action === 'quarantine_expired' || r.action === 'quarantine_released') && !this.out.released) {
      this.out.released = r;
      say(`ROLLED BACK ${r.target}: ${r.reason}`);
    }
  }

  private async produce(kafka: Kafka, config: Config): Promise<number> {
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      const topic = config.kafka.inputs[0]!.topic;
      return await produceFile(producer, this.opts.recording, topic, { format: 'auto', timestamp: 'event' }, await partitionCount(kafka, topic));
    } finally {
      await producer.disconnect();
    }
  }

  private async verify(kafka: Kafka, config: Config): Promise<void> {
    section('cordon audit verify');
    const result = await verifyLedger(kafka, config.kafka.topics.ledger);
    this.out.ledger = result.ok ? `ok: ${result.count} records, head ${result.head.slice(0, 16)}…` : `BROKEN at seq ${result.seq}: ${result.reason}`;
    say(this.out.ledger);
  }

  private async searchElasticsearch(config: Config): Promise<void> {
    section('the incident in Elasticsearch');
    const id = this.out.incident?.id;
    if (!id) {
      this.out.elasticsearch = 'no incident to look for';
      return say(this.out.elasticsearch);
    }
    const index = `${this.runId}-incidents`;
    const es = createEsClient({ node: config.elasticsearch.url, requestTimeout: 10_000 });
    try {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const res = await es.search({ index, query: { query_string: { query: `"${id}"` } }, size: 1 }, { ignore: [404] });
        const hit = (res as { hits?: { hits?: Array<{ _index: string; _id: string; _source?: Record<string, unknown> }> } }).hits?.hits?.[0];
        if (hit) {
          this.out.elasticsearch = `found: ${hit._index}/${hit._id} ${esSummary(hit._source ?? {})}`;
          break;
        }
        if (Date.now() > deadline) {
          this.out.elasticsearch = `NOT INDEXED YET: no document for ${id} in ${index} after 15 s`;
          break;
        }
        await sleep(1_000);
      }
    } catch (err) {
      this.out.elasticsearch = `NOT CHECKED: ${config.elasticsearch.url} did not answer: ${(err as Error).message}`;
    } finally {
      await es.close();
    }
    say(this.out.elasticsearch);
  }

  private summary(live: boolean, dryReason: string | undefined): boolean {
    const o = this.out;
    const applied = o.applied?.after as { expiresAt?: number } | undefined;
    const lines: Array<[string, string]> = [
      ['incident', o.incident ? `${o.incident.id} ${o.incident.severity}, score ${o.incident.score}, confidence ${o.incident.confidence}, root ${o.incident.root}` : 'NONE'],
      ['enforcer', live ? `nftables in ${this.lab?.router}` : `DRY-RUN (${dryReason})`],
    ];
    if (live) {
      lines.push(['quarantine', o.applied ? `applied ${new Date(o.applied.at).toISOString()}, expiry ${new Date(applied!.expiresAt!).toISOString()}` : 'NOT APPLIED']);
      lines.push(['rollback', o.released ? `${o.released.action} ${new Date(o.released.at).toISOString()} (${((o.released.at - applied!.expiresAt!) / 1000).toFixed(1)} s after expiry)` : 'NONE']);
      lines.push(['attacker->victim', `before ${word(o.probes.before)}, during ${word(o.probes.during)}, after ${word(o.probes.after)}`]);
    } else {
      lines.push(['decision', o.dryRun ? `${o.dryRun.reason}` : 'NONE']);
    }
    lines.push(['audit verify', o.ledger ?? 'not run'], ['elasticsearch', o.elasticsearch ?? 'not checked']);
    section('summary');
    for (const [k, v] of lines) process.stdout.write(`  ${k.padEnd(17)} ${v}\n`);
    const cut = !live || (o.probes.before === 'ok' && o.probes.during !== 'ok' && o.probes.after === 'ok');
    const ok = Boolean(o.incident) && cut && (o.ledger ?? '').startsWith('ok') && (live ? Boolean(o.released) : Boolean(o.dryRun));
    process.stdout.write(`\n  RESULT            ${ok ? 'PASS' : 'FAIL'}${live ? '' : ' (dry-run: nothing was contained)'}\n`);
    return ok;
  }

  private async waitFor(done: () => unknown, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) return say(`gave up waiting for ${what} after ${timeoutMs / 1000} s`);
      await sleep(200);
    }
  }

  private async cleanup(): Promise<void> {
    for (const c of this.cleanups.splice(0).reverse()) await c().catch((err) => say(`cleanup: ${(err as Error).message}`));
  }
}

function groundTruth(csv: string, recording: string): z.infer<typeof GroundTruthRow> {
  const dataset = recording.replace(/^.*\//, '').replace(/\.jsonl(\.gz)?$/, '');
  const [header, ...rows] = readFileSync(csv, 'utf8').trim().split('\n');
  const names = header!.split(',');
  const row = rows.map((r) => Object.fromEntries(r.split(',').map((v, i) => [names[i], v]))).find((r) => r.dataset === dataset);
  if (!row) throw new Error(`${csv}: no row for ${dataset}`);
  const parsed = GroundTruthRow.safeParse(row);
  if (!parsed.success) throw new Error(`${csv}: row ${dataset}: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

function detail(r: LedgerRecord): string {
  const after = r.after as { state?: string; expiresAt?: number; step?: string } | null;
  if (r.action.startsWith('quarantine_') && after?.state) return `state ${after.state}, expires ${new Date(after.expiresAt!).toISOString()} — ${r.reason}`;
  return r.reason.length > 160 ? `${r.reason.slice(0, 157)}...` : r.reason;
}

function describeIncident(i: Incident): string {
  const targets = i.entities.filter((e) => e.position !== 'root').map((e) => `${e.name ?? e.key} (${e.ip ?? '?'})`);
  return `  ${i.id}  ${i.severity.toUpperCase()}  score ${i.score}  confidence ${i.confidence}\n  root ${i.root}, targets ${targets.join(', ')}, techniques ${i.techniques.join(', ')}\n  ${i.summary}\n`;
}

/** A few ECS fields of the indexed incident, when present. */
function esSummary(doc: Record<string, unknown>): string {
  const get = (path: string) => path.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), doc);
  const fields = ['@timestamp', 'event.severity', 'event.risk_score', 'source.ip', 'destination.ip', 'threat.technique.id'];
  return fields.map((f) => [f, get(f)] as const).filter(([, v]) => v !== undefined).map(([f, v]) => `${f}=${JSON.stringify(v)}`).join(' ');
}

const word = (r: string | undefined) => (r === undefined ? 'not probed' : r === 'ok' ? 'WORKS' : `DROPPED (${r})`);
const bold = palette(colourOn(process.stdout, process.env)).bold;
const section = (text: string) => process.stdout.write(`\n${bold(`== ${text}`)}\n`);
const say = (text: string) => void process.stdout.write(`  ${text}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
