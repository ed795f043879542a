import { Command, CommanderError } from 'commander';
import pkg from '../../package.json';
import { ConfigError } from '../config';
import { CliError } from './options';
import { registerAudit } from './audit';
import { registerDecide } from './decide';
import { registerIncidents } from './incidents';
import { registerPlaybook } from './playbook';
import { registerProduce } from './produce';
import { registerQuarantines } from './quarantines';
import { registerReplay } from './replay';
import { registerRun } from './run';
import { registerSimulate } from './simulate';
import { registerDemo } from './demo';
import { processTerminal, type Terminal } from './terminal';

/** The `cordon` command. Each capability registers its subcommand here. */
export function buildProgram(term: Terminal = processTerminal()): Command {
  const program = new Command('cordon')
    .description('Cordon: automated, bounded and audited containment of lateral movement')
    .version(`${pkg.version} (node ${process.version})`)
    .showHelpAfterError()
    .configureOutput({ writeOut: (s) => void term.out.write(s), writeErr: (s) => void term.err.write(s) })
    .exitOverride();
  registerRun(program);
  registerProduce(program, term);
  registerReplay(program, term);
  registerIncidents(program, term);
  registerPlaybook(program, term);
  registerAudit(program, term);
  registerSimulate(program, term);
  registerDemo(program);
  registerDecide(program, term);
  registerQuarantines(program, term);
  return program;
}

/** Runs one `cordon` command line; resolves to the exit code (errors are printed on the terminal's stderr). */
export async function run(argv: string[], term: Terminal = processTerminal()): Promise<number> {
  try {
    await buildProgram(term).parseAsync(argv);
    // A command that printed its result and then failed (a broken ledger, too few incidents) says so here.
    const code = Number(process.exitCode ?? 0);
    process.exitCode = undefined;
    return code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof CliError || err instanceof ConfigError) {
      term.err.write(`${err.message}\n`);
      return err instanceof CliError ? err.exitCode : 2;
    }
    const code = (err as NodeJS.ErrnoException).code;
    const expected = code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR';
    term.err.write(`cordon: ${expected ? (err as Error).message : ((err as Error).stack ?? err)}\n`);
    return 1;
  }
}

export async function main(argv: string[]): Promise<void> {
  const code = await run(argv);
  if (code !== 0) process.exit(code);
}

if (require.main === module) void main(process.argv);
