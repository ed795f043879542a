import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/**
 * A tiny network lab for the host enforcer's end-to-end test: three network namespaces with names
 * unique to the test run, `cordon-<time>-<rand>-{attacker,victim,router}`. Attacker and victim
 * are each joined to the router by a veth pair and route everything through it; the router
 * forwards, runs a stateful firewall like a real gateway, and is where the enforcer enforces.
 *
 * The workloads keep the addresses of the recorded attack (172.18.39.5 -> 172.18.39.6) on
 * point-to-point /32 links, plus IPv6 ULAs. Nothing is created in the host's own namespace:
 * the veths are created inside the router namespace, so the host's firewall and routes are never
 * touched and several runs can coexist.
 */

export interface Workload {
  ns: string;
  ipv4: string;
  ipv6: string;
}

export interface Lab {
  id: string;
  router: string;
  attacker: Workload;
  victim: Workload;
}

const PREFIX = 'cordon';
const ROLES = ['router', 'attacker', 'victim'] as const;
const LAB_NAME = /^cordon-([0-9a-z]+)-[0-9a-f]+-(router|attacker|victim)$/;
const ROUTER_V4 = '172.18.39.1';
const ROUTER_LL6 = 'fe80::1';
const NODE = process.execPath;

/** Whether this machine can run the lab (root, iproute2, nft, conntrack, namespaces), and if not why. */
export function labSupport(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux') return { ok: false, reason: 'network namespaces need Linux' };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'not root (network namespaces and nftables need CAP_SYS_ADMIN and CAP_NET_ADMIN)' };
  for (const [tool, args] of [['ip', ['-V']], ['nft', ['--version']], ['conntrack', ['--version']]] as const) {
    try {
      execFileSync(tool, args, { stdio: 'ignore', timeout: 5_000 });
    } catch {
      return { ok: false, reason: `${tool} is not installed (bash scripts/stack.sh up nftables installs it)` };
    }
  }
  const probe = `${PREFIX}-probe-${randomBytes(4).toString('hex')}`;
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'pipe', timeout: 5_000 });
  } catch (err) {
    return { ok: false, reason: `ip netns add failed: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}` };
  }
  try {
    execFileSync('ip', ['netns', 'exec', probe, 'nft', 'list', 'ruleset'], { stdio: 'pipe', timeout: 5_000 });
  } catch (err) {
    return { ok: false, reason: `nft cannot talk to the kernel in a namespace: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}` };
  } finally {
    execFileSync('ip', ['netns', 'del', probe], { stdio: 'ignore', timeout: 5_000 });
  }
  return { ok: true };
}

/** Runs a command (no shell); rejects with its stderr when it exits non-zero. */
export function run(cmd: string, args: string[], timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

/** Runs a command inside a namespace. */
export function inNs(ns: string, cmd: string, args: string[], timeoutMs?: number): Promise<string> {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], timeoutMs);
}

/** A lab whose attacker and victim have the given IPv4 addresses (default: the recorded attack's). */
export async function createLab(addresses: { attacker?: string; victim?: string } = {}): Promise<Lab> {
  const id = `${PREFIX}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const [router, attackerNs, victimNs] = ROLES.map((r) => `${id}-${r}`) as [string, string, string];
  const lab: Lab = {
    id,
    router,
    attacker: { ns: attackerNs, ipv4: addresses.attacker ?? '172.18.39.5', ipv6: 'fd18:39::5' },
    victim: { ns: victimNs, ipv4: addresses.victim ?? '172.18.39.6', ipv6: 'fd18:39::6' },
  };
  try {
    for (const ns of [router, attackerNs, victimNs]) {
      await run('ip', ['netns', 'add', ns]);
      await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      // No duplicate address detection: addresses are usable at once, no 1-2 s "tentative" wait.
      await inNs(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
    }
    await inNs(router, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    for (const [w, link] of [[lab.attacker, 'att'], [lab.victim, 'vic']] as const) {
      await run('ip', ['-n', router, 'link', 'add', link, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', w.ns]);
      await run('ip', ['-n', router, 'addr', 'add', ROUTER_V4, 'peer', `${w.ipv4}/32`, 'dev', link]);
      await run('ip', ['-n', router, '-6', 'addr', 'add', `${ROUTER_LL6}/64`, 'dev', link, 'nodad']);
      await run('ip', ['-n', w.ns, 'addr', 'add', w.ipv4, 'peer', `${ROUTER_V4}/32`, 'dev', 'eth0']);
      await run('ip', ['-n', w.ns, '-6', 'addr', 'add', `${w.ipv6}/128`, 'dev', 'eth0', 'nodad']);
      await run('ip', ['-n', router, 'link', 'set', link, 'up']);
      await run('ip', ['-n', w.ns, 'link', 'set', 'eth0', 'up']);
      await run('ip', ['-n', router, '-6', 'route', 'add', `${w.ipv6}/128`, 'dev', link]);
      await run('ip', ['-n', w.ns, 'route', 'add', 'default', 'via', ROUTER_V4, 'dev', 'eth0']);
      await run('ip', ['-n', w.ns, '-6', 'route', 'add', 'default', 'via', ROUTER_LL6, 'dev', 'eth0']);
    }
    // The router's own firewall, as on a real gateway: established traffic is accepted early and
    // only a SYN may open a connection. A connection whose conntrack entry is gone stays dead.
    await inNs(router, 'nft', [
      [
        'add table inet lab',
        'add chain inet lab forward { type filter hook forward priority 0; policy drop; }',
        'add rule inet lab forward ct state established,related accept',
        'add rule inet lab forward ct state new tcp flags & (fin|syn|rst|ack) == syn accept',
      ].join(' ; '),
    ]);
    return lab;
  } catch (err) {
    await destroyLab(lab).catch(() => {});
    throw err;
  }
}

/** Kills whatever still runs in the lab's namespaces and deletes them. */
export async function destroyLab(lab: Pick<Lab, 'id'>): Promise<void> {
  for (const role of ROLES) await removeNamespace(`${lab.id}-${role}`);
}

async function removeNamespace(ns: string): Promise<void> {
  const pids = await run('ip', ['netns', 'pids', ns]).catch(() => '');
  for (const pid of pids.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await run('ip', ['netns', 'del', ns]).catch(() => {});
}

/**
 * Deletes labs a crashed earlier run left behind: `cordon-*` namespaces created more than
 * `olderThanMs` ago (their name carries the time). Younger ones may belong to a run in progress.
 */
export async function removeStaleLabs(olderThanMs = 10 * 60_000): Promise<string[]> {
  const listed = await run('ip', ['netns', 'list']).catch(() => '');
  const stale: string[] = [];
  for (const line of listed.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = LAB_NAME.exec(name);
    if (m && Date.now() - parseInt(m[1]!, 36) > olderThanMs) stale.push(name);
  }
  for (const ns of stale) await removeNamespace(ns);
  return stale;
}

// ------------------------------------------------------------------------------------------- traffic

const ECHO_SERVER = `
const net = require('net');
const server = net.createServer((s) => { s.on('error', () => {}); s.pipe(s); });
server.listen({ port: Number(process.argv[1]), host: '::', ipv6Only: false }, () => console.log('listening'));
`;

const PROBE = `
const net = require('net');
const [host, port, ms] = process.argv.slice(1);
const done = (r) => { console.log(r); process.exit(0); };
setTimeout(() => done('timeout'), Number(ms));
const s = net.connect({ host, port: Number(port) });
s.on('connect', () => s.write('ping\\n'));
s.on('data', (d) => { if (String(d).includes('ping')) done('ok'); });
s.on('error', (e) => done(e.code || 'error'));
`;

const STREAM = `
const net = require('net');
const [host, port] = process.argv.slice(1);
const s = net.connect({ host, port: Number(port) });
let n = 0, buf = '';
s.on('connect', () => { console.log('connected'); setInterval(() => s.write(n++ + '\\n'), 200); });
s.on('data', (d) => { buf += d; let i; while ((i = buf.indexOf('\\n')) >= 0) { console.log('echo ' + buf.slice(0, i)); buf = buf.slice(i + 1); } });
s.on('error', (e) => console.log('error ' + e.code));
s.on('close', () => console.log('closed'));
`;

/** A node process inside a namespace, killed on `stop()`. */
export class NsProcess {
  readonly lines: Array<{ at: number; line: string }> = [];
  private readonly child: ChildProcess;
  private stderr = '';

  constructor(ns: string, script: string, args: string[]) {
    this.child = spawn('ip', ['netns', 'exec', ns, NODE, '-e', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    this.child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        this.lines.push({ at: Date.now(), line: buf.slice(0, i) });
        buf = buf.slice(i + 1);
      }
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }

  async waitFor(predicate: (line: string) => boolean, timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.lines.some((l) => predicate(l.line))) {
      if (this.child.exitCode !== null) throw new Error(`process exited (${this.child.exitCode}): ${this.stderr.trim()}`);
      if (Date.now() > deadline) throw new Error(`timed out; output so far: ${this.lines.map((l) => l.line).join(' | ')} ${this.stderr.trim()}`);
      await sleep(20);
    }
  }

  count(predicate: (line: string) => boolean, since = 0): number {
    return this.lines.filter((l) => l.at >= since && predicate(l.line)).length;
  }

  stop(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

/** A TCP echo server on every address of the namespace. */
export async function startEchoServer(ns: string, port: number): Promise<NsProcess> {
  const p = new NsProcess(ns, ECHO_SERVER, [String(port)]);
  await p.waitFor((l) => l === 'listening');
  return p;
}

/** One new TCP connection with a round trip: 'ok', 'timeout', or the error code. */
export async function tryConnect(fromNs: string, host: string, port: number, timeoutMs = 600): Promise<string> {
  const out = await inNs(fromNs, NODE, ['-e', PROBE, host, String(port), String(timeoutMs)], timeoutMs + 10_000);
  return out.trim();
}

/** A long-lived connection that sends a line every 200 ms and prints `echo N` for each echo. */
export async function openStream(fromNs: string, host: string, port: number): Promise<NsProcess> {
  const p = new NsProcess(fromNs, STREAM, [host, String(port)]);
  await p.waitFor((l) => l === 'connected');
  return p;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
