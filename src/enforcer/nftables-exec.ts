import { execFile } from 'node:child_process';
import { EnforcerError } from './enforcer';

/**
 * Runs nft and conntrack for the host enforcer: execFile (no shell), a timeout, stdin for
 * `nft -f -`, optionally inside a network namespace (`ip netns exec NAME nft ...`), and every
 * failure turned into an EnforcerError that says whether retrying can help and carries stderr.
 */

export interface ExecOptions {
  nftPath: string;
  conntrackPath: string;
  ipPath: string;
  /** Run inside this network namespace (a name under /run/netns) instead of the caller's. */
  netns?: string;
  timeoutMs: number;
}

interface RawResult {
  code: number;
  stdout: string;
  stderr: string;
}

const NETNS_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const MAX_OUTPUT = 64 * 1024 * 1024;

export class NftablesExec {
  constructor(private readonly o: ExecOptions) {
    if (o.netns !== undefined && !NETNS_NAME.test(o.netns)) {
      throw new EnforcerError(`network namespace name ${JSON.stringify(o.netns)} is not valid`, false, 'invalid_config');
    }
  }

  /** Runs `nft ARGS` (with `input` on stdin); returns stdout or throws a classified EnforcerError. */
  async nft(args: string[], input?: string): Promise<string> {
    const r = await this.run(this.o.nftPath, args, input);
    if (r.code === 0) return r.stdout;
    const { retriable, code } = classifyNft(r.stderr);
    throw new EnforcerError(`${this.describe('nft', args)} failed (exit ${r.code}): ${tidy(r.stderr)}`, retriable, code);
  }

  /** Applies a script as one atomic transaction (`nft -f -`): all of it or none of it. */
  async transaction(lines: string[]): Promise<void> {
    await this.nft(['-f', '-'], lines.join('\n') + '\n');
  }

  /** `conntrack -D FILTER`: the number of entries deleted (0 is fine: conntrack exits 1 then). */
  async conntrackDelete(filter: string[]): Promise<number> {
    const args = ['-D', ...filter];
    const r = await this.run(this.o.conntrackPath, args);
    const deleted = /(\d+) flow entries have been deleted/.exec(r.stderr + r.stdout);
    if (deleted && (r.code === 0 || r.code === 1)) return Number(deleted[1]);
    const { retriable, code } = classifyConntrack(r.stderr);
    throw new EnforcerError(`${this.describe('conntrack', args)} failed (exit ${r.code}): ${tidy(r.stderr || r.stdout)}`, retriable, code);
  }

  private describe(tool: string, args: string[]): string {
    return `${this.o.netns ? `ip netns exec ${this.o.netns} ` : ''}${tool} ${args.join(' ')}`;
  }

  private run(file: string, args: string[], input?: string): Promise<RawResult> {
    const [cmd, argv] = this.o.netns ? [this.o.ipPath, ['netns', 'exec', this.o.netns, file, ...args]] : [file, args];
    const what = `${cmd} ${argv.join(' ')}`;
    return new Promise((resolve, reject) => {
      const child = execFile(
        cmd,
        argv,
        { encoding: 'utf8', timeout: this.o.timeoutMs, killSignal: 'SIGKILL', maxBuffer: MAX_OUTPUT, windowsHide: true },
        (err, stdout, stderr) => {
          if (!err) return resolve({ code: 0, stdout, stderr });
          const e = err as NodeJS.ErrnoException & { code?: string | number; killed?: boolean; signal?: string | null };
          if (typeof e.code === 'string') {
            // The program could not be started at all: a configuration problem, not a transient one.
            const missing = e.code === 'ENOENT' || e.code === 'EACCES';
            return reject(new EnforcerError(`cannot run ${cmd}: ${e.message}`, !missing, missing ? 'not_found' : 'exec_failed'));
          }
          if (e.killed || e.signal) {
            const why = e.killed ? `timed out after ${this.o.timeoutMs} ms` : `killed by ${e.signal}`;
            return reject(new EnforcerError(`${what} ${why}: ${tidy(stderr)}`, true, 'timeout'));
          }
          resolve({ code: typeof e.code === 'number' ? e.code : 1, stdout, stderr });
        },
      );
      // A child that dies before reading stdin (missing binary) must not crash us with EPIPE.
      child.stdin?.on('error', () => {});
      child.stdin?.end(input ?? '');
    });
  }
}

function tidy(stderr: string): string {
  const text = stderr.trim().replace(/\s*\n\s*/g, ' | ');
  return text.length > 2000 ? `${text.slice(0, 2000)}…` : text || '(no output)';
}

/** Whether an nft failure can go away by itself, from what nft printed. */
export function classifyNft(stderr: string): { retriable: boolean; code: string } {
  if (/Cannot open network namespace/i.test(stderr)) return { retriable: false, code: 'netns_not_found' };
  if (/exec of .* failed/i.test(stderr)) return { retriable: false, code: 'not_found' };
  if (/Operation not permitted|Permission denied/i.test(stderr)) return { retriable: false, code: 'permission_denied' };
  // The operator's objects are in the way (a set of another type, a chain at another priority).
  if (/File exists|Operation not supported/i.test(stderr)) return { retriable: false, code: 'conflict' };
  if (/syntax error|value too large|too long|datatype mismatch|Invalid argument/i.test(stderr)) return { retriable: false, code: 'rejected' };
  if (/No such file or directory/i.test(stderr)) return { retriable: true, code: 'absent' };
  if (/busy|temporarily unavailable|Interrupted system call|No buffer space|Cannot allocate memory|timed out/i.test(stderr)) {
    return { retriable: true, code: 'busy' };
  }
  return { retriable: true, code: 'nft_failed' };
}

export function classifyConntrack(stderr: string): { retriable: boolean; code: string } {
  if (/Cannot open network namespace/i.test(stderr)) return { retriable: false, code: 'netns_not_found' };
  if (/exec of .* failed/i.test(stderr)) return { retriable: false, code: 'not_found' };
  if (/Operation not permitted|Permission denied/i.test(stderr)) return { retriable: false, code: 'permission_denied' };
  if (/Invalid argument|invalid parameter|Bad parameter|unknown option/i.test(stderr)) return { retriable: false, code: 'rejected' };
  return { retriable: true, code: 'conntrack_failed' };
}
