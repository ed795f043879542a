import type Redis from 'ioredis';
import { z } from 'zod';
import { changesChannel } from '../incidents/store';
import type { Logger } from '../logger';

/**
 * What changed, for the console's live updates: a hint to fetch again, never the data itself (the
 * stream's reader sees only what its role may read through the API).
 *   incident     the incident store took new versions (published on `<prefix>:changes` by its writer, any replica)
 *   containment  the ledger grew: a quarantine, approval, playbook step or incident decision was recorded
 *                (the ledger index's `next` offset, shared by every replica, moved)
 * One feed a replica, whatever the number of streams: one subscriber connection and one GET a
 * second, only while at least one stream is open.
 */
export type Change = { type: 'incident'; ids: string[]; count: number } | { type: 'containment'; seq: number };
export type ChangeListener = (change: Change) => void;

/** The message the incident store publishes: Redis is shared, so it is input like any other. */
const IncidentMessage = z.object({ ids: z.array(z.string().max(1024)).max(100), count: z.number().int().min(0) });

export interface ChangeFeedDeps {
  redis: Redis;
  prefix: string;
  log: Logger;
  /** How often the ledger offset is read; default 1 s. */
  pollMs?: number;
}

export class ChangeFeed {
  private readonly listeners = new Set<ChangeListener>();
  private subscriber: Redis | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ledgerNext: number | undefined;

  constructor(private readonly deps: ChangeFeedDeps) {}

  /** Starts the feed with its first listener, stops it with its last; returns the unsubscribe. */
  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    if (this.listeners.size === 1) this.start();
    return () => {
      if (!this.listeners.delete(listener)) return;
      if (this.listeners.size === 0) this.stop();
    };
  }

  get size(): number {
    return this.listeners.size;
  }

  private start(): void {
    const channel = changesChannel(this.deps.prefix);
    const sub = this.deps.redis.duplicate({ lazyConnect: false, maxRetriesPerRequest: null });
    this.subscriber = sub;
    sub.on('error', (err) => this.deps.log.warn({ err: err.message }, 'change feed: Redis subscriber error'));
    sub.on('message', (_channel: string, message: string) => this.onIncidents(message));
    void sub.subscribe(channel).catch((err: Error) => this.deps.log.warn({ err: err.message }, 'change feed: cannot subscribe'));
    this.ledgerNext = undefined;
    void this.pollLedger();
    this.timer = setInterval(() => void this.pollLedger(), this.deps.pollMs ?? 1_000);
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.subscriber?.disconnect();
    this.subscriber = undefined;
  }

  private onIncidents(message: string): void {
    let json: unknown;
    try {
      json = JSON.parse(message);
    } catch {
      return;
    }
    const parsed = IncidentMessage.safeParse(json);
    if (parsed.success) this.emit({ type: 'incident', ...parsed.data });
  }

  private async pollLedger(): Promise<void> {
    let raw: string | null;
    try {
      raw = await this.deps.redis.get(`${this.deps.prefix}:ledger:by-incident:next`);
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'change feed: cannot read the ledger offset');
      return;
    }
    const next = raw !== null && /^\d{1,15}$/.test(raw) ? Number(raw) : 0;
    const before = this.ledgerNext;
    this.ledgerNext = next;
    if (before !== undefined && next > before) this.emit({ type: 'containment', seq: next - 1 });
  }

  private emit(change: Change): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(change);
      } catch (err) {
        this.deps.log.warn({ err: (err as Error).message }, 'change feed: a listener failed');
      }
    }
  }
}
