/** Where a command writes: stdout for its output, stderr for progress and errors. Tests pass their own. */
export interface Stream {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface Terminal {
  out: Stream;
  err: Stream;
  env: Readonly<Record<string, string | undefined>>;
}

export function processTerminal(): Terminal {
  return { out: process.stdout, err: process.stderr, env: process.env };
}

/**
 * Whether to colour what goes to `stream`: NO_COLOR (any non-empty value, no-color.org) turns it
 * off, then FORCE_COLOR turns it on (off when "0" or "false"), else only a TTY gets colour.
 */
export function colourOn(stream: Stream, env: Terminal['env']): boolean {
  if (env.NO_COLOR) return false;
  const force = env.FORCE_COLOR;
  if (force !== undefined) return force !== '0' && force !== 'false';
  return stream.isTTY === true && env.TERM !== 'dumb';
}

export interface Palette {
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
}

const sgr = (open: number, close: number) => (text: string) => `\x1b[${open}m${text}\x1b[${close}m`;
const plain = (text: string) => text;

export function palette(on: boolean): Palette {
  if (!on) return { bold: plain, dim: plain, red: plain, green: plain, yellow: plain };
  return { bold: sgr(1, 22), dim: sgr(2, 22), red: sgr(31, 39), green: sgr(32, 39), yellow: sgr(33, 39) };
}

/** The palette for one of the terminal's streams. */
export function paletteFor(term: Terminal, stream: 'out' | 'err' = 'out'): Palette {
  return palette(colourOn(term[stream], term.env));
}
