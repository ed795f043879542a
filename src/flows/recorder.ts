import type { CordonEvent } from '../events';
import { tallyInto, type FlowHistory } from './history';

/**
 * Pending counts past this many fields (the memory they take) are written at once, not at the end
 * of the interval: spoofed peers or ports may put many on few entities, so entities alone do not bound it.
 */
const MAX_PENDING_FIELDS = 200_000;

/**
 * Sums the flows of many consumer batches in memory and writes the sum to the FlowHistory at
 * most every `intervalMs` (and whenever the hour turns), so a flow seen in every batch costs one
 * Redis command an interval instead of one a batch. Counts not yet written when the process dies
 * are lost: the history is the approval's impact preview, a side view, not a record. The bound of
 * distinct flows per entity-hour is the history's, kept in Redis (a flow pending here may already be kept there).
 */
export class FlowRecorder {
  private pending = new Map<string, Map<string, number>>();
  private pendingFields = 0;
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
    this.pendingFields += tallyInto(events, this.pending);
    if (this.pendingFields > MAX_PENDING_FIELDS) void this.flush();
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
      this.pendingFields = 0;
      this.writing = this.writing.then(() => this.history.write(counts, hour));
    }
    return this.writing;
  }
}
