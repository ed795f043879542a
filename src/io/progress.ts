/**
 * A one-line progress report on stderr for the long commands (replay, simulate, produce): done/total,
 * records and records/s. Drawn only on a terminal (redrawn in place, at most ten times a second)
 * unless forced; forced off a terminal it writes a plain line at most once a second, and the last
 * state when finished. Silent otherwise, so pipes and logs get nothing.
 */

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface ProgressOptions {
  stream?: ProgressStream;
  /** true: draw even when the stream is no terminal; false: never; unset: only on a terminal. */
  force?: boolean;
  /** What `done` and `total` count. */
  unit?: 'bytes' | 'records';
  now?: () => number;
}

export interface ProgressState {
  label: string;
  done: number;
  total: number;
  unit: 'bytes' | 'records';
  records: number;
  elapsedMs: number;
}

export function progressEnabled(stream: ProgressStream, force?: boolean): boolean {
  return force ?? stream.isTTY === true;
}

export class ProgressBar {
  private lastDraw = -Infinity;
  private readonly enabled: boolean;
  private readonly tty: boolean;
  private readonly stream: ProgressStream;
  private readonly now: () => number;
  private readonly started: number;
  private state: ProgressState;

  constructor(label: string, total: number, opts: ProgressOptions = {}) {
    this.stream = opts.stream ?? process.stderr;
    this.enabled = progressEnabled(this.stream, opts.force);
    this.tty = this.stream.isTTY === true;
    this.now = opts.now ?? Date.now;
    this.started = this.now();
    this.state = { label, done: 0, total, unit: opts.unit ?? 'bytes', records: 0, elapsedMs: 0 };
  }

  /** `done` in the bar's unit; `records` so far (the same as done when the unit is records). */
  update(done: number, records = done): void {
    if (!this.enabled) return;
    const now = this.now();
    this.state = { ...this.state, done, records, elapsedMs: now - this.started };
    if (now - this.lastDraw < (this.tty ? 100 : 1000)) return;
    this.lastDraw = now;
    this.draw();
  }

  finish(): void {
    if (!this.enabled) return;
    this.state = { ...this.state, elapsedMs: this.now() - this.started };
    this.draw();
    if (this.tty) this.stream.write('\n');
  }

  private draw(): void {
    const line = formatProgress(this.state);
    this.stream.write(this.tty ? `\r${line}\x1b[K` : `${line}\n`);
  }
}

const number = new Intl.NumberFormat('en-US');

export function formatProgress(s: ProgressState): string {
  const rate = s.elapsedMs > 0 ? Math.round((s.records * 1000) / s.elapsedMs) : 0;
  const counts = `${number.format(s.records)} records, ${number.format(rate)} records/s`;
  if (s.total <= 0) return `${s.label} ${counts}`;
  const ratio = Math.min(1, s.done / s.total);
  const width = 20;
  const filled = Math.round(ratio * width);
  const amount = s.unit === 'bytes' ? `${mb(s.done)}/${mb(s.total)} MB` : `${number.format(s.done)}/${number.format(s.total)}`;
  return `${s.label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(ratio * 100).toFixed(0).padStart(3)}% ${amount}, ${counts}`;
}

const mb = (bytes: number) => (bytes / 1_048_576).toFixed(1);
