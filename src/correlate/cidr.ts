/** IPv4 and IPv6 CIDR blocks, parsed once, matched against address strings. */

export interface Cidr {
  readonly family: 4 | 6;
  /** Address as 16-bit groups (IPv4: two groups). */
  readonly groups: readonly number[];
  readonly prefix: number;
}

function parseV4(ip: string): number[] | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  const bytes = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : NaN));
  if (bytes.some((b) => !(b >= 0 && b <= 255))) return undefined;
  const [a, b, c, d] = bytes as [number, number, number, number];
  return [(a << 8) | b, (c << 8) | d];
}

function parseV6(ip: string): number[] | undefined {
  const zone = ip.indexOf('%');
  const text = zone >= 0 ? ip.slice(0, zone) : ip;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const side = (s: string): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    for (const part of s.split(':')) {
      if (part.includes('.')) {
        const v4 = parseV4(part);
        if (!v4) return undefined;
        out.push(...v4);
      } else if (/^[0-9a-f]{1,4}$/i.test(part)) out.push(parseInt(part, 16));
      else return undefined;
    }
    return out;
  };
  const head = side(halves[0] ?? '');
  const tail = halves.length === 2 ? side(halves[1] ?? '') : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}

export function parseAddress(ip: string): { family: 4 | 6; groups: number[] } | undefined {
  if (ip.includes(':')) {
    const groups = parseV6(ip);
    return groups ? { family: 6, groups } : undefined;
  }
  const groups = parseV4(ip);
  return groups ? { family: 4, groups } : undefined;
}

export function parseCidr(text: string): Cidr | undefined {
  const [addr, bits] = text.split('/');
  const parsed = parseAddress(addr ?? '');
  if (!parsed) return undefined;
  const max = parsed.family === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
  if (!(prefix >= 0 && prefix <= max)) return undefined;
  return { family: parsed.family, groups: parsed.groups, prefix };
}

export function cidrContains(cidr: Cidr, ip: string): boolean {
  const addr = parseAddress(ip);
  if (!addr || addr.family !== cidr.family) return false;
  let remaining = cidr.prefix;
  for (let i = 0; remaining > 0; i++, remaining -= 16) {
    const take = Math.min(16, remaining);
    const mask = (0xffff << (16 - take)) & 0xffff;
    if (((addr.groups[i] ?? 0) & mask) !== ((cidr.groups[i] ?? 0) & mask)) return false;
  }
  return true;
}
