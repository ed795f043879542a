/**
 * Glob matching in linear time, with no regular expression: `*` matches any run of characters
 * (none, and line breaks too), `?` exactly one UTF-16 code unit; everything else is literal,
 * compared case-insensitively as a JavaScript `/i` regular expression compares.
 *
 * A glob is split at its stars into segments. The first segment must match at the start of the
 * name, the last at its end, and the ones between are found left to right, each at its leftmost
 * occurrence after the previous one: leftmost is always a safe choice, so nothing is ever tried
 * twice. Each segment is searched with the bit-parallel Shift-And algorithm, one pass over the
 * name, ⌈segment length / 32⌉ word operations a character. A name of n characters thus costs at
 * most n × ⌈longest segment / 32⌉ steps plus the glob's own length, whatever the stars.
 */

export interface Glob {
  readonly source: string;
  /** Whether the whole name matches. `meter`, if given, is charged one step per unit of work. */
  test(name: string, meter?: Meter): boolean;
}

export interface Meter {
  steps: number;
}

/** A segment between stars, folded, with `?` as -1; its Shift-And masks built once. */
interface Segment {
  readonly units: readonly number[];
  readonly words: number;
  readonly masks: ReadonlyMap<number, Uint32Array>;
  /** The mask of a character the segment does not name: only its `?` positions. */
  readonly anyMask: Uint32Array;
}

const ANY = -1;
const STAR = 42;
const QUESTION = 63;

export function compileGlob(source: string): Glob {
  const parts = splitAtStars(source);
  if (parts.length === 1) {
    const only = parts[0]!;
    return { source, test: (name, meter) => name.length === only.length && matchesAt(only, name, 0, meter) };
  }
  const head = parts[0]!;
  const tail = parts[parts.length - 1]!;
  const middle = parts.slice(1, -1).filter((p) => p.length > 0).map(segment);
  return {
    source,
    test(name, meter) {
      const end = name.length - tail.length;
      if (end < head.length || !matchesAt(head, name, 0, meter) || !matchesAt(tail, name, end, meter)) return false;
      let at = head.length;
      for (const s of middle) {
        const next = findFrom(s, name, at, end, meter);
        if (next < 0) return false;
        at = next;
      }
      return true;
    },
  };
}

/** The folded code units of each segment; `?` becomes ANY. */
function splitAtStars(source: string): number[][] {
  const parts: number[][] = [[]];
  for (let i = 0; i < source.length; i++) {
    const c = source.charCodeAt(i);
    if (c === STAR) parts.push([]);
    else parts[parts.length - 1]!.push(c === QUESTION ? ANY : fold(c));
  }
  return parts;
}

/**
 * Case folding as a non-Unicode `/i` RegExp does it (ECMAScript Canonicalize): the upper case of
 * a code unit, unless that takes more than one unit or maps a non-ASCII unit to ASCII.
 */
export function fold(c: number): number {
  if (c < 128) return c >= 97 && c <= 122 ? c - 32 : c;
  const upper = String.fromCharCode(c).toUpperCase();
  if (upper.length !== 1) return c;
  const u = upper.charCodeAt(0);
  return u < 128 ? c : u;
}

function matchesAt(units: readonly number[], name: string, at: number, meter?: Meter): boolean {
  if (meter) meter.steps += units.length;
  for (let i = 0; i < units.length; i++) {
    const u = units[i]!;
    if (u !== ANY && u !== fold(name.charCodeAt(at + i))) return false;
  }
  return true;
}

function segment(units: readonly number[]): Segment {
  const words = Math.ceil(units.length / 32);
  const anyMask = new Uint32Array(words);
  units.forEach((u, i) => u === ANY && setBit(anyMask, i));
  const masks = new Map<number, Uint32Array>();
  units.forEach((u, i) => {
    if (u === ANY) return;
    let m = masks.get(u);
    if (!m) masks.set(u, (m = Uint32Array.from(anyMask)));
    setBit(m, i);
  });
  return { units, words, masks, anyMask };
}

function setBit(bits: Uint32Array, i: number): void {
  bits[i >>> 5]! |= 1 << (i & 31);
}

/**
 * Shift-And: bit i of the state is set when the last i+1 characters read match the segment's
 * first i+1. Returns the index just past the leftmost occurrence that ends at or before `end`,
 * or -1.
 */
function findFrom(s: Segment, name: string, from: number, end: number, meter?: Meter): number {
  const state = new Uint32Array(s.words);
  const last = s.units.length - 1;
  const lastWord = last >>> 5;
  const lastBit = 1 << (last & 31);
  for (let i = from; i < end; i++) {
    const mask = s.masks.get(fold(name.charCodeAt(i))) ?? s.anyMask;
    let carry = 1;
    for (let w = 0; w < s.words; w++) {
      const v = state[w]!;
      state[w] = ((v << 1) | carry) & mask[w]!;
      carry = v >>> 31;
    }
    if (meter) meter.steps += s.words;
    if ((state[lastWord]! & lastBit) !== 0) return i + 1;
  }
  return -1;
}
