import { createHash } from 'node:crypto';
import { canonicalJson, sha256Hex } from '../../src/ledger/canonical';

describe('canonicalJson', () => {
  it('does not depend on key order', () => {
    expect(canonicalJson({ b: 1, a: 2, c: 3 })).toBe('{"a":2,"b":1,"c":3}');
    expect(canonicalJson({ c: 3, a: 2, b: 1 })).toBe(canonicalJson({ a: 2, b: 1, c: 3 }));
  });

  it('sorts nested objects, including objects inside arrays', () => {
    expect(canonicalJson({ z: { y: 1, x: { w: 2, v: 3 } }, a: [{ b: 1, a: 2 }] })).toBe('{"a":[{"a":2,"b":1}],"z":{"x":{"v":3,"w":2},"y":1}}');
  });

  it('keeps array order', () => {
    expect(canonicalJson([3, 1, 2, 'b', 'a'])).toBe('[3,1,2,"b","a"]');
  });

  it('drops undefined members; undefined in arrays becomes null, as JSON.stringify does', () => {
    expect(canonicalJson({ a: undefined, b: 1, c: () => 1 })).toBe('{"b":1}');
    expect(canonicalJson([1, undefined, 2])).toBe('[1,null,2]');
    expect(() => canonicalJson(undefined)).toThrow(/no JSON representation/);
  });

  it('writes numbers as JSON.stringify does', () => {
    for (const n of [0, -0, 1, -1.5, 0.1, 1e21, 1e-7, 123456789012345, 1.7976931348623157e308, 5e-324]) {
      expect(canonicalJson(n)).toBe(JSON.stringify(n));
    }
    expect(canonicalJson({ n: 1.0 })).toBe('{"n":1}');
  });

  it('refuses numbers JSON cannot carry', () => {
    expect(() => canonicalJson({ a: NaN })).toThrow(/not a JSON number/);
    expect(() => canonicalJson({ a: Infinity })).toThrow(/not a JSON number/);
    expect(() => canonicalJson({ a: 1n })).toThrow(/bigint/);
  });

  it('writes strings as JSON.stringify does and has no whitespace', () => {
    const value = { 'k ey': 'line\nbreak "quoted" \u00e9 \u{1f600} \\', e: '', t: true, f: false, n: null };
    const text = canonicalJson(value);
    expect(text).toBe('{"e":"","f":false,"k ey":"line\\nbreak \\"quoted\\" \u00e9 \u{1f600} \\\\","n":null,"t":true}');
    expect(JSON.parse(text)).toEqual(value);
  });

  it('uses toJSON like JSON.stringify (dates)', () => {
    expect(canonicalJson({ at: new Date(0) })).toBe('{"at":"1970-01-01T00:00:00.000Z"}');
  });

  it('equals JSON.stringify for already-sorted plain data', () => {
    const sorted = { a: [1, { b: 'x', c: null }], d: { e: -2.5 } };
    expect(canonicalJson(sorted)).toBe(JSON.stringify(sorted));
  });

  it('hashes the UTF-8 bytes', () => {
    expect(sha256Hex('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(sha256Hex('\u00e9')).toBe(createHash('sha256').update(Buffer.from([0xc3, 0xa9])).digest('hex'));
  });
});
