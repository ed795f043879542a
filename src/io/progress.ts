/** A one-line progress bar on stderr, drawn only on a terminal and at most ten times a second. */
export class ProgressBar {
  private lastDraw = 0;
  private readonly enabled: boolean;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.enabled = Boolean(stream.isTTY) && total > 1024 * 1024;
  }

  update(done: number, extra = ''): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.lastDraw < 100 && done < this.total) return;
    this.lastDraw = now;
    const ratio = Math.min(1, done / this.total);
    const width = 30;
    const filled = Math.round(ratio * width);
    const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
    this.stream.write(`\r${this.label} [${bar}] ${(ratio * 100).toFixed(0).padStart(3)}% ${extra}`);
  }

  finish(): void {
    if (this.enabled) this.stream.write('\n');
  }
}
