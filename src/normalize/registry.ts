import { DEFAULT_JSON_LIMITS, parseJson, sizeProblem } from '../validation';
import { calico } from './calico';
import { escapeInvisible, isJsonObject, show } from './common';
import { cordon } from './cordon';
import { hubble } from './hubble';
import { illumio } from './illumio';
import { ocsf } from './ocsf';
import { reject, type Format, type Normalizer, type Outcome, type RawRecord, type StreamContext } from './normalizer';
import { vpcflow } from './vpcflow';
import { wfp } from './wfp';
import { zeek } from './zeek';

/** The normalizer of each format. */
export const NORMALIZERS: Readonly<Record<Format, Normalizer>> = { wfp, hubble, calico, vpcflow, illumio, zeek, ocsf, cordon };

/**
 * Detection order for `auto`: most specific first. Cordon's own JSON before the vendors (its
 * `action: "denied"` is not Calico's `action: "deny"`), the text formats last (Zeek TSV only once
 * its stream has given a Zeek header).
 */
const DETECTION_ORDER: readonly Normalizer[] = [cordon, ocsf, hubble, calico, illumio, zeek, wfp, vpcflow];

export const DEFAULT_MAX_RECORD_BYTES = 1024 * 1024;

export interface NormalizeOptions {
  /** Records larger than this (UTF-8 bytes) are rejected before any parsing. Default 1 MiB. */
  maxBytes?: number;
  /** JSON records nested deeper than this are rejected before parsing. Default 64. */
  maxDepth?: number;
}

const DEFAULTS: NormalizeOptions = {};

export function normalizerFor(format: Format): Normalizer {
  return NORMALIZERS[format];
}

/** The first format whose cheap detector recognizes the record, or undefined. */
export function detectFormat(record: RawRecord): Format | undefined {
  return detect(record)?.format;
}

function detect(record: RawRecord, ctx?: StreamContext): Normalizer | undefined {
  for (const n of DETECTION_ORDER) if (n.detect(record, ctx)) return n;
  return undefined;
}

function encodingCheck(text: string): string | undefined {
  const bad = text.indexOf('\uFFFD');
  if (bad !== -1) return `not text: invalid UTF-8 or binary data (replacement character U+FFFD at offset ${bad})`;
  const nul = text.indexOf('\u0000');
  if (nul !== -1) return `not text: NUL character at offset ${nul}`;
  return undefined;
}

function looksLikeJson(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 32 || c === 9 || c === 10 || c === 13) continue;
    return c === 123 /* { */ || c === 91 /* [ */;
  }
  return false;
}

function describeUnknown(record: RawRecord): string {
  const j = record.json;
  if (Array.isArray(j)) return 'unknown format: a JSON array (send one record per message)';
  if (isJsonObject(j)) {
    const keys = Object.keys(j);
    const shown = keys.slice(0, 6).map((k) => show(k)).join(', ');
    return `unknown format: a JSON object no normalizer recognizes (keys: ${shown}${keys.length > 6 ? ', ...' : ''})`;
  }
  if (j !== undefined) return `unknown format: a bare JSON ${j === null ? 'null' : typeof j}`;
  return `unknown format: text no normalizer recognizes (starts ${show(record.text.slice(0, 32))})`;
}

/**
 * Normalizes one raw record: refuses oversize text, non-text and JSON nested too deep before
 * parsing, parses JSON once (refusing prototype-pollution keys), picks the normalizer (given or
 * detected) and runs it.
 * `ctx` is the per-stream state (one per file / partition), used by VPC flow log headers.
 */
export function normalizeRecord(
  text: string,
  format: Format | 'auto',
  ctx: StreamContext,
  options: NormalizeOptions = DEFAULTS,
): Outcome {
  if (format !== 'auto' && !Object.hasOwn(NORMALIZERS, format)) {
    return reject(`unknown format: ${show(format)} is not one of ${Object.keys(NORMALIZERS).join(', ')}`);
  }
  return intake(text, format === 'auto' ? undefined : NORMALIZERS[format], ctx, options);
}

/**
 * normalizeRecord with the normalizer given (undefined: detected), so a benchmark or test can run
 * the same intake with another implementation of a format (e.g. hubbleSchemaOnly).
 */
export function intake(text: string, given: Normalizer | undefined, ctx: StreamContext, options = DEFAULTS): Outcome {
  const format = given?.format ?? 'auto';
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_RECORD_BYTES;
  const problem = sizeProblem(text, maxBytes) ?? encodingCheck(text);
  if (problem) return reject(problem);
  const record: RawRecord = { text };
  if (format === 'auto' || format === 'zeek' ? looksLikeJson(text) : format !== 'vpcflow') {
    const parsed = parseJson(text, { maxBytes, maxDepth: options.maxDepth ?? DEFAULT_JSON_LIMITS.maxDepth });
    if (!parsed.ok) {
      const reason = escapeInvisible(parsed.reason); // V8 quotes a snippet of the input
      return reject(format === 'auto' ? reason : `${format}: ${reason}`);
    }
    record.json = parsed.value;
  }
  const normalizer = given ?? detect(record, ctx);
  if (!normalizer) return reject(describeUnknown(record));
  return normalizer.normalize(record, ctx);
}
