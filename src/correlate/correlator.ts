import type Redis from 'ioredis';
import type { Batch, Consumer, EachBatchPayload, Kafka, Message, Producer } from '../kafka';
import { CoPartitionedAssigner } from '../assigner';
import type { Config } from '../config';
import { ConsumerSupervisor } from '../consumer-supervisor';
import type { FlowRecorder } from '../flows/recorder';
import { FETCH, handoffTopic, partitionCount, sendInChunks } from '../kafka';
import { deadLetter } from '../ingest/dead-letter';
import { IncidentStore, type StoreItem } from '../incidents/store';
import { decodeStatusRequests } from '../incidents/status-requests';
import { Intake } from '../ingest/intake';
import { StreamHeaderStore } from '../ingest/stream-headers';
import type { Format } from '../normalize/normalizer';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { partitionFor } from '../partition';
import { latestPerIncident } from './coalesce';
import { CorrelationEngine, type Change, type EngineSnapshot } from './engine';
import { StatusBacklog, type Waiting } from './status-backlog';
import { broadcast, decodeHandoff, handoffKey, type Handoff } from './handoff';
import type { StatusRequest } from '../incidents/lifecycle';

/** What a partition's snapshot holds: engine state, the dedup marks, and the offsets it is valid at. */
interface PartitionSnapshot {
  engine: EngineSnapshot;
  /** Per input partition (`topic/partition`), the last applied [offset, index]. */
  applied: Record<string, [number, number]>;
  /** Per topic read, the next offset of this partition to apply. */
  offsets: Record<string, string>;
  /** Status requests still waiting for their incident. */
  backlog?: Waiting[];
}

/** What applying one batch gave. */
interface Applied {
  changes: Change[];
  dead: Message[];
  /** Hop chains handed to other partitions (handoff.ts). */
  handoffs: Message[];
  applied: number;
  duplicates: number;
}

/** This replica's hold on one partition number (of every topic it reads). */
interface Owned {
  applied: Map<string, [number, number]>;
  next: Map<string, string>;
  backlog: StatusBacklog;
}

export const CHANGE_HEADER = 'cordon-change';

export interface CorrelatorDeps {
  kafka: Kafka;
  redis: Redis;
  config: Config;
  log: Logger;
  metrics: Metrics;
  clock?: () => number;
  flows?: FlowRecorder;
}

/**
 * The I/O edge of correlation. Reads the keyed input topics and the events topic (inputs that
 * needed rekeying), admits each record (bad ones to the dead-letter topic), feeds the engine, and
 * publishes incident changes to the incidents topic and the Redis view. Partition p of every topic
 * belongs to one replica; its engine state is snapshotted to Redis with the offsets it is valid
 * at, and those offsets are committed only after the snapshot is written. A replica taking the
 * partition over resumes from the snapshot; records applied twice are dropped by their origin.
 */
export class Correlator {
  readonly engine: CorrelationEngine;
  private handoffsCounted: CorrelationEngine['handoffStats'];
  readonly incidents: IncidentStore;
  private readonly consumer: Consumer;
  private readonly producer: Producer;
  private readonly intake: Intake;
  /** Topic read, and how its records are admitted. */
  private readonly reads: Map<string, { format: Format | 'auto'; origin: 'record' | 'header' }>;
  private readonly owned = new Map<number, Owned>();
  private readonly clock: () => number;
  private partitions = 0;
  private running = false;
  private inFlight: Promise<void> | undefined;
  /** Batches were applied since the last snapshot was queued. */
  private dirty = false;
  private snapshotTimer: NodeJS.Timeout | undefined;
  private readonly supervisor: ConsumerSupervisor;
  private readonly handoffTopic: string;

  constructor(private readonly deps: CorrelatorDeps) {
    const { kafka, config } = deps;
    this.engine = new CorrelationEngine(config.correlate.engine);
    this.handoffsCounted = { ...this.engine.handoffStats };
    this.incidents = new IncidentStore(deps.redis, config.redis.keyPrefix);
    type Read = { format: Format | 'auto'; origin: 'record' | 'header' };
    this.reads = new Map<string, Read>(config.kafka.inputs.filter((i) => i.keyed).map((i) => [i.topic, { format: i.format, origin: 'record' }]));
    this.reads.set(config.kafka.topics.events, { format: 'cordon', origin: 'header' });
    this.handoffTopic = handoffTopic(config);
    this.consumer = kafka.consumer({
      groupId: config.kafka.groups.correlate,
      partitionAssigners: [CoPartitionedAssigner],
      ...FETCH,
    });
    this.supervisor = new ConsumerSupervisor(this.consumer, { name: 'correlate', log: deps.log, metrics: deps.metrics, run: () => this.run() });
    this.producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    this.clock = deps.clock ?? Date.now;
    this.intake = new Intake(config, deps.metrics, deps.log, this.clock, new StreamHeaderStore(deps.redis, config.redis.keyPrefix, deps.log));
  }

  async start(): Promise<void> {
    this.partitions = await partitionCount(this.deps.kafka, this.deps.config.kafka.topics.events);
    const partitions = this.partitions;
    this.engine.shareAcross((key) => partitionFor(key, partitions), (partition) => this.owned.has(partition));
    await this.producer.connect();
    await this.consumer.connect();
    this.consumer.on(this.consumer.events.GROUP_JOIN, ({ payload }) => this.onAssignment(payload.memberAssignment));
    await this.consumer.subscribe({ topics: [...this.reads.keys(), this.deps.config.kafka.topics.lifecycle, this.handoffTopic], fromBeginning: true });
    this.running = true;
    await this.run();
    this.snapshotTimer = setInterval(() => this.snapshotSoon(), Math.max(10, this.deps.config.correlate.snapshotIntervalMs));
    this.snapshotTimer.unref();
  }

  /**
   * Takes no new batch, lets the one in flight finish, snapshots and commits every owned
   * partition while still in the group, then leaves it.
   */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearInterval(this.snapshotTimer);
    await this.inFlight;
    await this.snapshotAll().catch((err) => this.deps.log.error({ err }, 'final snapshot failed'));
    await this.deps.flows?.flush();
    this.supervisor.stop();
    await this.consumer.disconnect();
    await this.producer.disconnect();
  }

  isRunning(): boolean {
    return this.running;
  }

  /** Why its consumer is not consuming (it crashed and is being restarted), or undefined. */
  consumerTrouble(): string | undefined {
    return this.supervisor.trouble;
  }

  private run(): Promise<void> {
    return this.consumer.run({ autoCommit: false, eachBatch: (p) => this.onBatch(p) });
  }

  private onBatch(payload: EachBatchPayload): Promise<void> {
    if (!this.running) return Promise.resolve();
    return this.exclusive(() => this.applyBatch(payload));
  }

  /**
   * Every snapshotIntervalMs, when batches were applied since, a snapshot is queued behind the
   * batch in flight: under load between batches, and after the last batch before a quiet spell
   * too, so a restart replays little and a consumer's lag says what it has really not taken in.
   */
  private snapshotSoon(): void {
    if (!this.running || !this.dirty) return;
    this.dirty = false;
    void this.exclusive(() => this.snapshotAll()).catch((err) => {
      this.dirty = true;
      this.deps.log.warn({ err }, 'snapshot failed; the next one tries again');
    });
  }

  /** Batches and snapshots run one at a time, in the order they come. */
  private exclusive(work: () => Promise<void>): Promise<void> {
    const run = (this.inFlight ?? Promise.resolve()).catch(() => undefined).then(work);
    this.inFlight = run;
    return run;
  }

  private async applyBatch({ batch, heartbeat }: EachBatchPayload): Promise<void> {
    const started = process.hrtime.bigint();
    const { topic, partition } = batch;
    const owned = this.owned.get(partition) ?? (await this.claim(partition));
    await this.intake.restore(batch, this.reads.get(topic)?.format); // a stream's header lines (VPC, Zeek TSV), from Redis
    const { changes, dead, handoffs, applied, duplicates } = this.applyRecords(batch, owned);
    owned.next.set(topic, String(Number(batch.lastOffset()) + 1));
    this.dirty = true;
    try {
      await this.publishDurably(changes, dead, handoffs, heartbeat);
    } catch (err) {
      // Stopping with results unwritten: the partition is left out of the last snapshot.
      this.owned.delete(partition);
      throw err;
    }
    // After the results are durable: a failed heartbeat (a rebalance) can then lose nothing.
    await heartbeat();
    this.record(applied, duplicates, started);
  }

  private applyRecords(batch: Batch, owned: Owned): Applied {
    const { topics } = this.deps.config.kafka;
    const out =
      batch.topic === topics.lifecycle ? this.applyStatusRequests(batch, owned) : batch.topic === this.handoffTopic ? this.applyHandoffs(batch, owned) : this.applyEvents(batch, owned);
    return { ...out, handoffs: this.engine.takeHandoffs().flatMap((h) => this.toHandoffMessages(h)) };
  }

  /** One record on the key's partition, or one on every partition this replica does not read for a broadcast (its engine has it). */
  private toHandoffMessages(h: Handoff): Message[] {
    const key = handoffKey(h);
    const value = JSON.stringify(h);
    const headers = { [CHANGE_HEADER]: h.type };
    const partitions = broadcast(h) ? [...Array(this.partitions).keys()].filter((p) => !this.owned.has(p)) : [partitionFor(key, this.partitions)];
    return partitions.map((partition) => ({ key, partition, value, headers }));
  }

  /**
   * Hand-offs from other partitions' engines (hop chains, bindings): parsed at the edge; one whose
   * key this partition does not own is refused (it would plant state where no snapshot keeps it),
   * unless every partition takes it (a broadcast).
   */
  private applyHandoffs(batch: Batch, owned: Owned): Omit<Applied, 'handoffs'> {
    const changes: Change[] = [];
    const dead: Message[] = [];
    let applied = 0;
    let duplicates = 0;
    for (const m of batch.messages) {
      if (!firstTime(owned.applied, `${batch.topic}/${batch.partition}/${m.offset}/0`)) {
        duplicates++;
        continue;
      }
      const decoded = decodeHandoff(m.value);
      if (decoded.ok && (broadcast(decoded.handoff) || partitionFor(handoffKey(decoded.handoff), this.partitions) === batch.partition)) {
        for (const change of this.engine.applyHandoff(decoded.handoff)) changes.push(change);
        applied++;
        continue;
      }
      const reason = decoded.ok ? `key ${handoffKey(decoded.handoff)} is not owned by partition ${batch.partition}` : decoded.reason;
      dead.push(deadLetter(m, { topic: batch.topic, partition: batch.partition, offset: m.offset, timestamp: m.timestamp }, reason, 'handoff', this.clock()));
    }
    return { changes, dead, applied, duplicates };
  }

  private applyEvents(batch: Batch, owned: Owned): Omit<Applied, 'handoffs'> {
    const read = this.reads.get(batch.topic)!;
    const { admitted, dead } = this.intake.admitBatch(batch, read.format, read.origin);
    const changes: Change[] = [];
    let duplicates = 0;
    for (const { event, origin } of admitted) {
      if (!firstTime(owned.applied, origin)) {
        duplicates++;
        continue;
      }
      for (const change of this.engine.ingest(event)) changes.push(change);
    }
    this.retryBacklog(owned, changes);
    this.deps.flows?.add(admitted.map((a) => a.event));
    return { changes, dead, applied: admitted.length - duplicates, duplicates };
  }

  /** Status changes asked by containment and analysts, applied in order with the evidence. */
  private applyStatusRequests(batch: Batch, owned: Owned): Omit<Applied, 'handoffs'> {
    const { requests, dead } = decodeStatusRequests(batch, this.clock());
    const changes: Change[] = [];
    let duplicates = 0;
    for (const { request, origin } of requests) {
      if (!firstTime(owned.applied, origin)) {
        duplicates++;
        continue;
      }
      if (this.applyStatus(request, changes) === 'unknown') this.wait(owned, request);
    }
    return { changes, dead, applied: requests.length - duplicates, duplicates };
  }

  private applyStatus(request: StatusRequest, changes: Change[]): 'applied' | 'unknown' {
    const result = this.engine.setStatus(request.incident, request.status);
    if (result.outcome === 'unknown') return 'unknown';
    changes.push(...result.changes);
    const level = result.outcome === 'refused' ? 'warn' : 'info';
    this.deps.log[level]({ ...request, outcome: result.outcome, why: 'reason' in result ? result.reason : undefined }, 'status request');
    return 'applied';
  }

  /** The incident is not (yet) rebuilt here: evidence replayed after a restart may bring it back. */
  private wait(owned: Owned, request: StatusRequest): void {
    this.deps.log.info({ ...request }, 'status request waits for its incident');
    for (const dropped of owned.backlog.add(request, this.clock())) this.giveUp(dropped, 'the backlog is full');
  }

  private retryBacklog(owned: Owned, changes: Change[]): void {
    for (const expired of owned.backlog.retry((r) => this.applyStatus(r, changes), this.clock())) this.giveUp(expired, 'its incident never came back');
  }

  private giveUp({ request, since }: Waiting, why: string): void {
    this.deps.log.warn({ ...request, waitedMs: this.clock() - since }, `status request given up: ${why}`);
  }

  /**
   * The batch's records are applied (and marked so): they will not be read again in this process,
   * so their results are written however long it takes. Stopping gives up; the partition is then
   * not snapshotted, and the next owner replays from the last snapshot.
   */
  private async publishDurably(changes: Change[], dead: Message[], handoffs: Message[], heartbeat: () => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.publish(changes, dead, handoffs);
      } catch (err) {
        if (!this.running) throw err;
        const retryInMs = Math.min(5_000, 250 * 2 ** Math.min(attempt - 1, 5));
        this.deps.log.error({ err, attempt, retryInMs }, 'incident changes not written yet; retrying, offsets stay uncommitted');
        await new Promise((r) => setTimeout(r, retryInMs));
        await heartbeat().catch(() => undefined);
      }
    }
  }

  private async publish(all: Change[], dead: Message[], handoffs: Message[]): Promise<void> {
    const { topics } = this.deps.config.kafka;
    const changes = latestPerIncident(all).map(encode);
    const topicMessages = [];
    if (changes.length > 0) topicMessages.push({ topic: topics.incidents, messages: changes.map(toMessage) });
    if (dead.length > 0) topicMessages.push({ topic: topics.dlq, messages: dead });
    if (handoffs.length > 0) topicMessages.push({ topic: this.handoffTopic, messages: handoffs });
    if (topicMessages.length === 0) return;
    await sendInChunks(this.producer, topicMessages);
    await this.incidents.putAll(changes.map((c) => c.item));
    for (const { change } of changes) {
      this.deps.metrics.incidents.inc({ change: change.type });
      this.deps.log.info(describe(change), change.type);
    }
  }

  /** Loads a newly assigned partition's snapshot, if a previous owner left one. */
  private async claim(partition: number): Promise<Owned> {
    const json = await this.deps.redis.get(this.snapshotKey(partition));
    const snap = json ? (JSON.parse(json) as PartitionSnapshot) : undefined;
    if (snap) this.engine.load(snap.engine);
    const owned: Owned = {
      applied: new Map(Object.entries(snap?.applied ?? {})),
      next: new Map(Object.entries(snap?.offsets ?? {})),
      backlog: new StatusBacklog(snap?.backlog ?? []),
    };
    this.owned.set(partition, owned);
    this.deps.log.info({ partition, restored: Boolean(snap), entities: snap?.engine.entities.length ?? 0 }, 'partition claimed');
    return owned;
  }

  /** Forgets the state of partitions this replica no longer owns; their new owner restores it. */
  private onAssignment(assignment: Record<string, number[]>): void {
    const now = new Set(Object.values(assignment).flat());
    this.intake.reset();
    for (const partition of [...this.owned.keys()]) {
      if (now.has(partition)) continue;
      this.engine.forget((key) => partitionFor(key, this.partitions) === partition);
      this.owned.delete(partition);
      this.deps.log.info({ partition }, 'partition released');
    }
  }

  private async snapshotAll(): Promise<void> {
    await this.intake.persist(); // the header lines of the batches committed below
    const commits = [];
    for (const [partition, owned] of this.owned) {
      if (owned.next.size === 0) continue;
      const snap: PartitionSnapshot = {
        engine: this.engine.snapshot((key) => partitionFor(key, this.partitions) === partition),
        applied: Object.fromEntries(owned.applied),
        offsets: Object.fromEntries(owned.next),
        backlog: owned.backlog.toJSON(),
      };
      await this.deps.redis.set(this.snapshotKey(partition), JSON.stringify(snap));
      for (const [topic, offset] of owned.next) commits.push({ topic, partition, offset });
    }
    if (commits.length > 0) await this.consumer.commitOffsets(commits);
    this.deps.metrics.trackedEntities.set(this.engine.size.entities);
  }

  private snapshotKey(partition: number): string {
    return `${this.deps.config.redis.keyPrefix}:correlate:snapshot:${partition}`;
  }

  private record(applied: number, duplicates: number, started: bigint): void {
    const m = this.deps.metrics;
    if (applied > 0) m.correlatedEvents.inc({ result: 'applied' }, applied);
    if (duplicates > 0) m.correlatedEvents.inc({ result: 'duplicate' }, duplicates);
    const stats = this.engine.handoffStats;
    for (const kind of Object.keys(stats) as Array<keyof typeof stats>) {
      const delta = stats[kind] - this.handoffsCounted[kind];
      if (delta > 0) m.correlateHandoffs.inc({ kind }, delta);
    }
    this.handoffsCounted = { ...stats };
    m.batchSeconds.observe({ stage: 'correlate' }, Number(process.hrtime.bigint() - started) / 1e9);
  }
}

/**
 * True the first time an origin (`topic/partition/offset/index`) is seen. Ingest publishes the
 * records of one input partition in order, so a per-input-partition high-water mark suffices.
 */
function firstTime(applied: Map<string, [number, number]>, origin: string): boolean {
  const cut = origin.lastIndexOf('/');
  const cut2 = origin.lastIndexOf('/', cut - 1);
  if (cut2 < 0) return true;
  const source = origin.slice(0, cut2);
  const offset = Number(origin.slice(cut2 + 1, cut));
  const index = Number(origin.slice(cut + 1));
  const last = applied.get(source);
  if (last && (offset < last[0] || (offset === last[0] && index <= last[1]))) return false;
  applied.set(source, [offset, index]);
  return true;
}

interface Encoded {
  change: Change;
  item: StoreItem;
}

/** Each change is encoded once, for the topic and for the store alike. */
function encode(change: Change): Encoded {
  if (change.type === 'policy_gap') return { change, item: { kind: 'policy_gap', id: change.finding.id, json: JSON.stringify(change.finding) } };
  const i = change.incident;
  return { change, item: { kind: 'incident', id: i.id, version: i.version, lastSeen: i.lastSeen, json: JSON.stringify(i) } };
}

function toMessage({ change, item }: Encoded): Message {
  return { key: item.id, value: item.json, headers: { [CHANGE_HEADER]: change.type } };
}

function describe(change: Change): object {
  if (change.type === 'policy_gap') return { finding: change.finding.id, summary: change.finding.summary };
  const i = change.incident;
  return { incident: i.id, severity: i.severity, score: i.score, root: i.root, summary: i.summary };
}
