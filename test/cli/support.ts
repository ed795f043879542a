import { run } from '../../src/cli/main';
import type { Stream, Terminal } from '../../src/cli/terminal';

export interface Captured extends Stream {
  text: string;
}

export function captured(isTTY = false): Captured {
  const s: Captured = { text: '', isTTY, write: (t: string) => void (s.text += t) };
  return s;
}

/** Runs `cordon ...args` in this process on captured streams; `env` is all the environment the command sees. */
export async function cordonIn(args: string[], opts: { env?: Record<string, string>; tty?: boolean } = {}): Promise<{ out: string; err: string; code: number }> {
  const term: Terminal & { out: Captured; err: Captured } = { out: captured(opts.tty), err: captured(opts.tty), env: opts.env ?? {} };
  const code = await run(['node', 'cordon', ...args], term);
  return { out: term.out.text, err: term.err.text, code };
}
