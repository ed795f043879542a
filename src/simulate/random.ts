/**
 * A small, fast, seedable PRNG (mulberry32) and the draws the simulator needs.
 * Never Math.random: a scenario is a pure function of its seed.
 */

/** 32-bit FNV-1a over a string, mixed with a seed: derives independent streams from one seed. */
export function hashSeed(seed: number, label: string): number {
  let h = (0x811c9dc5 ^ (seed >>> 0)) >>> 0;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // final avalanche (murmur3 fmix32) so that neighbouring labels diverge
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

const B62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const HEX = '0123456789abcdef';

export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** An independent stream for a named purpose: adding one stream never shifts another. */
  static derive(seed: number, label: string): Rng {
    return new Rng(hashSeed(seed, label));
  }

  /** Uniform 32-bit unsigned integer. */
  u32(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.u32() / 4294967296;
  }

  /** Uniform integer in [lo, hi], both inclusive. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** Uniform real in [lo, hi). */
  real(lo: number, hi: number): number {
    return lo + this.next() * (hi - lo);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(list: readonly T[]): T {
    if (list.length === 0) throw new Error('pick from an empty list');
    return list[Math.floor(this.next() * list.length)]!;
  }

  /** `n` distinct elements (or all of them if there are fewer), in draw order. */
  sample<T>(list: readonly T[], n: number): T[] {
    const copy = list.slice();
    const k = Math.min(n, copy.length);
    for (let i = 0; i < k; i++) {
      const j = i + Math.floor(this.next() * (copy.length - i));
      const tmp = copy[i]!;
      copy[i] = copy[j]!;
      copy[j] = tmp;
    }
    return copy.slice(0, k);
  }

  weighted<T>(items: readonly (readonly [T, number])[]): T {
    let total = 0;
    for (const [, w] of items) total += w;
    let r = this.next() * total;
    for (const [item, w] of items) {
      r -= w;
      if (r < 0) return item;
    }
    return items[items.length - 1]![0];
  }

  /** Exponential with the given mean: inter-arrival times of a Poisson process. */
  exp(mean: number): number {
    return -Math.log(1 - this.next()) * mean;
  }

  /** Roughly normal (Irwin-Hall of 4), clamped to [lo, hi]. */
  around(mean: number, spread: number, lo = -Infinity, hi = Infinity): number {
    const z = (this.next() + this.next() + this.next() + this.next() - 2) * 1.7320508;
    return Math.min(hi, Math.max(lo, mean + z * spread));
  }

  /** An ephemeral source port as Windows and Linux pick them. */
  ephemeralPort(os: 'windows' | 'linux' = 'windows'): number {
    return os === 'windows' ? this.int(49152, 65535) : this.int(32768, 60999);
  }

  hex(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += HEX[this.u32() & 15];
    return s;
  }

  base62(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += B62[this.u32() % 62];
    return s;
  }

  /** A version-4 UUID from this stream. */
  uuid(): string {
    const h = this.hex(32);
    const variant = HEX[8 + (this.u32() & 3)];
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
  }
}
