import { Command, CommanderError } from 'commander';
import pkg from '../../package.json';
import { ConfigError } from '../config';
import { CliError } from './options';
import { registerAudit } from './audit';
import { registerIncidents } from './incidents';
import { registerPlaybook } from './playbook';
import { registerProduce } from './produce';
import { registerReplay } from './replay';
import { registerRun } from './run';
import { registerSimulate } from './simulate';
import { registerDemo } from './demo';

/** The `cordon` command. Each capability registers its subcommand here. */
export function buildProgram(): Command {
  const program = new Command('cordon')
    .description('Cordon: automated, bounded and audited containment of lateral movement')
    .version(`${pkg.version} (node ${process.version})`)
    .showHelpAfterError()
    .exitOverride();
  registerRun(program);
  registerProduce(program);
  registerReplay(program);
  registerIncidents(program);
  registerPlaybook(program);
  registerAudit(program);
  registerSimulate(program);
  registerDemo(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode);
    if (err instanceof CliError || err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    const code = (err as NodeJS.ErrnoException).code;
    const expected = code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR';
    process.stderr.write(`cordon: ${expected ? (err as Error).message : ((err as Error).stack ?? err)}\n`);
    process.exit(1);
  }
}

if (require.main === module) void main(process.argv);
