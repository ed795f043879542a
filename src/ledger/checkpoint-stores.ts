import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Client } from '@elastic/elasticsearch';
import type { Config } from '../config';
import type { Logger } from '../logger';
import { createEsClient } from '../siem/es-client';
import { HecSender } from '../siem/splunk-hec';
import { SplunkEnricher, splQuote } from '../siem/splunk-enrich';
import { describeIssues, parseJson } from '../validation';
import { canonicalJson } from './canonical';
import { Checkpoint, CheckpointError, FileCheckpointStore, loadPrivateKey, loadPublicKey } from './checkpoint';
import type { CheckpointStoreConfig, LedgerCheckpointConfig } from './checkpoint-config';
import type { KeyObject } from 'node:crypto';
import { createPublicKey } from 'node:crypto';

/** Where signed checkpoints are kept, outside Kafka and Redis. */
export interface CheckpointStore {
  /** Resolves once the store holds the checkpoint (readable by `list`); throws otherwise. */
  append(checkpoint: Checkpoint): Promise<void>;
  /** Every checkpoint the store holds; one that is not a valid checkpoint throws, naming it. */
  list(): Promise<Checkpoint[]>;
  /** What the store is, for messages: `file /var/lib/cordon/checkpoints.jsonl`. */
  readonly describe: string;
  close?(): Promise<void>;
}

function parseStored(text: string, where: string): Checkpoint {
  const json = parseJson(text);
  if (!json.ok) throw new CheckpointError(`${where}: ${json.reason}`);
  return validStored(json.value, where);
}

function validStored(value: unknown, where: string): Checkpoint {
  const parsed = Checkpoint.safeParse(value);
  if (!parsed.success) throw new CheckpointError(`${where}: not a checkpoint: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/** The document id of a checkpoint: the same checkpoint written twice is one document. */
function checkpointId(c: Checkpoint): string {
  return `${c.topic}.${c.partition}.${c.seq}.${c.at}`;
}

const ES_MAPPING = {
  dynamic: 'strict' as const,
  properties: {
    topic: { type: 'keyword' as const },
    partition: { type: 'integer' as const },
    offset: { type: 'keyword' as const },
    seq: { type: 'long' as const },
    head: { type: 'keyword' as const },
    at: { type: 'date' as const, format: 'epoch_millis' },
    sig: { type: 'keyword' as const, index: false },
  },
};

/** A dedicated Elasticsearch index (strict mapping), one document a checkpoint, refreshed before append returns. */
export class ElasticsearchCheckpointStore implements CheckpointStore {
  private ready: Promise<void> | undefined;

  constructor(
    private readonly client: Client,
    readonly index: string,
  ) {}

  get describe(): string {
    return `elasticsearch index ${this.index}`;
  }

  private ensureIndex(): Promise<void> {
    this.ready ??= (async () => {
      if (await this.client.indices.exists({ index: this.index })) return;
      await this.client.indices
        .create({ index: this.index, settings: { number_of_shards: 1 }, mappings: ES_MAPPING })
        .catch((err: { meta?: { body?: { error?: { type?: string } } } }) => {
          if (err.meta?.body?.error?.type !== 'resource_already_exists_exception') throw err;
        });
    })().catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  async append(checkpoint: Checkpoint): Promise<void> {
    await this.ensureIndex();
    const doc = Checkpoint.parse(checkpoint);
    await this.client.index({ index: this.index, id: checkpointId(doc), document: doc, refresh: 'wait_for' });
  }

  async list(): Promise<Checkpoint[]> {
    if (!(await this.client.indices.exists({ index: this.index }))) return [];
    const out: Checkpoint[] = [];
    let after: (string | number)[] | undefined;
    for (;;) {
      const page = await this.client.search<unknown>({
        index: this.index,
        size: 1000,
        sort: [{ seq: 'asc' }, { at: 'asc' }, { topic: 'asc' }],
        ...(after ? { search_after: after } : {}),
      });
      const hits = page.hits.hits;
      for (const hit of hits) out.push(validStored(hit._source, `${this.describe} document ${hit._id}`));
      if (hits.length < 1000) return out;
      after = hits[hits.length - 1]!.sort as (string | number)[];
    }
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

export interface SplunkCheckpointStoreOptions {
  hec: HecSender;
  search: SplunkEnricher;
  index: string;
  sourcetype: string;
  source: string;
  host: string;
}

/**
 * Checkpoints as HEC events (the canonical JSON of the checkpoint as the event), read back with a
 * oneshot search over all time: `search index=… sourcetype=… earliest=0 | table _raw`.
 */
export class SplunkCheckpointStore implements CheckpointStore {
  constructor(private readonly opts: SplunkCheckpointStoreOptions) {}

  get describe(): string {
    return `splunk index ${this.opts.index} sourcetype ${this.opts.sourcetype}`;
  }

  get query(): string {
    return `search index=${splQuote(this.opts.index)} sourcetype=${splQuote(this.opts.sourcetype)} earliest=0 | table _raw`;
  }

  async append(checkpoint: Checkpoint): Promise<void> {
    const c = Checkpoint.parse(checkpoint);
    const failedBefore = this.opts.hec.counters.failed;
    const { hec, index, sourcetype, source, host } = this.opts;
    hec.send({ time: c.at / 1000, index, sourcetype, source, host, event: JSON.parse(canonicalJson(c)) as Record<string, unknown> });
    await hec.flush();
    if (hec.counters.failed > failedBefore) {
      const last = hec.failures[hec.failures.length - 1];
      throw new CheckpointError(`${this.describe}: Splunk refused the checkpoint at seq ${c.seq}: ${last?.text ?? 'unknown'}`);
    }
  }

  async list(): Promise<Checkpoint[]> {
    const rows = await this.opts.search.oneshot(this.query, 0);
    return rows.map((row, i) => {
      const raw = row._raw;
      if (typeof raw !== 'string') throw new CheckpointError(`${this.describe} result ${i + 1}: no _raw`);
      return parseStored(raw, `${this.describe} result ${i + 1}`);
    });
  }

  async close(): Promise<void> {
    await this.opts.hec.close();
  }
}

/** The store `ledger.checkpoint.store` names, with its connection from the config's elasticsearch / splunk sections. */
export function checkpointStoreFrom(store: CheckpointStoreConfig, config: Config, log: Logger): CheckpointStore {
  if (store.kind === 'file') return Object.assign(new FileCheckpointStore(store.path), { describe: `file ${store.path}` });
  if (store.kind === 'elasticsearch') return new ElasticsearchCheckpointStore(esClient(config.elasticsearch), store.index);
  const s = config.splunk;
  if (!s.token) throw new CheckpointError('ledger.checkpoint.store splunk: splunk.token (the HEC token) is required');
  const search = s.search;
  if (!search.token && !(search.username && search.password)) {
    throw new CheckpointError('ledger.checkpoint.store splunk: reading checkpoints back needs splunk.search.token or splunk.search.username and password');
  }
  const tls = { ca: s.tls.caFile ? readFileSync(s.tls.caFile) : undefined, rejectUnauthorized: s.tls.rejectUnauthorized };
  const hec = new HecSender({
    url: s.hecUrl,
    token: s.token,
    gzip: s.gzip,
    batch: { ...s.batch, maxLatencyMs: 0 },
    ack: s.ack,
    retry: s.retry,
    requestTimeoutMs: s.requestTimeoutMs,
    tls,
    log: log.child({ component: 'checkpoint-store' }),
  });
  return new SplunkCheckpointStore({
    hec,
    search: new SplunkEnricher(search),
    index: store.index ?? s.index,
    sourcetype: store.sourcetype,
    source: s.source,
    host: s.host ?? hostname(),
  });
}

function esClient(es: Config['elasticsearch']): Client {
  const auth = es.auth ? ('apiKey' in es.auth ? { apiKey: es.auth.apiKey } : { username: es.auth.username, password: es.auth.password }) : undefined;
  return createEsClient({
    node: es.url,
    auth,
    maxRetries: 2,
    requestTimeout: es.requestTimeoutMs,
    tls: es.url.startsWith('https:') ? { ca: es.tls.caFile ? readFileSync(es.tls.caFile) : undefined, rejectUnauthorized: es.tls.rejectUnauthorized } : undefined,
  });
}

/** The signing key: the PEM from CORDON_LEDGER_CHECKPOINT_KEY or privateKeyFile; undefined when neither is set. */
export function checkpointSigningKey(c: LedgerCheckpointConfig): KeyObject | undefined {
  if (c.privateKey) return loadPrivateKey(c.privateKey);
  if (c.privateKeyFile) return loadPrivateKey(readKeyFile(c.privateKeyFile, 'ledger.checkpoint.privateKeyFile'));
  return undefined;
}

/** The keys `audit verify` accepts: publicKeyFiles, or else the signing key's public half. */
export function checkpointVerifyKeys(c: LedgerCheckpointConfig): KeyObject[] {
  if (c.publicKeyFiles.length > 0) return c.publicKeyFiles.map((f) => loadPublicKey(readKeyFile(f, 'ledger.checkpoint.publicKeyFiles')));
  const signing = checkpointSigningKey(c);
  return signing ? [createPublicKey(signing)] : [];
}

function readKeyFile(file: string, key: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new CheckpointError(`${key}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
