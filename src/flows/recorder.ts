import type { CordonEvent } from '../events';
import { tally, type FlowHistory } from './history';

/** Pending counts past this many entities are written at once, not at the end of the interval. */
const MAX_PENDING_ENTITIES = 50_000;

/**
 * Sums the flows of many consumer batches in memory and writes the sum to the FlowHistory at
 * most every `intervalMs` (and whenever the hour turns), so a flow seen in every batch costs one
 * Redis command an interval instead of one a batch. Counts not yet written when the process dies
 * are lost: the history is the approval's impact preview, a side view, not a record.
 */
export class FlowRecorder {
  private pending = new Map<string, Map<string, number>>();
  private hour = 0;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly history: FlowHistory,
    private readonly intervalMs = 1_000,
  ) {}

  add(events: readonly CordonEvent[]): void {
    const hour = this.history.hour();
    if (hour !== this.hour) void this.flush();
    this.hour = hour;
    tally(events, this.pending);
    if (this.pending.size > MAX_PENDING_ENTITIES) void this.flush();
    else if (this.pending.size > 0) this.timer ??= setTimeout(() => void this.flush(), this.intervalMs);
  }

  /** Writes what is pending; resolves once every write so far is done (FlowHistory.write never throws). */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size > 0) {
      const counts = this.pending;
      const hour = this.hour;
      this.pending = new Map();
      this.writing = this.writing.then(() => this.history.write(counts, hour));
    }
    return this.writing;
  }
}
