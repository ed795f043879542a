import type { z } from 'zod';
import { loadConfig, type Config } from '../config';

/** A usage or input error: the command prints the message alone and exits with `exitCode`. */
export class CliError extends Error {
  override name = 'CliError';
  readonly exitCode: number = 2;
}

/** Validates a command's options with zod; an error names the flag, the value and what was expected. */
export function parseOptions<S extends z.ZodType>(command: string, schema: S, raw: unknown): z.infer<S> {
  const parsed = schema.safeParse(raw, { reportInput: true });
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((i) => {
    const flag = i.path.length ? `--${String(i.path[0]).replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}` : 'arguments';
    return `  ${flag}${i.input !== undefined ? ` = ${JSON.stringify(i.input)}` : ''}: ${i.message}`;
  });
  throw new CliError(`cordon ${command}: invalid arguments:\n${lines.join('\n')}`);
}

export function configFrom(opts: { config?: string }): Config {
  return loadConfig({ file: opts.config });
}
