import { compileGlob, type Meter } from '../src/glob';

/** The reference semantics: the glob as a regular expression (`*` any run, `?` one unit, /i, dotAll). */
function reference(glob: string, name: string): boolean {
  const escaped = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`, 'is').test(name);
}

/** A second reference that stays polynomial on long names: the textbook dynamic programme (ASCII only). */
function dynamic(glob: string, name: string): boolean {
  const p = glob.toLowerCase();
  const s = name.toLowerCase();
  let row = new Array<boolean>(s.length + 1).fill(false);
  row[0] = true;
  for (const c of p) {
    const next = new Array<boolean>(s.length + 1).fill(false);
    next[0] = c === '*' && row[0]!;
    for (let j = 1; j <= s.length; j++) {
      next[j] = c === '*' ? row[j]! || next[j - 1]! : row[j - 1]! && (c === '?' || c === s[j - 1]);
    }
    row = next;
  }
  return row[s.length]!;
}

/** Deterministic pseudo-random numbers (mulberry32), so a failure can be reproduced. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const steps = (glob: string, name: string): { matched: boolean; steps: number } => {
  const meter: Meter = { steps: 0 };
  const matched = compileGlob(glob).test(name, meter);
  return { matched, steps: meter.steps };
};

describe('glob', () => {
  it.each([
    ['web-*', 'web-1', true],
    ['web-*', 'WEB-1', true],
    ['web-*', 'web', false],
    ['*', '', true],
    ['', '', true],
    ['', 'a', false],
    ['?', '', false],
    ['?', 'x', true],
    ['a?c', 'abc', true],
    ['a?c', 'ac', false],
    ['*.corp', 'dc01.corp', true],
    ['*.corp', 'dc01xcorp', false],
    ['dc-??', 'dc-01', true],
    ['dc-??', 'dc-1', false],
    ['*a*b*c*', 'xxaxxbxxcxx', true],
    ['*a*b*c*', 'xxcxxbxxaxx', false],
    ['a*a', 'a', false],
    ['a*a', 'aa', true],
    ['*ab*ab', 'abab', true],
    ['*ab*ab', 'aba', false],
    ['**x**', 'x', true],
    ['(a)+[b]', '(a)+[b]', true],
    ['(a)+[b]', 'aab', false],
    ['*', 'line\nbreak', true],
    ['a?b', 'a\nb', true],
  ])('%j on %j is %s, as the reference says', (glob, name, expected) => {
    expect(reference(glob, name)).toBe(expected);
    expect(compileGlob(glob).test(name)).toBe(expected);
  });

  it('agrees with the regular expression on 20000 random globs and names, case folding included', () => {
    // K (Kelvin sign), ſ (long s), ß, İ: units whose case folding a naive lower-casing gets wrong.
    const alphabet = ['a', 'b', 'A', 'B', 'k', 'K', 's', 'ſ', 'ß', 'İ', 'i', '.', '-', '\n'];
    const globAlphabet = [...alphabet, '*', '*', '?'];
    const next = rng(12);
    const word = (letters: string[], max: number) =>
      Array.from({ length: Math.floor(next() * (max + 1)) }, () => letters[Math.floor(next() * letters.length)]).join('');
    let matched = 0;
    for (let i = 0; i < 20000; i++) {
      const glob = word(globAlphabet, 8);
      const name = word(alphabet, 10);
      const got = compileGlob(glob).test(name);
      if (got !== reference(glob, name)) throw new Error(`${JSON.stringify(glob)} on ${JSON.stringify(name)}: got ${got}`);
      if (got) matched++;
    }
    // Neither verdict is rare, so agreement on both is exercised (683 of 20000 match with this seed).
    expect(matched).toBeGreaterThan(500);
    expect(20000 - matched).toBeGreaterThan(500);
  });

  const PATHOLOGICAL = ['*a*a*a*a*a*b', '*a*a*a*a*a*a*a*a*', 'a*a*a*a*a*a*a*a*a*a*c', '*?*?*?*?*?*?*b', '*aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab*'];

  it.each(PATHOLOGICAL)('%s: correct on names of 256 to 4096 characters, and linear work', (glob) => {
    const longestSegment = Math.max(...glob.split('*').map((s) => s.length));
    for (const n of [256, 1024, 4096]) {
      for (const name of ['a'.repeat(n), 'a'.repeat(n - 1) + 'b', 'a'.repeat(n / 2) + 'b' + 'a'.repeat(n / 2 - 1)]) {
        const { matched, steps: work } = steps(glob, name);
        expect(matched).toBe(dynamic(glob, name));
        // At most one pass over the name, ⌈segment/32⌉ words a character, plus the glob itself.
        expect(work).toBeLessThanOrEqual(n * Math.ceil(longestSegment / 32) + glob.length);
      }
    }
  });

  it('the backtracking it replaces does work that grows as a power of the name; the glob, linearly', () => {
    // What a backtracking regex engine does with `^.*a.*a.*a.*b$`: try every split for each star.
    const backtrack = (glob: string, name: string, meter: Meter, g = 0, s = 0): boolean => {
      meter.steps++;
      if (g === glob.length) return s === name.length;
      if (glob[g] === '*') {
        for (let k = name.length; k >= s; k--) if (backtrack(glob, name, meter, g + 1, k)) return true;
        return false;
      }
      return s < name.length && (glob[g] === '?' || glob[g] === name[s]) && backtrack(glob, name, meter, g + 1, s + 1);
    };
    const work = (n: number) => {
      const meter: Meter = { steps: 0 };
      backtrack('*a*a*a*b', 'a'.repeat(n), meter);
      return { backtracking: meter.steps, glob: steps('*a*a*a*b', 'a'.repeat(n)).steps };
    };
    const [small, large] = [work(32), work(64)];
    expect(large.backtracking / small.backtracking).toBeGreaterThan(12); // about n^4: ×16 for ×2
    expect(large.glob / small.glob).toBeLessThanOrEqual(2.2);
    expect(large.glob).toBeLessThan(200);
  });
});
