import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';

/**
 * A Redis of the benchmark's own (Debian's `redis-server`, installed by scripts/stack.sh when
 * missing) on a free loopback port, persisting every write to an append-only file, so that it can
 * be restarted as a production Redis would be without touching the shared one on 6379.
 */
export class PrivateRedis {
  private child: ChildProcess | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), 'cordon-faults-redis-'));

  constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--maxmemory-policy', 'noeviction', '--protected-mode', 'no'];
    this.child = spawn('redis-server', args, { stdio: 'ignore' });
    await this.waitFor(async (r) => (await r.ping()) === 'PONG', 'answers PING');
  }

  /** SHUTDOWN as an operator would (the append-only file is already in sync), then waits for the exit. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    const r = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => undefined); // the server goes away on purpose
    await r.connect().then(() => r.shutdown()).catch(() => child.kill('SIGTERM'));
    r.disconnect();
    await exited;
  }

  async remove(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async waitFor(ok: (r: Redis) => Promise<boolean>, what: string): Promise<void> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const r = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      r.on('error', () => undefined); // not up yet
      const good = await r.connect().then(() => ok(r), () => false);
      r.disconnect();
      if (good) return;
      if (Date.now() > deadline) throw new Error(`private redis-server on port ${this.port} never ${what}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }
}
