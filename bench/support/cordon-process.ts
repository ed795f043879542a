/**
 * The real `cordon run` as a child process, for crash tests and fault-table benchmarks.
 *
 *   const cfg = writeConfig('crash-1', { kafka: {...}, redis: {...}, http: { port: await freePort() } });
 *   const cordon = await startCordon({ name: 'crash-1', configFile: cfg, env: { CORDON_FAULT: 'after-apply' } });
 *   await cordon.waitReady();
 *   const exit = await cordon.waitExit();          // { code: null, signal: 'SIGKILL' } if a fault point fired
 *   const again = await startCordon({ name: 'crash-1', configFile: cfg });   // restart on the same config
 *   await again.stop();                             // SIGTERM, then SIGKILL if it does not exit in time
 *
 * Runs the built service (bin/cordon → dist/src/cli/main.js; `npm run -s build` first) with node
 * directly, so the pid is the service's own and a signal reaches it without a shell in between.
 * Each start logs stdout and stderr to its own file under test-output/ (`<name>.<n>.log`).
 * The HTTP port must be a fixed one in the config (see freePort), since readiness is polled there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { ConfigSchema } from '../../src/config';

export interface CordonProcessOptions {
  /** Names the log files (test-output/<name>.<n>.log). */
  name: string;
  /** A config file written by writeConfig (or any YAML/JSON `cordon run --config` accepts). */
  configFile: string;
  /** Added to this process's environment (e.g. CORDON_FAULT, CORDON_FAULT_ONCE_FILE, CORDON_LOG_LEVEL). */
  env?: Record<string, string>;
}

export interface CordonExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The repository root: the nearest folder above this module that holds bin/cordon. */
export const REPO_ROOT = findRepoRoot(__dirname);
export const OUTPUT_DIR = join(REPO_ROOT, 'test-output');

/**
 * Validates a config with the service's own schema (so a typo fails here, naming the key) and
 * writes it as JSON to test-output/<name>.config.json. Returns the file's path.
 */
export function writeConfig(name: string, config: object): string {
  const parsed = ConfigSchema.safeParse(config);
  if (!parsed.success) throw new Error(`cordon config for ${name}: ${z.prettifyError(parsed.error)}`);
  mkdirSync(OUTPUT_DIR, { recursive: true });
  const file = join(OUTPUT_DIR, `${name}.config.json`);
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

/** A TCP port that was free a moment ago, for the child's http.port. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Spawns `cordon run --config <file>`; resolves once the process exists (not yet ready: see waitReady). */
export async function startCordon(opts: CordonProcessOptions): Promise<CordonProcess> {
  const bin = join(REPO_ROOT, 'dist/src/cli/main.js');
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`npm run -s build\` first`);
  const http = readHttp(opts.configFile);
  mkdirSync(OUTPUT_DIR, { recursive: true });
  const logFile = nextLogFile(opts.name);
  const log = createWriteStream(logFile);
  await new Promise<void>((ok, fail) => log.once('open', () => ok()).once('error', fail));
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/cordon'), 'run', '--config', opts.configFile], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(log, { end: false });
  child.stderr!.pipe(log, { end: false });
  return new CordonProcess(child, logFile, `http://${http.host}:${http.port}`, log);
}

/** One running (or exited) `cordon run`. */
export class CordonProcess {
  readonly pid: number;
  private readonly exited: Promise<CordonExit>;
  private exit: CordonExit | undefined;

  constructor(
    private readonly child: ChildProcess,
    /** Where this run's stdout and stderr go. */
    readonly logFile: string,
    /** The service's HTTP base URL, e.g. http://127.0.0.1:41234. */
    readonly url: string,
    log: NodeJS.WritableStream,
  ) {
    if (child.pid === undefined) throw new Error('cordon did not start');
    this.pid = child.pid;
    this.exited = new Promise((ok) =>
      child.once('close', (code, signal) => {
        this.exit = { code, signal };
        log.end();
        ok(this.exit);
      }),
    );
  }

  /** How it ended, or undefined while it runs. */
  get exitStatus(): CordonExit | undefined {
    return this.exit;
  }

  /** Polls /readyz until it answers 200; rejects with the log's tail if the process exits first or time runs out. */
  async waitReady(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.exit) throw new Error(`cordon exited (${describe(this.exit)}) before it was ready:\n${this.logTail()}`);
      if (await this.isReady()) return;
      await sleep(100);
    }
    throw new Error(`cordon was not ready within ${timeoutMs} ms:\n${this.logTail()}`);
  }

  /** Sends a signal (SIGKILL by default); a no-op once the process has exited. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (!this.exit) this.child.kill(signal);
  }

  /** Resolves with the exit status; rejects if the process still runs after timeoutMs. */
  async waitExit(timeoutMs = 60_000): Promise<CordonExit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`cordon (pid ${this.pid}) still running after ${timeoutMs} ms:\n${this.logTail()}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Graceful stop: SIGTERM, then SIGKILL if it has not exited within graceMs. */
  async stop(graceMs = 20_000): Promise<CordonExit> {
    if (this.exit) return this.exit;
    this.kill('SIGTERM');
    try {
      return await this.waitExit(graceMs);
    } catch {
      this.kill('SIGKILL');
      return this.waitExit(10_000);
    }
  }

  /** This run's pino log records so far (JSON lines; other output is skipped). */
  logRecords(): Array<{ time: number; msg?: string; level: number } & Record<string, unknown>> {
    let text = '';
    try {
      text = readFileSync(this.logFile, 'utf8');
    } catch {
      return [];
    }
    return text.split('\n').flatMap((line) => {
      if (!line.startsWith('{')) return [];
      try {
        const record = JSON.parse(line) as { time?: unknown };
        return typeof record.time === 'number' ? [record as { time: number; level: number }] : [];
      } catch {
        return [];
      }
    });
  }

  /** The last lines of this run's log, for error messages. */
  logTail(lines = 30): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  private async isReady(): Promise<boolean> {
    try {
      const res = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(3_000) });
      return res.status === 200;
    } catch {
      return false;
    }
  }
}

function readHttp(configFile: string): { host: string; port: number } {
  const text = readFileSync(configFile, 'utf8');
  const raw: unknown = configFile.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
  const http = ConfigSchema.shape.http.parse((raw as { http?: unknown } | null)?.http ?? {});
  if (http.port === 0) throw new Error(`${configFile}: http.port must be a fixed port (use freePort()) so readiness can be polled`);
  return { host: http.host === '0.0.0.0' ? '127.0.0.1' : http.host, port: http.port };
}

function nextLogFile(name: string): string {
  for (let n = 1; ; n++) {
    const file = join(OUTPUT_DIR, `${name}.${n}.log`);
    if (!existsSync(file)) return file;
  }
}

function findRepoRoot(from: string): string {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'bin/cordon')) && existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no bin/cordon above ${from}`);
  }
}

function describe(exit: CordonExit): string {
  return exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
