import { randomUUID } from 'node:crypto';
import type Redis from 'ioredis';
import type { Consumer, EachBatchPayload, Kafka } from '../kafka';
import { ConsumerSupervisor } from '../consumer-supervisor';
import { FETCH } from '../kafka';
import { EpochFence, fenceHeaders } from './fence';
import { LedgerRecord, LeasePayload, isQuarantineAction } from './records';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';

/**
 * The ledger by incident, for the console: a tail of the ledger topic that files every record
 * under the incidents it concerns, in Redis.
 *
 *   <prefix>:ledger:by-incident:<incidentId>   zset   record JSON (as on the topic) scored by seq
 *   <prefix>:ledger:by-incident:next           string the next ledger offset to index
 *   <prefix>:ledger:by-incident:fence          string the ledger's fence (fence.ts) at that offset
 *
 * Fence markers and fenced late writes of replaced writers are not records: they are not filed.
 * Every replica may run one: a record is filed under the same member and score by all of them, so
 * indexing twice changes nothing, and a restart resumes from `next` (or from the start of the
 * topic when Redis lost it). Reading an incident's records is one ZRANGE, however long the ledger.
 */
export class LedgerIndex {
  private consumer: Consumer | undefined;
  private supervisor: ConsumerSupervisor | undefined;
  private running = false;
  private fence = new EpochFence();

  constructor(
    private readonly deps: { kafka: Kafka; redis: Redis; topic: string; prefix: string; log: Logger; metrics?: Metrics },
  ) {}

  private get nextKey(): string {
    return `${this.deps.prefix}:ledger:by-incident:next`;
  }

  private get fenceKey(): string {
    return `${this.deps.prefix}:ledger:by-incident:fence`;
  }

  private incidentKey(id: string): string {
    return `${this.deps.prefix}:ledger:by-incident:${id}`;
  }

  async start(): Promise<void> {
    const { kafka, topic, redis } = this.deps;
    const consumer = kafka.consumer({ groupId: `cordon-ledger-index-${randomUUID()}`, ...FETCH, maxWaitTimeInMs: 500 });
    this.consumer = consumer;
    // Run again after a crash: from `next` again, since this group commits nothing.
    const run = async () => {
      await consumer.run({ autoCommit: false, eachBatch: (p) => this.onBatch(p) });
      const [next, fence] = await redis.mget(this.nextKey, this.fenceKey);
      const resume = next && /^\d+$/.test(next) && next !== '0';
      this.fence = new EpochFence(resume && fence && /^\d+$/.test(fence) ? Number(fence) : 0);
      if (resume) consumer.seek({ topic, partition: 0, offset: next });
    };
    this.supervisor = new ConsumerSupervisor(consumer, { name: 'ledger-index', log: this.deps.log, ...(this.deps.metrics && { metrics: this.deps.metrics }), run });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await run();
    this.running = true;
  }

  async stop(): Promise<void> {
    this.running = false;
    this.supervisor?.stop();
    await this.consumer?.disconnect();
  }

  /** Why its consumer is not consuming (it crashed and is being restarted), or undefined. */
  consumerTrouble(): string | undefined {
    return this.supervisor?.trouble;
  }

  isRunning(): boolean {
    return this.running;
  }

  /** The records of one incident, oldest first. */
  async forIncident(id: string, limit = 1000): Promise<LedgerRecord[]> {
    const members = await this.deps.redis.zrange(this.incidentKey(id), -limit, -1);
    return members.map((m) => JSON.parse(m) as LedgerRecord);
  }

  private async onBatch({ batch, heartbeat }: EachBatchPayload): Promise<void> {
    const pipeline = this.deps.redis.pipeline();
    let filed = 0;
    for (const m of batch.messages) {
      if (this.fence.admit(fenceHeaders(m.headers)) !== 'record') continue;
      const text = m.value?.toString() ?? '';
      const parsed = parseRecord(text);
      if (!parsed) {
        this.deps.log.warn({ offset: m.offset, topic: batch.topic }, 'ledger index: a record that does not parse is skipped (run cordon audit verify)');
        continue;
      }
      for (const id of incidentsOf(parsed)) {
        pipeline.zadd(this.incidentKey(id), parsed.seq, text);
        filed++;
      }
    }
    pipeline.eval(ADVANCE, 2, this.nextKey, this.fenceKey, String(Number(batch.lastOffset()) + 1), String(this.fence.epoch));
    const results = await pipeline.exec();
    const failed = results?.find(([err]) => err);
    if (failed) throw failed[0];
    await heartbeat();
    this.deps.log.debug({ records: batch.messages.length, filed }, 'ledger indexed');
  }
}

/** Moves `next` forward (never back), and the fence with it. KEYS: next, fence. ARGV: offset, epoch. */
const ADVANCE = `
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[2]) end
return 1
`;

function parseRecord(text: string): LedgerRecord | undefined {
  try {
    const parsed = LedgerRecord.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The incidents a record concerns: the one it names, and for a quarantine record every holder of
 * the lease before and after it (an expiry names no incident, but it ends the holders' quarantine).
 */
export function incidentsOf(record: LedgerRecord): string[] {
  const ids = new Set<string>();
  if (record.incidentId) ids.add(record.incidentId);
  if (isQuarantineAction(record.action)) {
    for (const side of [record.before, record.after]) {
      const lease = LeasePayload.safeParse(side);
      if (lease.success) for (const h of lease.data.holders) ids.add(h);
    }
  }
  return [...ids];
}
