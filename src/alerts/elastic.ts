import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Anomaly } from '../events';
import { anomalyId, cleanName, entityOf, firstIp, scoreOf, timeOf } from './anomaly';
import type { AlertsConfig } from './config';
import type { Conversion } from './splunk';

/**
 * Kibana's webhook connector posts whatever body its template renders. Cordon takes the body of
 * the template in docs/connectors/inbound-alerts.md: the rule, and one entry per alert with the
 * entity (`entity`, `host` or `ip`), a risk score or severity, and the alert's time. Mustache
 * renders a missing field as an empty string, so empty strings count as absent.
 */

const empty = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
const Text = (max: number) => z.preprocess(empty, z.string().max(max).optional());

const ElasticAlertEntry = z.object({
  id: Text(512),
  timestamp: Text(64),
  entity: Text(512),
  host: Text(253),
  ip: z.preprocess(empty, z.union([z.string().max(1024), z.array(z.string().max(64)).max(32)]).optional()),
  user: Text(256),
  riskScore: z.preprocess(empty, z.union([z.number(), z.string().max(16)]).optional()),
  severity: Text(32),
  reason: Text(2048),
});
type ElasticAlertEntry = z.infer<typeof ElasticAlertEntry>;

export const ElasticAlert = z.object({
  rule: z.object({ id: z.string().min(1).max(256), name: z.string().min(1).max(1024), url: Text(4096) }),
  date: Text(64),
  alerts: z.array(ElasticAlertEntry).min(1),
});
export type ElasticAlert = z.infer<typeof ElasticAlert>;

/** One anomaly per alert of the rule's run, or what is wrong with the first bad one (naming it). */
export function elasticToAnomalies(body: ElasticAlert, config: AlertsConfig, now: number): Conversion {
  if (body.alerts.length > config.maxAlertsPerRequest) {
    return { ok: false, message: `body.alerts: ${body.alerts.length} alerts, at most ${config.maxAlertsPerRequest} in one request` };
  }
  const ruleTime = body.date === undefined ? now : timeOf(body.date);
  if (ruleTime === undefined) return { ok: false, message: `body.date: "${cleanName(body.date ?? '', 40)}" is not an ISO-8601 time` };
  const anomalies: Anomaly[] = [];
  for (const [i, a] of body.alerts.entries()) {
    const converted = convert(body, a, i, ruleTime, config);
    if (typeof converted === 'string') return { ok: false, message: converted };
    anomalies.push(converted);
  }
  return { ok: true, anomalies };
}

function convert(body: ElasticAlert, a: ElasticAlertEntry, i: number, ruleTime: number, config: AlertsConfig): Anomaly | string {
  const where = `body.alerts.${i}`;
  const ip = a.ip === undefined ? undefined : firstIp(a.ip);
  const named = a.entity ?? a.host ?? ip;
  if (named === undefined) return `${where}: no entity; expected one of entity, host, ip`;
  const entity = entityOf(named);
  const field = a.entity !== undefined ? 'entity' : a.host !== undefined ? 'host' : 'ip';
  if (!entity) return `${where}.${field}: "${cleanName(named, 80)}" is not a host name, an IP address or a Cordon entity key`;
  const time = a.timestamp === undefined ? ruleTime : timeOf(a.timestamp);
  if (time === undefined) return `${where}.timestamp: "${cleanName(a.timestamp ?? '', 40)}" is not an ISO-8601 time`;
  const score = scoreOf(a.riskScore) ?? scoreOf(a.severity) ?? config.defaultScore;
  const detail: Record<string, unknown> = { source: 'elastic', rule: cleanName(body.rule.name), ruleId: cleanName(body.rule.id), entityField: field };
  if (body.rule.url) detail.link = cleanName(body.rule.url, 2048);
  if (a.user) detail.user = cleanName(a.user);
  if (a.severity) detail.severity = cleanName(a.severity, 32);
  if (a.reason) detail.reason = cleanName(a.reason, 2048);
  if (a.id) detail.alertId = cleanName(a.id, 512);
  const id = a.id
    ? anomalyId('elastic', a.id)
    : anomalyId('elastic', createHash('sha256').update(`${body.rule.id}\u0000${body.date ?? ''}\u0000${i}\u0000${named}`).digest('hex').slice(0, 32));
  return { id, time, entity, kind: 'siem_alert', score, detector: cleanName(`elastic:${body.rule.name}`), detail };
}
