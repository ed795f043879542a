import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { WORKLOAD_KINDS, type AnomalyEntity, type WorkloadKind } from '../events';

/**
 * What both alert sources share: reading an entity, a score and a time out of the loose strings a
 * SIEM sends, and naming the anomaly. Pure.
 */

// C0/C1 controls, zero-width and bidi marks: Anomaly names refuse them, so they are dropped here.
const CONTROL_OR_INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;
const HOSTNAME = /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*\.?$/;
const KEY = new RegExp(`^(${WORKLOAD_KINDS.join('|')}|ip):(.+)$`);

/** A printable name of at most `max` characters. */
export function cleanName(text: string, max = 256): string {
  return text.replace(CONTROL_OR_INVISIBLE, '').trim().slice(0, max);
}

/**
 * The entity a value names: a Cordon entity key (`host:ws5.corp`, `pod:payments/api-7f9c`,
 * `ip:10.0.0.5`), an IP address, or a host name (keyed by its lower-case name, as the Windows
 * normalizer keys hosts). Undefined when the value is none of these.
 */
export function entityOf(value: string): AnomalyEntity | undefined {
  const v = value.trim();
  if (v === '') return undefined;
  const key = KEY.exec(v);
  if (key) return fromKey(key[1] as WorkloadKind | 'ip', key[2]!);
  if (isIP(v)) return { ip: v };
  if (HOSTNAME.test(v) && v.length <= 253) return host(v);
  return undefined;
}

function fromKey(kind: WorkloadKind | 'ip', rest: string): AnomalyEntity | undefined {
  if (kind === 'ip') return isIP(rest) ? { ip: rest } : undefined;
  const name = cleanName(rest);
  if (name === '' || name !== rest) return undefined;
  const slash = rest.indexOf('/');
  if (slash > 0 && slash < rest.length - 1) {
    const id = rest.slice(slash + 1);
    return { kind, id, name: id, namespace: rest.slice(0, slash), labels: {} };
  }
  return { kind, id: rest, name: kind === 'host' ? shortName(rest) : rest, labels: {} };
}

function host(name: string): AnomalyEntity {
  const n = name.replace(/\.$/, '');
  return { kind: 'host', id: n.toLowerCase(), name: shortName(n), labels: {} };
}

function shortName(host: string): string {
  const dot = host.indexOf('.');
  return dot > 0 ? host.slice(0, dot) : host;
}

/** The first valid IP address in a value that may hold several (`a,b`, `["a","b"]`, a list). */
export function firstIp(value: string | readonly string[]): string | undefined {
  const parts = (Array.isArray(value) ? value : [value as string]).flatMap((v) => v.split(/[\s,;\[\]"]+/));
  return parts.find((p) => isIP(p) !== 0);
}

const WORDS: Readonly<Record<string, number>> = {
  critical: 1,
  high: 0.8,
  medium: 0.6,
  low: 0.4,
  informational: 0.2,
  info: 0.2,
};

/** A score in 0..1 from 0..1, 0..100 (risk scores) or a severity word; undefined when unreadable. */
export function scoreOf(value: string | number | undefined): number | undefined {
  if (value === undefined) return undefined;
  const text = String(value).trim().toLowerCase();
  if (text in WORDS) return WORDS[text];
  if (!/^\d+(\.\d+)?$/.test(text)) return undefined;
  const n = Number(text);
  if (n <= 1) return n;
  if (n <= 100) return n / 100;
  return undefined;
}

/** Epoch ms from epoch seconds (Splunk's `_time`), epoch ms, or an ISO-8601 time; undefined when unreadable. */
export function timeOf(value: string | number | undefined): number | undefined {
  if (value === undefined) return undefined;
  const text = String(value).trim();
  if (/^\d+(\.\d+)?$/.test(text)) {
    const n = Number(text);
    return Math.round(n < 1e11 ? n * 1000 : n);
  }
  if (!/^\d{4}-\d{2}-\d{2}T/.test(text)) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

/** A stable anomaly id: the SIEM's own id when it is a usable name, else a digest of it. */
export function anomalyId(source: string, ...parts: string[]): string {
  const raw = `${source}-${parts.join('-')}`;
  const clean = cleanName(raw, 200);
  if (clean === raw && /^[A-Za-z0-9._:@\/-]+$/.test(raw)) return raw;
  return `${source}-${createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 32)}`;
}
