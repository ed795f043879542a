import type { KeyObject } from 'node:crypto';
import type { Logger } from '../logger';
import type { ChainHead } from './chain';
import { signCheckpoint, type Checkpoint } from './checkpoint';
import type { CheckpointStore } from './checkpoint-stores';
import type { LedgerAction, LedgerRecord } from './records';

/** The records that change what is contained: each is checkpointed as soon as the broker has it. */
export const CONTAINMENT_CHANGES: ReadonlySet<LedgerAction> = new Set(['quarantine_applied', 'quarantine_extended', 'quarantine_released', 'quarantine_expired']);

/** The part of the ledger writer the checkpointer reads. */
export interface CheckpointedLedger {
  readonly position: ChainHead & { offset: string };
  onAppended(listener: (record: LedgerRecord, offset: string) => void): () => void;
}

export interface CheckpointerOptions {
  topic: string;
  key: KeyObject;
  store: CheckpointStore;
  intervalMs: number;
  log: Logger;
  clock?: () => number;
  /** Told the outcome of every write (a metric). */
  onOutcome?: (outcome: 'written' | 'failed') => void;
}

/**
 * Writes signed checkpoints of the writer's head to the store: at start, every `intervalMs` when
 * the head moved since the last one, after each containment change, and at stop. Writes are serialized; a
 * failed one is logged and kept in `trouble` (the next one tries again), it never fails an append.
 */
export class Checkpointer {
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private ledger: CheckpointedLedger | undefined;
  private tail: Promise<void> = Promise.resolve();
  private lastSeq = 0;
  private trouble_: string | undefined;
  private readonly clock: () => number;
  readonly written: Checkpoint[] = [];

  constructor(private readonly options: CheckpointerOptions) {
    this.clock = options.clock ?? Date.now;
  }

  /** Why the last checkpoint could not be written, until one is. */
  get trouble(): string | undefined {
    return this.trouble_;
  }

  async start(ledger: CheckpointedLedger): Promise<void> {
    this.ledger = ledger;
    this.unsubscribe = ledger.onAppended((record, offset) => {
      if (CONTAINMENT_CHANGES.has(record.action)) void this.checkpoint({ seq: record.seq, hash: record.hash, offset });
    });
    this.timer = setInterval(() => {
      const at = ledger.position;
      if (at.seq > this.lastSeq) void this.checkpoint(at);
    }, this.options.intervalMs);
    this.timer.unref();
    await this.checkpoint(ledger.position);
  }

  /** Checkpoints the head once more (when it moved), then stops. */
  async stop(): Promise<void> {
    this.unsubscribe?.();
    if (this.timer) clearInterval(this.timer);
    if (this.ledger) await this.checkpoint(this.ledger.position);
    await this.tail;
  }

  /** Signs and stores this head (nothing for an empty ledger or a seq already checkpointed). */
  checkpoint(head: ChainHead & { offset: string }): Promise<void> {
    const run = this.tail.then(() => this.write(head));
    this.tail = run;
    return run;
  }

  private async write(head: ChainHead & { offset: string }): Promise<void> {
    if (head.seq === 0 || head.seq <= this.lastSeq) return;
    const { topic, key, store, log } = this.options;
    const checkpoint = signCheckpoint({ topic, partition: 0, offset: head.offset, seq: head.seq, head: head.hash, at: this.clock() }, key);
    try {
      await store.append(checkpoint);
      this.lastSeq = head.seq;
      this.trouble_ = undefined;
      this.written.push(checkpoint);
      if (this.written.length > 100) this.written.shift();
      this.options.onOutcome?.('written');
    } catch (err) {
      this.options.onOutcome?.('failed');
      this.trouble_ = `checkpoint of seq ${head.seq} to ${store.describe} failed: ${(err as Error).message}`;
      log.error({ err, seq: head.seq, store: store.describe }, 'ledger checkpoint not written; the next one tries again');
    }
  }
}
