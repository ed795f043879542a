import YAML from 'yaml';
import type { ZodError } from 'zod';

/** One readable line naming every field that failed and why: `src.ip: is not a valid IPv4 or IPv6 address`. */
export function describeIssues(error: ZodError, prefix = ''): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => {
      const path = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
      return `${path || '(root)'}: ${issue.message}`;
    })
    .join('; ');
}

const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

export type JsonParse = { ok: true; value: unknown } | { ok: false; reason: string };

export interface JsonLimits {
  /** Deepest nesting of arrays and objects: `[]` is 1, `{"a":[]}` is 2. */
  maxDepth: number;
  /** UTF-8 bytes of the whole document. */
  maxBytes: number;
}

/**
 * Deep enough for every telemetry format and config Cordon reads (a Hubble flow nests about 5
 * levels), far below where JSON.stringify and the JSON.parse reviver exhaust the stack.
 */
export const DEFAULT_JSON_LIMITS: JsonLimits = { maxDepth: 64, maxBytes: 1024 * 1024 };

/**
 * The offset of the bracket at which nesting first goes deeper than `max`, or -1. One pass over
 * the text, no recursion; brackets inside strings do not count. Malformed text is left for
 * JSON.parse to name.
 */
export function nestingBeyond(text: string, max: number): number {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 92 /* \ */) i++;
        else if (d === 34) break;
      }
    } else if (c === 91 /* [ */ || c === 123 /* { */) {
      if (++depth > max) return i;
    } else if (c === 93 /* ] */ || c === 125 /* } */) {
      depth--;
    }
  }
  return -1;
}

/** Why a text is larger than `max` UTF-8 bytes, or undefined. */
export function sizeProblem(text: string, max: number): string | undefined {
  // UTF-8 takes at least one byte per UTF-16 unit and at most three: count bytes only when it matters.
  if (text.length > max) return `too large: over ${max} bytes (${text.length} characters)`;
  if (text.length * 3 > max) {
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > max) return `too large: ${bytes} bytes, the limit is ${max}`;
  }
  return undefined;
}

/** Why a text is over the limits, checked before any parsing, or undefined. */
export function jsonLimitProblem(text: string, limits: JsonLimits): string | undefined {
  const big = sizeProblem(text, limits.maxBytes);
  if (big) return big;
  const deep = nestingBeyond(text, limits.maxDepth);
  if (deep >= 0) return `too deep: nesting goes beyond ${limits.maxDepth} levels at offset ${deep}`;
  return undefined;
}

/**
 * JSON.parse that refuses documents over the size limit before parsing them, and, in one walk of
 * the parsed value, documents nested deeper than the depth limit and prototype-pollution keys
 * anywhere (JSON.parse makes them own keys, however they were escaped). V8's JSON.parse does not
 * recurse, so deep text is safe to parse; it is what would walk it afterwards that is not.
 */
export function parseJson(text: string, limits: JsonLimits = DEFAULT_JSON_LIMITS): JsonParse {
  const big = sizeProblem(text, limits.maxBytes);
  if (big) return { ok: false, reason: big };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: `malformed JSON: ${(err as Error).message}` };
  }
  const problem = structureProblem(value, limits.maxDepth);
  if (problem === TOO_DEEP) return { ok: false, reason: `too deep: nesting goes beyond ${limits.maxDepth} levels at offset ${nestingBeyond(text, limits.maxDepth)}` };
  if (problem) return { ok: false, reason: `forbidden key "${problem}" (prototype pollution)` };
  return { ok: true, value };
}

const TOO_DEEP = Symbol('too deep');

/**
 * TOO_DEEP when a container of the parsed value nests deeper than `max` (that wins), else the first
 * forbidden key, else undefined. Iterative: an explicit stack, not the call stack.
 */
function structureProblem(root: unknown, max: number): typeof TOO_DEEP | string | undefined {
  let forbidden: string | undefined;
  const values: unknown[] = [root];
  const depths: number[] = [1];
  while (values.length > 0) {
    const v = values.pop();
    const depth = depths.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > max) return TOO_DEEP;
    if (Array.isArray(v)) {
      for (const child of v) {
        if (typeof child !== 'object' || child === null) continue;
        values.push(child);
        depths.push(depth + 1);
      }
      continue;
    }
    for (const key in v) {
      if (forbidden === undefined && FORBIDDEN_KEYS.has(key)) forbidden = key;
      const child = (v as Record<string, unknown>)[key];
      if (typeof child !== 'object' || child === null) continue;
      values.push(child);
      depths.push(depth + 1);
    }
  }
  return forbidden;
}

/**
 * The path of the first array or object of a parsed value (YAML, for one) nested deeper than
 * `max`, or undefined. Iterative: an explicit stack, not the call stack.
 */
export function deeperThan(value: unknown, max: number): string | undefined {
  const stack: { v: unknown; depth: number; path: string }[] = [{ v: value, depth: 0, path: '' }];
  while (stack.length > 0) {
    const { v, depth, path } = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth + 1 > max) return path || '(root)';
    for (const [k, child] of Object.entries(v)) stack.push({ v: child, depth: depth + 1, path: path ? `${path}.${k}` : k });
  }
  return undefined;
}

/** Aliases a YAML document may resolve: the yaml package's own default, stated. */
export const MAX_YAML_ALIASES = 100;

/**
 * YAML.parse within the same limits: size before parsing; aliases by the parser (no billion
 * laughs); depth after parsing, and a parser that runs out of stack on deep flow collections
 * named for what it is.
 */
export function parseYaml(text: string, limits: JsonLimits = DEFAULT_JSON_LIMITS): JsonParse {
  const big = sizeProblem(text, limits.maxBytes);
  if (big) return { ok: false, reason: big };
  let value: unknown;
  try {
    value = YAML.parse(text, { maxAliasCount: MAX_YAML_ALIASES });
  } catch (err) {
    return { ok: false, reason: yamlProblem(err as Error, limits.maxDepth) };
  }
  const deep = deeperThan(value, limits.maxDepth);
  if (deep) return { ok: false, reason: `too deep: nesting goes beyond ${limits.maxDepth} levels at ${deep}` };
  return { ok: true, value };
}

/** The first line of a YAML error; running out of stack is what deep nesting does to the parser. */
export function yamlProblem(err: Error, maxDepth: number): string {
  const first = (err.message.split('\n')[0] ?? err.message).replace(/:$/, '');
  if (first.startsWith('Maximum call stack size exceeded')) {
    return `too deep: nesting goes beyond ${maxDepth} levels (${first.replace('Maximum call stack size exceeded', 'the parser ran out of stack')})`;
  }
  return first;
}
