/**
 * Read-side fencing of the ledger topic. Kafka has no conditional append, so a writer paused
 * between its lock check and its send (SIGSTOP, a long GC, a partition) can still land a record
 * after a newer writer took over. Every message carries its writer's token (`<owner>#<epoch>`),
 * and a writer's first message is a fence marker with its epoch. A message whose epoch is below the
 * highest one seen before it in the log is a fenced late write: every reader skips it, so it
 * changes nothing. Admitted messages therefore have non-decreasing epochs, and the fence after an
 * admitted message is its own epoch.
 */

/** The header every message carries: the writer lock's token (`<owner>#<epoch>`). */
export const WRITER_HEADER = 'cordon-ledger-writer';
/** Set (to `fence`) on a writer's fence marker: a message that raises the fence and is not a record. */
export const KIND_HEADER = 'cordon-ledger-kind';
export const FENCE_KIND = 'fence';

/** The epoch in a writer token (`<owner>#<epoch>`), if it has one. */
export function writerEpoch(token: string | undefined): number | undefined {
  const m = token ? /#(\d+)$/.exec(token) : null;
  return m ? Number(m[1]) : undefined;
}

/** What the fence makes of one message. */
export type Admission = 'record' | 'marker' | 'fenced';

export interface FencedMessage {
  writer?: string;
  marker?: boolean;
}

export class EpochFence {
  private highest: number;

  /** `start`: the fence at the first message read (the epoch of the admitted message before it). */
  constructor(start = 0) {
    this.highest = start;
  }

  /** The highest writer epoch admitted so far. */
  get epoch(): number {
    return this.highest;
  }

  /**
   * A record or marker of an epoch below the fence is fenced. Messages without a writer token
   * (ledgers written before fencing) are admitted and leave the fence where it is.
   */
  admit(message: FencedMessage): Admission {
    const epoch = writerEpoch(message.writer);
    if (epoch !== undefined) {
      if (epoch < this.highest) return 'fenced';
      this.highest = epoch;
    }
    return message.marker ? 'marker' : 'record';
  }
}

/** The headers of a fence marker, and its value (for people reading the topic by hand). */
export function fenceMarker(token: string, at: number): { key: string; value: string; headers: Record<string, string> } {
  return {
    key: FENCE_KIND,
    value: JSON.stringify({ fence: writerEpoch(token), writer: token, at: new Date(at).toISOString() }),
    headers: { [WRITER_HEADER]: token, [KIND_HEADER]: FENCE_KIND },
  };
}

/** The writer token and marker flag of a raw Kafka message's headers. */
export function fenceHeaders(headers: Record<string, Buffer | string | Array<Buffer | string> | undefined> | undefined): FencedMessage {
  const text = (v: Buffer | string | Array<Buffer | string> | undefined) => (v === undefined ? undefined : (Array.isArray(v) ? v[0] : v)?.toString());
  const writer = text(headers?.[WRITER_HEADER]);
  const marker = text(headers?.[KIND_HEADER]) === FENCE_KIND;
  return { ...(writer ? { writer } : {}), ...(marker ? { marker } : {}) };
}
