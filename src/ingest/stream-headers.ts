import type Redis from 'ioredis';
import { z } from 'zod';
import type { Logger } from '../logger';
import type { Format } from '../normalize/normalizer';
import { isVpcHeaderLine } from '../normalize/vpcflow';
import { isZeekHeaderLine } from '../normalize/zeek-tsv';

/**
 * The header lines of a stream (a VPC flow log format line, Zeek TSV `#` lines), kept in Redis so
 * that the stream's state survives a rebalance, a restart and a move to another replica.
 *
 * What is kept is a short list of checkpoints, oldest first. A checkpoint says: after the header
 * lines at offsets `from`..`to` (those of one batch), replaying `lines` from a fresh stream gives
 * the stream's header state, up to the next checkpoint's `from`. A stream read from offset X
 * takes the checkpoint with `to` < X, and only if the next one starts at X or later; otherwise
 * (X before every checkpoint, or inside one's lines) nothing is applied, as for a stream never
 * seen. A Kafka log does not change, so header lines read again (a replay, a batch retried) are
 * already in the checkpoints and only lines beyond the newest `to` make a new one.
 *
 * `lines` keeps the newest line of each kind in the order they came (a VPC header line; per Zeek
 * directive, where `#separator` starts a new log and so drops the Zeek lines before it), which
 * gives the same state as every line replayed, since a normalizer stores only lines that changed
 * its state. `lines: null`: a state that could not be kept (a line longer than MAX_LINE_CHARS).
 */

export const MAX_CHECKPOINTS = 4;
export const MAX_LINES = 16;
export const MAX_LINE_CHARS = 16 * 1024;

export interface HeaderLine {
  offset: number;
  text: string;
}

export interface Checkpoint {
  from: number;
  to: number;
  lines: HeaderLine[] | null;
}

export interface StoredHeaders {
  v: 1;
  checkpoints: Checkpoint[];
}

/** The kind of header line a text is, as kept: `vpcflow`, a Zeek directive (`#fields`), or undefined. */
export function headerKind(text: string): string | undefined {
  if (isZeekHeaderLine(text)) return /^#[a-z_]+/.exec(text)![0];
  return isVpcHeaderLine(text) ? 'vpcflow' : undefined;
}

/** Formats whose streams can carry header lines. */
export function carriesHeaders(format: Format | 'auto'): boolean {
  return format === 'vpcflow' || format === 'zeek' || format === 'auto';
}

const Offset = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const Line = z.object({
  offset: Offset,
  text: z.string().max(MAX_LINE_CHARS).refine((t) => headerKind(t) !== undefined, 'not a VPC flow log or Zeek TSV header line'),
});
const StoredSchema = z.object({
  v: z.literal(1),
  checkpoints: z
    .array(z.object({ from: Offset, to: Offset, lines: z.array(Line).max(MAX_LINES).nullable() }).refine((c) => c.from <= c.to, 'from after to'))
    .max(MAX_CHECKPOINTS)
    .refine((cs) => cs.every((c, i) => i === 0 || cs[i - 1]!.to < c.from), 'checkpoints out of order'),
});

/** A stored value read back: Redis is shared input. */
export function parseStored(json: string): { ok: true; value: StoredHeaders } | { ok: false; reason: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  const parsed = StoredSchema.safeParse(raw);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issue = parsed.error.issues[0]!;
  return { ok: false, reason: `${issue.path.join('.') || '(value)'}: ${issue.message}` };
}

/** The lines to replay for a stream read from `first`, or undefined: nothing applies. */
export function linesFor(stored: StoredHeaders | undefined, first: number): HeaderLine[] | undefined {
  const cs = stored?.checkpoints ?? [];
  let i = cs.length - 1;
  while (i >= 0 && cs[i]!.to >= first) i--;
  if (i < 0) return undefined;
  const next = cs[i + 1];
  if (next && next.from < first) return undefined;
  return cs[i]!.lines ?? undefined;
}

/** The newest line of each kind, in order; a `#separator` drops the Zeek lines before it. */
function compact(base: readonly HeaderLine[], added: readonly HeaderLine[]): HeaderLine[] {
  let out = [...base];
  for (const line of added) {
    const kind = headerKind(line.text)!;
    out = out.filter((l) => {
      const k = headerKind(l.text)!;
      return k !== kind && !(kind === '#separator' && k.startsWith('#'));
    });
    out.push(line);
  }
  return out;
}

/** One stream's checkpoints and the header lines of the batch being read, with no I/O. */
export class StreamHeaders {
  private readonly checkpoints: Checkpoint[];
  private added: HeaderLine[] = [];

  constructor(stored: StoredHeaders | undefined) {
    this.checkpoints = stored ? [...stored.checkpoints] : [];
  }

  /** A record that changed the stream's header state. */
  note(text: string, offset: number): void {
    const last = this.checkpoints.at(-1);
    if (last && offset <= last.to) return; // read again: already kept
    if (headerKind(text) === undefined) return;
    this.added.push({ offset, text });
  }

  /** The value to store after the batch, or undefined when the batch changed nothing. */
  take(): StoredHeaders | undefined {
    if (this.added.length === 0) return undefined;
    const added = this.added;
    this.added = [];
    const base = this.checkpoints.at(-1)?.lines ?? [];
    const lines = added.some((l) => l.text.length > MAX_LINE_CHARS) ? null : compact(base, added);
    // a state built on one that could not be kept is not known either
    const known = lines !== null && (this.checkpoints.at(-1)?.lines !== null || startsOver(added[0]!.text));
    this.checkpoints.push({ from: added[0]!.offset, to: added.at(-1)!.offset, lines: known ? lines : null });
    if (this.checkpoints.length > MAX_CHECKPOINTS) this.checkpoints.shift();
    return { v: 1, checkpoints: [...this.checkpoints] };
  }
}

/** A line after which no earlier line of the stream matters (for one-format streams). */
const startsOver = (text: string): boolean => ['vpcflow', '#separator'].includes(headerKind(text)!);

/**
 * Writes a stream's headers unless the stored ones reach further into the log: a replica that
 * lost the partition and writes late cannot take back lines the new owner stored.
 */
const SAVE_UNLESS_FURTHER = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, v = pcall(cjson.decode, cur)
  if ok and type(v) == 'table' and type(v.checkpoints) == 'table' then
    local last = v.checkpoints[#v.checkpoints]
    if type(last) == 'table' and type(last.to) == 'number' and last.to > tonumber(ARGV[2]) then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1`;

/** The Redis edge: `<prefix>:stream-header:<topic>:<partition>`. */
export class StreamHeaderStore {
  /** Keys whose stored value failed validation: the next save replaces it whatever it claims. */
  private readonly invalid = new Set<string>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly log: Logger,
  ) {}

  /** The stream's stored headers; a value that fails validation is ignored, with a warning. */
  async load(topic: string, partition: number): Promise<StoredHeaders | undefined> {
    const key = this.key(topic, partition);
    const json = await this.redis.get(key);
    if (json === null) return undefined;
    const parsed = parseStored(json);
    if (parsed.ok) return parsed.value;
    this.invalid.add(key);
    this.log.warn({ topic, partition, key, reason: parsed.reason }, 'stored stream header ignored: it fails validation');
    return undefined;
  }

  /** False when the stored headers reach further into the log than these (and were kept). */
  async save(topic: string, partition: number, headers: StoredHeaders): Promise<boolean> {
    const key = this.key(topic, partition);
    if (this.invalid.delete(key)) return (await this.redis.set(key, JSON.stringify(headers))) === 'OK';
    const to = headers.checkpoints.at(-1)?.to ?? -1;
    return (await this.redis.eval(SAVE_UNLESS_FURTHER, 1, key, JSON.stringify(headers), String(to))) === 1;
  }

  key(topic: string, partition: number): string {
    return `${this.prefix}:stream-header:${topic}:${partition}`;
  }
}
