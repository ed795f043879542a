import { SERVICE_CLASSES, type ServiceClass } from './ports';

/**
 * What the traffic itself teaches about a destination: which remote-administration services it
 * serves to the fleet. A destination that `need` distinct sources reached on one service within
 * the window is a server of that service (a WinRM collector, a file share, a jump host's SSH), and
 * sessions to it on that service are business, not movement. Bounded: at most `CAP` recent
 * (service, source) contacts per destination, plus one bit per service once it is learned (kept
 * for good, and in snapshots, like a learned domain controller).
 */
export class ServedMemory {
  static readonly CAP = 16;
  /** Source of each contact (the keys the entity table holds); arrays exact size, no growth slack. */
  src: string[] = [];
  /** Per contact, one unboxed double: time x 16 + service index (SERVICE_CLASSES has < 16). */
  num: number[] = [];
  /** Bit i: the destination serves SERVICE_CLASSES[i] to the fleet. */
  fleet = 0;

  serves(service: ServiceClass): boolean {
    return (this.fleet & (1 << SERVICE_CLASSES.indexOf(service))) !== 0;
  }

  /** Note a session from `src`; true when it makes the destination a fleet server of `service`. */
  note(service: ServiceClass, src: string, at: number, windowMs: number, need: number): boolean {
    const svc = SERVICE_CLASSES.indexOf(service);
    const bit = 1 << svc;
    if (this.fleet & bit) return false;
    let slot = -1;
    let distinct = 1;
    for (let i = 0; i < this.src.length; i++) {
      const n = this.num[i] as number;
      if (n % 16 !== svc) continue;
      if (this.src[i] === src) slot = i;
      else if (at - Math.floor(n / 16) <= windowMs) distinct += 1;
    }
    const packed = Math.floor(at) * 16 + svc; // event times are integer milliseconds
    if (slot < 0 && this.src.length < ServedMemory.CAP) {
      this.src = this.src.concat(src);
      this.num = this.num.concat(packed);
    } else {
      if (slot < 0) slot = this.oldest();
      this.src[slot] = src;
      this.num[slot] = packed;
    }
    if (distinct < need) return false;
    this.fleet |= bit;
    return true;
  }

  private oldest(): number {
    const at = (i: number) => Math.floor((this.num[i] as number) / 16);
    let best = 0;
    for (let i = 1; i < this.num.length; i++) if (at(i) < at(best)) best = i;
    return best;
  }
}

export type EncodedServed = [svc: number[], src: string[], at: number[], fleet: number];

export function encodeServed(m: ServedMemory): EncodedServed {
  return [m.num.map((n) => n % 16), [...m.src], m.num.map((n) => Math.floor(n / 16)), m.fleet];
}

export function decodeServed(e: EncodedServed): ServedMemory {
  const m = new ServedMemory();
  const k = Math.min(e[0].length, e[1].length, e[2].length, ServedMemory.CAP);
  m.src = e[1].slice(0, k);
  m.num = Array.from({ length: k }, (_, i) => (e[2][i] as number) * 16 + (e[0][i] as number));
  m.fleet = e[3];
  return m;
}

/**
 * The edges one source reaches on a steady period: a scraper, a health check, a backup agent's
 * poll. Learned from inter-arrival times per (destination, port), without configuration: an edge
 * is periodic once `MIN_VISITS` visits came at intervals whose mean deviation (an average that
 * starts doubtful, at a quarter of the period) is within `JITTER` of their mean period (at most
 * `MAX_PERIOD_MS`). Arrivals closer than `MIN_GAP_MS` are one visit (retries, a flow logged by two
 * sensors); a gap more than a quarter off the period starts the learning over.
 * Bounded: at most `CAP` edges, the least recently visited gives way; stored flat (four numbers
 * an edge), and created only for a source that came back to an edge or whose session table is full.
 *
 * Only the periodic edge is damped (signals.ts): a source periodic toward one peer still raises
 * sessions and fan-out to every other, and the first visit of an edge is never periodic.
 */
export class PeriodicEdges {
  static readonly CAP = 64;
  static readonly MIN_VISITS = 6;
  static readonly JITTER = 0.1;
  static readonly MIN_GAP_MS = 1_000;
  static readonly MAX_PERIOD_MS = 3_600_000;
  dst: string[] = [];
  /** Per edge: port + 65536 x visits (capped at 255), last visit, mean period, mean deviation (ms). */
  num: number[] = [];

  /** Note a visit of (dst, port) at `at` (`previous`: an earlier visit known elsewhere); true when the edge is periodic with it. */
  note(dst: string, port: number, at: number, previous?: number): boolean {
    let i = this.find(dst, port);
    if (i < 0) {
      i = this.slot();
      if (i === this.dst.length) this.dst = this.dst.concat(dst);
      else this.dst[i] = dst;
      this.put(i, port, 1, previous ?? at, 0, 0);
      if (previous === undefined || at - previous < PeriodicEdges.MIN_GAP_MS) return false;
    }
    const b = i * STRIDE;
    const num = this.num;
    const visits = Math.floor((num[b] as number) / 65536);
    const gap = at - (num[b + 1] as number);
    if (gap < PeriodicEdges.MIN_GAP_MS) return this.periodic(i); // the same visit (or out of order)
    const period = num[b + 2] as number;
    if (visits === 1 || Math.abs(gap - period) > period / 4) {
      this.put(i, port, 2, at, gap, gap / 4); // doubtful until steady gaps bring the deviation down
      return false;
    }
    this.put(i, port, Math.min(255, visits + 1), at, period * 0.75 + gap * 0.25, (num[b + 3] as number) * 0.75 + Math.abs(gap - period) * 0.25);
    return this.periodic(i);
  }

  /** Whether (dst, port) is a learned periodic edge (without noting a visit). */
  isPeriodic(dst: string, port: number): boolean {
    const i = this.find(dst, port);
    return i >= 0 && this.periodic(i);
  }

  private periodic(i: number): boolean {
    const b = i * STRIDE;
    const period = this.num[b + 2] as number;
    return (
      Math.floor((this.num[b] as number) / 65536) >= PeriodicEdges.MIN_VISITS &&
      period <= PeriodicEdges.MAX_PERIOD_MS &&
      (this.num[b + 3] as number) <= period * PeriodicEdges.JITTER
    );
  }

  private put(i: number, port: number, visits: number, last: number, period: number, dev: number): void {
    const b = i * STRIDE;
    const num = this.num;
    if (b === num.length) {
      this.num = num.concat(port + visits * 65536, last, period, dev); // exact size
      return;
    }
    num[b] = port + visits * 65536;
    num[b + 1] = last;
    num[b + 2] = period;
    num[b + 3] = dev;
  }

  private find(dst: string, port: number): number {
    const { dst: d, num } = this;
    for (let i = 0; i < d.length; i++) if (d[i] === dst && (num[i * STRIDE] as number) % 65536 === port) return i;
    return -1;
  }

  private slot(): number {
    if (this.dst.length < PeriodicEdges.CAP) return this.dst.length;
    let best = 0;
    for (let i = 1; i < this.dst.length; i++) if ((this.num[i * STRIDE + 1] as number) < (this.num[best * STRIDE + 1] as number)) best = i;
    return best;
  }
}
const STRIDE = 4;

export type EncodedPeriodic = [dst: string[], num: number[]];

export function encodePeriodic(p: PeriodicEdges): EncodedPeriodic {
  return [[...p.dst], [...p.num]];
}

export function decodePeriodic(e: EncodedPeriodic): PeriodicEdges {
  const p = new PeriodicEdges();
  const k = Math.min(e[0].length, Math.floor(e[1].length / STRIDE), PeriodicEdges.CAP);
  p.dst = e[0].slice(0, k);
  p.num = e[1].slice(0, k * STRIDE);
  return p;
}
