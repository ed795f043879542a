import { deeperThan, nestingBeyond, parseJson, parseYaml } from '../src/validation';

const deepArray = (n: number) => '['.repeat(n) + ']'.repeat(n);

describe('JSON nesting, counted in brackets of the text', () => {
  it.each([
    ['[]', 1, -1],
    ['[[]]', 1, 1],
    ['{"a":[{"b":1}]}', 3, -1],
    ['{"a":[{"b":1}]}', 2, 6],
    ['"[[[["', 0, -1], // brackets in a string do not nest
    ['["\\"[[[["]', 1, -1], // nor after an escaped quote
    ['["\\\\", [[1]]]', 2, 8], // an escaped backslash ends before the quote that closes the string
    ['[]]]][[', 1, -1], // malformed: left to JSON.parse to name
  ])('%j, at most %d levels: first too deep at %d', (text, max, at) => {
    expect(nestingBeyond(text, max)).toBe(at);
  });

  it('refuses a 100k-deep document, with the limit and the offset', () => {
    expect(parseJson(deepArray(100_000))).toEqual({ ok: false, reason: 'too deep: nesting goes beyond 64 levels at offset 64' });
    expect(parseJson(deepArray(64))).toMatchObject({ ok: true });
    expect(parseJson(deepArray(65))).toMatchObject({ ok: false, reason: /^too deep/ });
    expect(parseJson(deepArray(10), { maxDepth: 8, maxBytes: 1024 })).toMatchObject({ ok: false, reason: /beyond 8 levels at offset 8/ });
  });

  it('refuses deep documents with \\u escapes the same way', () => {
    const text = `{"k\\u0041":${deepArray(100_000)}}`;
    expect(parseJson(text)).toEqual({ ok: false, reason: 'too deep: nesting goes beyond 64 levels at offset 74' });
  });

  it('refuses deep nesting under an object key and inside an array after a long flat prefix', () => {
    const flat = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`k${i}`, i]));
    expect(parseJson(JSON.stringify({ ...flat, deep: JSON.parse(deepArray(65)) as unknown }))).toMatchObject({ ok: false, reason: /^too deep: nesting goes beyond 64 levels at offset \d+$/ });
    expect(parseJson(JSON.stringify([...Array.from({ length: 500 }, (_, i) => i), JSON.parse(deepArray(64)) as unknown]))).toMatchObject({ ok: false });
    expect(parseJson(JSON.stringify([JSON.parse(deepArray(63)) as unknown]))).toMatchObject({ ok: true });
  });

  it('a deep document that also holds a forbidden key is refused as too deep', () => {
    expect(parseJson(`{"__proto__":1,"a":${deepArray(100)}}`)).toMatchObject({ ok: false, reason: /^too deep/ });
  });

  it('refuses a document over the size limit', () => {
    expect(parseJson(`["${'x'.repeat(2000)}"]`, { maxDepth: 64, maxBytes: 1024 })).toMatchObject({ ok: false, reason: /^too large: over 1024 bytes/ });
  });
});

describe('JSON prototype-pollution keys, found in the parsed value', () => {
  it.each([
    ['{"__proto__":{"admin":true}}', '__proto__'],
    ['{"a":[{"b":{"constructor":{"prototype":{}}}}]}', 'constructor'],
    ['{"x":1,"prototype":2}', 'prototype'],
    ['{"\\u005f_proto__":{"admin":true}}', '__proto__'], // escaped in the text, a real own key once parsed
    ['[1,2,{"k":[{"\\u0063onstructor":0}]}]', 'constructor'],
  ])('%s is refused, naming %s', (text, key) => {
    expect(parseJson(text)).toEqual({ ok: false, reason: `forbidden key "${key}" (prototype pollution)` });
  });

  it.each(['{"a":"__proto__"}', '{"note":"\\"constructor\\": 1"}', '["prototype"]', '{"constructors":1,"proto":2}'])('%s, where the words are values or other keys, is accepted', (text) => {
    expect(parseJson(text)).toMatchObject({ ok: true });
  });

  it('malformed text is named by JSON.parse', () => {
    expect(parseJson('{"a":')).toMatchObject({ ok: false, reason: /^malformed JSON: / });
  });
});

describe('YAML within the same limits', () => {
  const block = (n: number) => Array.from({ length: n }, (_, i) => `${' '.repeat(i)}a:`).join('\n') + ` 1\n`;

  it('refuses deep block nesting after parsing, naming the path', () => {
    expect(parseYaml(block(64))).toMatchObject({ ok: true });
    const r = parseYaml(block(100));
    expect(r).toEqual({ ok: false, reason: `too deep: nesting goes beyond 64 levels at ${Array(64).fill('a').join('.')}` });
  });

  it('refuses flow nesting that exhausts the parser as too deep, not as a stack overflow', () => {
    expect(parseYaml(`a: ${deepArray(100_000)}\n`)).toMatchObject({ ok: false, reason: /^too deep: nesting goes beyond 64 levels \(the parser ran out of stack/ });
  });

  it('refuses an alias bomb and oversize text', () => {
    const laughs = ['a: &a [x,x,x,x,x,x,x,x,x]'];
    for (const [i, name] of ['b', 'c', 'd', 'e', 'f'].entries()) laughs.push(`${name}: &${name} [${Array(9).fill(`*${'abcde'[i]}`).join(',')}]`);
    expect(parseYaml(laughs.join('\n'))).toMatchObject({ ok: false, reason: /Excessive alias count/ });
    expect(parseYaml(`a: ${'x'.repeat(2000)}`, { maxDepth: 64, maxBytes: 1024 })).toMatchObject({ ok: false, reason: /^too large/ });
  });

  it('measures the depth of a parsed value without recursion', () => {
    let v: unknown = 1;
    for (let i = 0; i < 200_000; i++) v = { a: v };
    expect(deeperThan(v, 64)).toBe(Array(64).fill('a').join('.'));
    expect(deeperThan({ a: [1, { b: [] }] }, 4)).toBeUndefined();
    expect(deeperThan({ a: [1, { b: [] }] }, 3)).toBe('a.1.b');
  });
});
