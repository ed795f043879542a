import { existsSync, readdirSync, readFileSync } from 'node:fs';

/** Peak resident set size of this process so far (VmHWM), in bytes. */
export function peakRss(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.memoryUsage.rss();
}

export const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;

/**
 * Peak resident set size (VmHWM) of another process, in bytes, or NaN: the largest in its process
 * tree, since `bin/cordon` started by an older Node runs the service as its child.
 */
export function peakRssOf(pid: number): number {
  const peaks = processTree(pid).map((p) => /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8')));
  const kb = peaks.map((m) => (m ? Number(m[1]) : 0));
  return kb.length ? Math.max(...kb) * 1024 : NaN;
}

/** CPU seconds (user + system) a process and its live descendants have used so far, from /proc/<pid>/stat. */
export function cpuSecondsOf(pid: number): number {
  return processTree(pid).reduce((sum, p) => {
    const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of proc(5), utime and stime: 12 and 13 after the command name.
    return sum + (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  }, 0);
}

/** The process and its descendants, from /proc/<pid>/task/<tid>/children. */
function processTree(pid: number): number[] {
  const out: number[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    if (!existsSync(`/proc/${p}`)) continue;
    out.push(p);
    for (const tid of readdirSync(`/proc/${p}/task`)) {
      const children = readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8').trim();
      if (children) stack.push(...children.split(' ').map(Number));
    }
  }
  return out;
}

/** sysconf(_SC_CLK_TCK) on Linux. */
const CLOCK_TICKS = 100;
