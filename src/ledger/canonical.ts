import { createHash } from 'node:crypto';

/**
 * Canonical JSON, the byte string a ledger record's hash is computed over:
 * - object keys sorted recursively (by UTF-16 code unit, JavaScript's default sort, as RFC 8785 does);
 * - no whitespace; strings and numbers exactly as JSON.stringify writes them;
 * - arrays keep their order; object members whose value is undefined (or a function or symbol) are
 *   dropped, and such values inside arrays become null, as JSON.stringify does;
 * - values with toJSON (Date) are serialized through it, as JSON.stringify does.
 * Numbers that JSON cannot carry (NaN, ±Infinity) and bigints throw: a hash over a value that does
 * not survive a JSON round trip could never be verified.
 */
export function canonicalJson(value: unknown): string {
  const out = write(value, '');
  if (out === undefined) throw new TypeError('canonicalJson: the value has no JSON representation');
  return out;
}

function write(value: unknown, key: string): string | undefined {
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON: (k: string) => unknown }).toJSON(key);
  }
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: ${value} at "${key}" is not a JSON number`);
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      throw new TypeError(`canonicalJson: bigint at "${key}" is not a JSON number`);
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) return `[${value.map((v, i) => write(v, String(i)) ?? 'null').join(',')}]`;
  const obj = value as Record<string, unknown>;
  const members: string[] = [];
  for (const k of Object.keys(obj).sort()) {
    const v = write(obj[k], k);
    if (v !== undefined) members.push(`${JSON.stringify(k)}:${v}`);
  }
  return `{${members.join(',')}}`;
}

/** SHA-256 of the UTF-8 bytes of a string, lower-case hex. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
