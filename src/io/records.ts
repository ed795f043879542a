import { DEFAULT_MAX_RECORD_BYTES } from '../normalize/registry';
import { readLines } from './lines';

/**
 * Telemetry files as records: a line of text (VPC flow logs, Zeek TSV, JSON lines) is a record;
 * a JSON value spread over lines (pretty-printed) is one record; the elements of a top-level JSON
 * array (an Illumio PCE traffic download, Calico's documented examples) are one record each. A
 * JSON line stays byte for byte the line, so its event ids do not change.
 */
export async function* readRecords(
  file: string,
  onBytes?: (bytesRead: number) => void,
  maxBytes = DEFAULT_MAX_RECORD_BYTES,
): AsyncGenerator<string> {
  const split = new JsonRecordSplitter(maxBytes);
  for await (const line of readLines(file, onBytes)) yield* split.push(line);
  yield* split.end();
}

const isSpace = (c: number) => c === 32 || c === 9 || c === 13 || c === 10;
const OPEN = new Set([123, 91]); // { [
const CLOSE = new Set([125, 93]); // } ]

/**
 * Splits lines into records (see readRecords). Bounded: a value longer than `maxBytes` characters
 * is cut to maxBytes + 1 (so the intake refuses it as oversize) and the rest of it is dropped.
 */
export class JsonRecordSplitter {
  private parts: string[] = [];
  private size = 0;
  private inValue = false;
  private inArray = false;
  private depth = 0;
  private inString = false;
  private escape = false;

  constructor(private readonly maxBytes: number) {}

  push(line: string): string[] {
    if (!this.inValue && !this.inArray && !startsJson(line)) return [line];
    const out: string[] = [];
    let start = this.inValue ? 0 : -1;
    for (let i = 0; i < line.length; i++) {
      const c = line.charCodeAt(i);
      if (!this.inValue) {
        if (isSpace(c)) continue;
        if (this.inArray && c === 44 /* , */) continue;
        if (this.inArray && c === 93 /* ] */) {
          this.inArray = false;
          continue;
        }
        if (!this.inArray && c === 91 /* [ */) {
          this.inArray = true;
          continue;
        }
        this.inValue = true;
        start = i;
        if (OPEN.has(c)) this.depth = 1;
        else if (c === 34 /* " */) this.inString = true;
        continue;
      }
      if (this.inString) {
        if (this.escape) this.escape = false;
        else if (c === 92 /* \ */) this.escape = true;
        else if (c === 34) {
          this.inString = false;
          if (this.depth === 0) start = this.emit(out, line, start, i + 1);
        }
        continue;
      }
      if (this.depth === 0) {
        // a bare literal (number, true, false, null) ends at a delimiter
        if (isSpace(c) || c === 44 || c === 93) {
          start = this.emit(out, line, start, i);
          i--;
        }
        continue;
      }
      if (c === 34) this.inString = true;
      else if (OPEN.has(c)) this.depth++;
      else if (CLOSE.has(c) && --this.depth === 0) start = this.emit(out, line, start, i + 1);
    }
    if (this.inValue) {
      if (this.depth === 0 && !this.inString) start = this.emit(out, line, start, line.length);
      else this.keep(`${line.slice(Math.max(start, 0))}\n`);
    }
    return out;
  }

  /** What is left at the end of the file: an unfinished value, for the intake to refuse. */
  end(): string[] {
    if (!this.inValue) return [];
    const text = this.parts.join('').trimEnd();
    this.reset();
    return text.length > 0 ? [text] : [];
  }

  /** Ends the value at line[start..endAt); returns -1 (no value open). */
  private emit(out: string[], line: string, start: number, endAt: number): number {
    this.keep(line.slice(start, endAt));
    out.push(this.parts.join(''));
    this.reset();
    return -1;
  }

  private keep(text: string): void {
    const room = this.maxBytes + 1 - this.size;
    if (room <= 0) return;
    const kept = text.length > room ? text.slice(0, room) : text;
    this.parts.push(kept);
    this.size += kept.length;
  }

  private reset(): void {
    this.parts = [];
    this.size = 0;
    this.inValue = false;
    this.depth = 0;
    this.inString = false;
    this.escape = false;
  }
}

function startsJson(line: string): boolean {
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (isSpace(c)) continue;
    return OPEN.has(c);
  }
  return false;
}
