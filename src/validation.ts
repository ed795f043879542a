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

// A key may be written with \u escapes ("\u005f_proto__"), which JSON.parse turns into a real
// `__proto__` own key: any escape sends the document through the reviver too.
const FORBIDDEN = /"(__proto__|constructor|prototype)"\s*:|\\u/;

export type JsonParse = { ok: true; value: unknown } | { ok: false; reason: string };

/**
 * JSON.parse that refuses prototype-pollution keys anywhere in the document.
 * The regex is a cheap pre-check; only suspicious documents pay for the reviver.
 */
export function parseJson(text: string): JsonParse {
  try {
    if (!FORBIDDEN.test(text)) return { ok: true, value: JSON.parse(text) };
    let bad: string | undefined;
    const value = JSON.parse(text, function (key, v) {
      if (key === '__proto__' || key === 'constructor' || key === 'prototype') bad = key;
      return v;
    });
    if (bad) return { ok: false, reason: `forbidden key "${bad}" (prototype pollution)` };
    return { ok: true, value };
  } catch (err) {
    return { ok: false, reason: `malformed JSON: ${(err as Error).message}` };
  }
}
