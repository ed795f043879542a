import { hostname } from 'node:os';
import type Redis from 'ioredis';
import type { Fence } from '../enforcer/enforcer';
import type { Admin, Kafka, Producer } from '../kafka';
import type { Logger } from '../logger';
import { LedgerBrokenError } from './audit';
import { canonicalJson } from './canonical';
import { GENESIS, hashRecord, nextRecord, readRecord, type ChainHead } from './chain';
import { LedgerLockLostError, raiseEpoch, WriterLock } from './lock';
import { fenceMarker, WRITER_HEADER, writerEpoch } from './fence';
import { ledgerOffsets, readHead, readLedger, type LedgerMessage } from './reader';
import { catchUp, rebuild, type DropGuard, type RebuildResult, type ReplayTarget } from './rebuild';
import type { LedgerEntry, LedgerRecord } from './records';
import { FencedError, ledgerKeys, QuarantineRegistry } from './registry';

/**
 * The ledger writer: appends hash-chained records to the ledger topic (one partition, infinite
 * retention) and keeps the quarantine registry in Redis in step with it.
 *
 * One writer per chain. `Ledger.open` takes the writer lock (lock.ts) or refuses, and writes a
 * fence marker with its epoch (fence.ts): a replaced writer's late records that land after it are
 * fenced, and skipped by every reader. The head it continues from is the last admitted record on
 * the topic (Redis's copy of the head is the anchor of that read and is cross-checked: when it
 * lags, the registry catches up from the topic). Appends are serialized, so seq has no
 * gaps; each goes out through an idempotent producer with acks from all in-sync replicas, and the
 * registry is updated after the broker's ack. Appends that arrive while one is in flight are sent
 * together (group commit). The topic is the truth: if the registry update fails,
 * the record still stands and the registry catches up before the next append.
 */

export class LedgerStateError extends Error {
  override name = 'LedgerStateError';
}
/** Something other than this writer wrote to the ledger topic. The writer stops appending. */
export class LedgerConflictError extends Error {
  override name = 'LedgerConflictError';
}
/** An append whose outcome is unknown: the record may or may not be in the ledger. */
export class LedgerWriteError extends Error {
  override name = 'LedgerWriteError';
}
export class LedgerClosedError extends Error {
  override name = 'LedgerClosedError';
}
/** The lock's epoch is not above the one the ledger's last record was written with: Redis lost its counter. */
class EpochBehindError extends Error {
  override name = 'EpochBehindError';
  constructor(
    readonly recorded: number,
    readonly held: number,
  ) {
    super(`the ledger's last record was written by epoch ${recorded}, but this writer's lock has epoch ${held}`);
  }
}

export interface LedgerOptions {
  kafka: Kafka;
  redis: Redis;
  /** The ledger topic (config.kafka.topics.ledger). */
  topic: string;
  /** The Redis key prefix (config.redis.keyPrefix). */
  prefix: string;
  log: Logger;
  /** Names this writer in the lock (default `<hostname>:<pid>`). */
  owner?: string;
  lockTtlMs?: number;
  /** How long open() waits for another writer's lock (default 0: refuse at once). */
  lockWaitMs?: number;
  clock?: () => number;
  /**
   * `sync` (default): bring the registry up to the ledger: nothing to do when it is at the topic's
   * head, catch up when it lags, rebuild when it has no head. `rebuild`: always rebuild it.
   */
  startup?: 'sync' | 'rebuild';
  /** Asked before a rebuild swaps in a registry that drops live leases; throwing leaves the registry as it was. */
  dropGuard?: DropGuard;
  /** Called once when this writer finds its lock expired or taken by another writer (it then refuses every append). */
  onLockLost?: (err: LedgerLockLostError) => void;
}

/** What open() did to the registry. After a rebuild, the caller re-schedules `rebuild.reschedule`. */
export type Startup =
  | { registry: 'in-sync' }
  | { registry: 'caught-up'; applied: number }
  | { registry: 'rebuilt'; rebuild: RebuildResult };

type Head = ChainHead & { offset: string };

/** Idempotent, one request in flight: the broker drops a retried duplicate and keeps the order. */
function createProducer(kafka: Kafka): Producer {
  return kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
}
const EMPTY: Head = { ...GENESIS, offset: '-1' };
/** Group commit limits: records and bytes (canonical JSON) per producer send. */
const MAX_BATCH_RECORDS = 200;
const MAX_BATCH_BYTES = 256 * 1024;

interface Waiting {
  entry: LedgerEntry;
  resolve: (record: LedgerRecord) => void;
  reject: (err: unknown) => void;
}

export class Ledger {
  readonly registry: QuarantineRegistry;
  private startup_: Startup = { registry: 'in-sync' };
  private head_: Head = EMPTY;
  /** Where the log ends as this writer knows it: the offset its next message should get. */
  private end = 0n;
  private tail: Promise<unknown> = Promise.resolve();
  private readonly waiting: Waiting[] = [];
  private failed: Error | undefined;
  private needsResync = false;
  private viewDirty = false;
  private closed = false;
  private readonly clock: () => number;
  private readonly log: Logger;
  private readonly appended = new Set<(record: LedgerRecord, offset: string) => void>();

  private constructor(
    private readonly options: LedgerOptions,
    private readonly lock: WriterLock,
    private producer: Producer,
    private readonly admin: Admin,
  ) {
    this.registry = new QuarantineRegistry(options.redis, options.prefix);
    this.clock = options.clock ?? Date.now;
    this.log = options.log.child({ component: 'ledger', topic: options.topic });
  }

  /**
   * Takes the writer lock (LedgerLockedError when another writer holds it), reads the head, syncs the
   * registry. A lock whose epoch is not above the one of the ledger's last record (the epoch counter
   * in Redis started again: Redis lost its data) is released, the counter raised past the recorded
   * epoch, and the lock taken again: fencing tokens keep growing across a loss of Redis.
   */
  static async open(options: LedgerOptions): Promise<Ledger> {
    try {
      return await Ledger.openOnce(options);
    } catch (err) {
      if (!(err instanceof EpochBehindError)) throw err;
      await raiseEpoch(options.redis, options.prefix, err.recorded);
      options.log.warn({ recorded: err.recorded, held: err.held }, `${err.message}: the epoch counter was behind (Redis lost its data?); raised past ${err.recorded} and the lock taken again`);
      return Ledger.openOnce(options);
    }
  }

  private static async openOnce(options: LedgerOptions): Promise<Ledger> {
    const owner = options.owner ?? `${hostname()}:${process.pid}`;
    let ledger: Ledger | undefined;
    const lock = await WriterLock.acquire(options.redis, options.prefix, owner, {
      ttlMs: options.lockTtlMs,
      waitMs: options.lockWaitMs,
      log: options.log,
      onLost: (err) => {
        ledger?.fail(err);
        options.onLockLost?.(err);
      },
    });
    const producer = createProducer(options.kafka);
    const admin = options.kafka.admin();
    ledger = new Ledger(options, lock, producer, admin);
    try {
      await Promise.all([producer.connect(), admin.connect()]);
      await ledger.start(options.startup ?? 'sync');
      return ledger;
    } catch (err) {
      await ledger.shutdown();
      throw err;
    }
  }

  /** What open() did to the registry (after a rebuild: the leases whose expiry to re-schedule). */
  get startup(): Startup {
    return this.startup_;
  }

  /** The last record of the chain as this writer knows it. */
  get head(): ChainHead {
    return { seq: this.head_.seq, hash: this.head_.hash };
  }

  /**
   * Why this writer cannot append now, or undefined when it can: it stopped for good (lock taken
   * by another writer, conflict), or its lock is unconfirmed while Redis does not answer.
   */
  get unwritable(): string | undefined {
    if (this.closed) return 'the ledger is closed';
    if (this.failed) return `the ledger writer stopped appending: ${this.failed.message}`;
    return this.lock.trouble;
  }

  /** The head with the Kafka offset of its record ('-1' for an empty ledger). */
  get position(): ChainHead & { offset: string } {
    return { ...this.head_ };
  }

  /** Calls `listener` after each append the broker acknowledged, in seq order; returns the unsubscribe. */
  onAppended(listener: (record: LedgerRecord, offset: string) => void): () => void {
    this.appended.add(listener);
    return () => this.appended.delete(listener);
  }

  /** The writer lock's fencing token (`<owner>#<epoch>`). */
  get token(): string {
    return this.lock.token;
  }

  /** The writer lock's epoch: it grows with every acquisition, so it orders writers. */
  get epoch(): number {
    return this.lock.epoch;
  }

  /**
   * The fence an enforcer call carries, once the lock is confirmed (and extended) as this writer's;
   * LedgerLockLostError when it is not.
   */
  async fence(): Promise<Fence> {
    try {
      this.usable();
      await this.lock.check();
    } catch (err) {
      this.refused('enforcer call', err);
      throw err;
    }
    return { token: this.lock.token, epoch: this.lock.epoch, lockKey: ledgerKeys(this.options.prefix).lock };
  }

  /**
   * Appends one record and returns it (with its seq and hash) once the broker has acknowledged it.
   * Appends run one at a time in call order. Throws LedgerEntryError for an invalid entry,
   * LedgerLockLostError / LedgerConflictError when this writer may no longer append (it then
   * refuses every later append too), and LedgerWriteError when the outcome is unknown.
   */
  append(entry: LedgerEntry): Promise<LedgerRecord> {
    if (this.closed) return Promise.reject(new LedgerClosedError('the ledger is closed'));
    return new Promise<LedgerRecord>((resolve, reject) => {
      this.waiting.push({ entry, resolve, reject });
      if (this.waiting.length === 1) void this.serialized(() => this.flush());
    });
  }

  /** Rebuilds the registry from the ledger, between appends. */
  rebuild(): Promise<RebuildResult> {
    if (this.closed) return Promise.reject(new LedgerClosedError('the ledger is closed'));
    return this.serialized(async () => {
      this.usable();
      await this.lock.check();
      return this.rebuildRegistry();
    });
  }

  /** Refuses new appends, waits for the ones already asked for, releases the lock and disconnects. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.tail;
    await this.shutdown();
  }

  /**
   * Group commit: the appends that queued up while the previous batch was in flight go out
   * together, in call order, in one checked producer send (one record batch, contiguous offsets).
   * Each caller gets its own record, or its own error; a send whose outcome is unknown fails every
   * append of that batch with LedgerWriteError.
   */
  private async flush(): Promise<void> {
    const batch = this.waiting.splice(0, MAX_BATCH_RECORDS);
    if (this.waiting.length > 0) void this.serialized(() => this.flush());
    if (batch.length === 0) return;
    try {
      await this.appendBatch(batch);
    } catch (err) {
      for (const item of batch) item.reject(err);
    }
  }

  private serialized<T>(work: () => Promise<T>): Promise<T> {
    const run = this.tail.then(work);
    this.tail = run.catch(() => undefined);
    return run;
  }

  private usable(): void {
    if (this.failed) throw this.failed;
  }

  /** A write refused because this writer lost its lock (paused or cut off past the TTL): logged, so late writes show. */
  private refused(write: 'append' | 'enforcer call', err: unknown, batch: Waiting[] = []): void {
    if (!(err instanceof LedgerLockLostError)) return;
    const entries = batch.map(({ entry }) => `${entry.action} ${entry.target}`);
    this.log.warn({ write, token: this.lock.token, ...(entries.length ? { entries } : {}) }, `late write refused (${write}): this writer no longer holds the ledger lock`);
  }

  private fail(err: Error): void {
    if (!this.failed) {
      this.failed = err;
      this.log.error({ err }, 'the ledger writer stopped appending');
    }
  }

  private async appendBatch(batch: Waiting[]): Promise<void> {
    try {
      this.usable();
      await this.lock.check();
    } catch (err) {
      if (err instanceof LedgerLockLostError) this.fail(err);
      this.refused('append', err, batch);
      throw err;
    }
    if (this.needsResync) await this.resync();
    if (this.viewDirty) await this.syncRegistry();

    // Optimistic check that nobody else wrote since our last message: what did must be fenced
    // late writes of replaced writers (a writer that lost its lock without knowing).
    const { high } = await ledgerOffsets(this.admin, this.options.topic);
    if (high !== this.end) await this.passLateWrites(high, batch);

    const ready = this.chainBatch(batch);
    if (ready.length === 0) return;
    const first = ready[0]!.record;
    const last = ready[ready.length - 1]!.record;
    let offset: string;
    try {
      offset = await this.send(ready.map(({ record, value }) => ({ key: record.target, value, headers: { [WRITER_HEADER]: this.lock.token } })));
    } catch (err) {
      // The producer's sequence state is now unknown: a record that landed after all would make the
      // broker take the next send, with the same producer sequence, for its duplicate. A new
      // producer (new producer id) and a head re-read from the topic come first.
      this.needsResync = true;
      const what = ready.length === 1 ? `seq ${first.seq} (${first.action} ${first.target})` : `seq ${first.seq}..${last.seq} (${ready.length} records)`;
      const error = new LedgerWriteError(
        `append of ${what} failed; it may or may not be in the ledger: the writer re-reads the head before the next append`,
        { cause: err },
      );
      for (const { item } of ready) item.reject(error);
      return;
    }
    const base = BigInt(offset);
    if (base !== this.end) await this.passLateWrites(base, batch);
    this.end = base + BigInt(ready.length);
    for (const [i, { item, record }] of ready.entries()) {
      const at = (base + BigInt(i)).toString();
      this.head_ = { seq: record.seq, hash: record.hash, offset: at };
      await this.updateRegistry(record, at);
      item.resolve(record);
      for (const listener of this.appended) listener(record, at);
    }
  }

  /** One producer send to the ledger partition, acknowledged by all in-sync replicas: the first offset. */
  private async send(messages: Array<{ key: string; value: string; headers: Record<string, string> }>): Promise<string> {
    const [meta] = await this.producer.send({ topic: this.options.topic, acks: -1, messages: messages.map((m) => ({ partition: 0, ...m })) });
    const at = meta?.baseOffset ?? meta?.offset;
    if (at === undefined || !/^\d+$/.test(at)) throw new Error('the broker returned no offset for the record');
    return at;
  }

  /**
   * The messages between where this writer's log ended and `until` that it did not write. Late
   * writes of a lower epoch are fenced (readers skip them): the writer goes on after them. A
   * message of a higher epoch means a newer writer took over: this one is fenced in turn and stops
   * (its records after that one are skipped by readers too). Anything else is a conflict.
   */
  private async passLateWrites(until: bigint, batch: Waiting[]): Promise<void> {
    const from = this.end;
    let late = 0;
    for await (const m of readLedger(this.options.kafka, this.options.topic, { from, until, raw: true })) {
      const epoch = writerEpoch(m.writer);
      if (epoch !== undefined && epoch < this.lock.epoch) late++;
      else this.stopFor(m, epoch, batch);
    }
    this.end = until;
    this.log.warn({ from: from.toString(), until: until.toString(), late }, `${late} fenced late write(s) of a replaced writer in the ledger topic; readers skip them`);
  }

  private stopFor(m: LedgerMessage, epoch: number | undefined, batch: Waiting[]): never {
    if (epoch !== undefined && epoch > this.lock.epoch) {
      const err = new LedgerLockLostError(`a newer ledger writer (${m.writer}) wrote at offset ${m.offset}: this writer (${this.lock.token}) is fenced and stops appending`);
      this.fail(err);
      this.refused('append', err, batch);
      throw err;
    }
    const err = new LedgerConflictError(
      `the ledger topic holds a message at offset ${m.offset} (writer ${m.writer ?? 'none'}) that this writer (${this.lock.token}) did not write: ` +
        'something else wrote to it; this writer stops appending (run cordon audit verify)',
    );
    this.fail(err);
    throw err;
  }

  /**
   * Chains the batch's entries onto the head in order. An invalid entry is refused on its own; the
   * entries past the size limit go back to the front of the queue for the next batch.
   */
  private chainBatch(batch: Waiting[]): Array<{ item: Waiting; record: LedgerRecord; value: string }> {
    const ready: Array<{ item: Waiting; record: LedgerRecord; value: string }> = [];
    let head: ChainHead = this.head_;
    let bytes = 0;
    for (const [i, item] of batch.entries()) {
      let record: LedgerRecord;
      try {
        record = nextRecord(head, item.entry, this.clock());
      } catch (err) {
        item.reject(err);
        continue;
      }
      const value = canonicalJson(record);
      bytes += Buffer.byteLength(value);
      if (ready.length > 0 && bytes > MAX_BATCH_BYTES) {
        const rest = batch.slice(i);
        const reschedule = this.waiting.length === 0;
        this.waiting.unshift(...rest);
        if (reschedule) void this.serialized(() => this.flush());
        break;
      }
      ready.push({ item, record, value });
      head = { seq: record.seq, hash: record.hash };
    }
    return ready;
  }

  /** After the ack: apply the record to the registry. A failure here does not fail the append. */
  private async updateRegistry(record: LedgerRecord, offset: string): Promise<void> {
    try {
      await this.applyToRegistry(record, offset);
    } catch (err) {
      if (err instanceof FencedError || err instanceof LedgerLockLostError) {
        this.fail(new LedgerLockLostError(`record seq ${record.seq} is in the ledger, but this writer lost its lock: ${err.message}`));
        return;
      }
      this.viewDirty = true;
      this.log.error({ err, seq: record.seq }, 'registry update failed; it catches up from the ledger before the next append');
    }
  }

  /**
   * A lock that lapsed during a Redis outage fences the update that was waiting on it; when the
   * lock is taken back with the same epoch (check), the update is this writer's to make again.
   */
  private async applyToRegistry(record: LedgerRecord, offset: string): Promise<void> {
    const apply = async () => {
      const outcome = await this.registry.apply(this.lock.token, record, offset);
      if (outcome === 'lagging') await this.syncRegistry();
    };
    try {
      await apply();
    } catch (err) {
      if (!(err instanceof FencedError)) throw err;
      await this.lock.check();
      await apply();
    }
  }

  private async start(mode: 'sync' | 'rebuild'): Promise<void> {
    const anchor = await this.registry.head().catch(() => undefined);
    const { epoch } = await this.readTopicHead(anchor);
    if (epoch >= this.lock.epoch) throw new EpochBehindError(epoch, this.lock.epoch);
    await this.send([fenceMarker(this.lock.token, this.clock())]);
    this.notReplaced(await this.readTopicHead(this.head_.seq > 0 ? this.head_ : anchor));
    if (mode === 'rebuild') this.startup_ = { registry: 'rebuilt', rebuild: await this.rebuildRegistry() };
    else this.startup_ = await this.syncRegistry();
    this.log.info({ seq: this.head_.seq, hash: this.head_.hash, registry: this.startup_.registry }, 'ledger writer ready');
  }

  /**
   * Reads the last admitted record on the topic (from `anchor`, a record known admitted) and makes
   * it this writer's head, with the log's end. Returns the fence at the end of the log; a fence
   * above this writer's own epoch means a newer writer took over.
   */
  private async readTopicHead(anchor?: Head): Promise<{ epoch: number }> {
    const { kafka, topic } = this.options;
    const { message, offsets, epoch } = await readHead(kafka, topic, anchor);
    this.head_ = this.headOf(message, offsets.low);
    this.end = offsets.high;
    return { epoch };
  }

  /** A fence above this writer's epoch at the end of the log: a newer writer took over. */
  private notReplaced({ epoch }: { epoch: number }): void {
    if (epoch <= this.lock.epoch) return;
    const err = new LedgerLockLostError(`a newer ledger writer (epoch ${epoch}) wrote to the ledger: this writer (${this.lock.token}) is fenced and stops appending`);
    this.fail(err);
    throw err;
  }

  private headOf(message: LedgerMessage | undefined, low: bigint): Head {
    const { topic } = this.options;
    if (!message) {
      if (low > 0n) throw new LedgerStateError(`the ledger topic ${topic} starts at offset ${low} and holds no records: they were deleted; the chain cannot be continued`);
      return EMPTY;
    }
    const read = readRecord(message.value ?? 'null');
    if (!read.ok) throw new LedgerStateError(`the last record of ${topic} (offset ${message.offset}) is an ${read.reason}; run cordon audit verify`);
    if (hashRecord(read.raw) !== read.record.hash) {
      throw new LedgerStateError(`the last record of ${topic} (offset ${message.offset}, seq ${read.record.seq}) does not match its hash; run cordon audit verify`);
    }
    return { seq: read.record.seq, hash: read.record.hash, offset: message.offset };
  }

  /** After an append whose outcome is unknown: the topic says what the head is. */
  private async resync(): Promise<void> {
    await this.producer.disconnect().catch(() => undefined);
    this.producer = createProducer(this.options.kafka);
    await this.producer.connect();
    const before = this.head_.seq;
    this.notReplaced(await this.readTopicHead(this.head_.seq > 0 ? this.head_ : undefined));
    this.needsResync = false;
    this.log.warn({ before, after: this.head_.seq }, 'ledger head re-read from the topic after a failed append');
    await this.syncRegistry();
  }

  private replayTarget(): ReplayTarget {
    return { kafka: this.options.kafka, topic: this.options.topic, registry: this.registry, token: this.lock.token, dropGuard: this.options.dropGuard };
  }

  /** Brings the registry to this writer's head: nothing, catch up, or rebuild (no head in Redis). */
  private async syncRegistry(): Promise<Startup> {
    const stored = await this.registry.head();
    const head = this.head_;
    const hint = 'run cordon audit verify, then cordon audit rebuild';
    let outcome: Startup;
    if (!stored) {
      outcome = { registry: 'rebuilt', rebuild: await this.rebuildRegistry() };
    } else if (stored.seq === head.seq) {
      if (stored.hash !== head.hash) {
        throw new LedgerStateError(`the registry's head (seq ${stored.seq}) has another hash than the ledger's record ${head.seq}: the registry belongs to another chain; ${hint}`);
      }
      outcome = { registry: 'in-sync' };
    } else if (stored.seq > head.seq) {
      throw new LedgerStateError(
        `the registry's head (seq ${stored.seq}) is ahead of the ledger topic (seq ${head.seq}): the topic lost records, or the registry belongs to another ledger; ${hint}`,
      );
    } else {
      try {
        const applied = await catchUp(this.replayTarget(), stored);
        this.log.warn({ from: stored.seq, to: head.seq, applied }, 'registry caught up with the ledger');
        outcome = { registry: 'caught-up', applied };
      } catch (err) {
        if (err instanceof LedgerBrokenError) throw new LedgerStateError(`${err.message}; ${hint}`, { cause: err });
        throw err;
      }
      const now = await this.registry.head();
      if (now?.seq !== head.seq || now.hash !== head.hash) {
        throw new LedgerStateError(`after catching up, the registry is at seq ${now?.seq ?? 0}, not at the ledger's head ${head.seq}; ${hint}`);
      }
    }
    this.viewDirty = false;
    return outcome;
  }

  private async rebuildRegistry(): Promise<RebuildResult> {
    const result = await rebuild(this.replayTarget());
    if (result.head.seq !== this.head_.seq || result.head.hash !== this.head_.hash) {
      const err = new LedgerConflictError(`the ledger moved from seq ${this.head_.seq} to ${result.head.seq} during a rebuild: something else wrote to it`);
      this.fail(err);
      throw err;
    }
    this.viewDirty = false;
    this.log.info({ records: result.records, leases: result.leases, byState: result.byState }, 'registry rebuilt from the ledger');
    return result;
  }

  private async shutdown(): Promise<void> {
    await Promise.allSettled([this.producer.disconnect(), this.admin.disconnect()]);
    await this.lock.release();
  }
}
