import { z } from 'zod';
import type { Anomaly } from '../events';
import { anomalyId, cleanName, entityOf, scoreOf, timeOf } from './anomaly';
import type { AlertsConfig } from './config';

/**
 * Splunk's webhook alert action: a POST of `{result, sid, results_link, search_name, owner, app}`,
 * where `result` is the first row of the triggering search (values are strings, or lists of strings
 * for multivalue fields). The search names the entity in one of `alerts.splunk.entityFields`
 * (best: `| eval cordon_entity=...`), optionally a score, and `_time`.
 */

const Value = z.union([z.string().max(8192), z.number(), z.boolean(), z.null(), z.array(z.string().max(8192)).max(100)]);

export const SplunkAlert = z.object({
  sid: z.string().min(1).max(1024),
  search_name: z.string().max(1024).nullish(),
  results_link: z.string().max(8192).nullish(),
  owner: z.string().max(256).nullish(),
  app: z.string().max(256).nullish(),
  result: z.record(z.string().max(256), Value),
});
export type SplunkAlert = z.infer<typeof SplunkAlert>;

export type Conversion = { ok: true; anomalies: Anomaly[] } | { ok: false; message: string };

function text(v: z.infer<typeof Value> | undefined): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (Array.isArray(v)) return v.find((x) => x.trim() !== '');
  const s = String(v);
  return s.trim() === '' ? undefined : s;
}

/** The anomaly one Splunk alert stands for, or what is missing from it (naming the field). */
export function splunkToAnomalies(alert: SplunkAlert, config: AlertsConfig, now: number): Conversion {
  const { entityFields, scoreFields } = config.splunk;
  let entity: Anomaly['entity'] | undefined;
  let field: string | undefined;
  for (const f of entityFields) {
    const v = text(alert.result[f]);
    if (v === undefined) continue;
    entity = entityOf(v);
    field = f;
    if (!entity) return { ok: false, message: `body.result.${f}: "${cleanName(v, 80)}" is not a host name, an IP address or a Cordon entity key` };
    break;
  }
  if (!entity || !field) return { ok: false, message: `body.result: no entity; expected one of the fields ${entityFields.join(', ')}` };

  const rawTime = text(alert.result._time);
  const time = rawTime === undefined ? now : timeOf(rawTime);
  if (time === undefined) return { ok: false, message: `body.result._time: "${cleanName(rawTime ?? '', 40)}" is not epoch seconds or an ISO-8601 time` };

  let score: number | undefined;
  for (const f of scoreFields) {
    score = scoreOf(text(alert.result[f]));
    if (score !== undefined) break;
  }
  const search = alert.search_name ? cleanName(alert.search_name) : undefined;
  const detail: Record<string, unknown> = { source: 'splunk', sid: cleanName(alert.sid, 1024), entityField: field };
  if (search) detail.search = search;
  if (alert.results_link) detail.link = cleanName(alert.results_link, 2048);
  if (alert.owner) detail.owner = cleanName(alert.owner);
  if (alert.app) detail.app = cleanName(alert.app);
  return {
    ok: true,
    anomalies: [
      {
        id: anomalyId('splunk', alert.sid),
        time,
        entity,
        kind: 'siem_alert',
        score: score ?? config.defaultScore,
        detector: cleanName(`splunk:${search || 'alert'}`),
        detail,
      },
    ],
  };
}
