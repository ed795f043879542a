import { z } from 'zod';
import { AllowedFlow, Anomaly, DeniedFlow, EventTime } from '../events';
import { events, reject, type Normalizer, type Outcome, type RawRecord } from './normalizer';
import { IsoTime, isJsonObject, rejectReason, show } from './common';

/**
 * The canonical Cordon JSON: exactly the contracts of events.ts serialized, with `time` as epoch
 * milliseconds or an ISO-8601 string with a zone, and an optional `"type"` of "denied_flow",
 * "allowed_flow" or "anomaly" (without it: `action` tells a flow, `entity` an anomaly).
 * Anomalies arrive only in this format. Unknown keys (including `type`) are dropped, not copied.
 */

const Time = z.union([EventTime, IsoTime], { error: 'expected epoch milliseconds or an ISO-8601 time with a zone' });

const SCHEMAS = {
  denied_flow: DeniedFlow.extend({ time: Time }),
  allowed_flow: AllowedFlow.extend({ time: Time }),
  anomaly: Anomaly.extend({ time: Time }),
} as const;
type CordonType = keyof typeof SCHEMAS;

function typeOf(json: Record<string, unknown>): CordonType | string {
  if (json.type !== undefined) return typeof json.type === 'string' ? json.type : show(json.type);
  if (json.action === 'denied') return 'denied_flow';
  if (json.action === 'allowed') return 'allowed_flow';
  if ('entity' in json) return 'anomaly';
  return 'unknown';
}

function normalize(record: RawRecord): Outcome {
  const json = record.json;
  if (!isJsonObject(json)) return reject('cordon: expected a JSON object');
  const type = typeOf(json);
  if (!Object.hasOwn(SCHEMAS, type)) {
    return reject(
      type === 'unknown'
        ? 'cordon: type: required when neither action ("denied"/"allowed") nor entity is given'
        : `cordon: type: expected "denied_flow", "allowed_flow" or "anomaly", got ${show(json.type)}`,
    );
  }
  const parsed = SCHEMAS[type as CordonType].safeParse(json);
  if (!parsed.success) return reject(rejectReason('cordon', parsed.error));
  return events(parsed.data);
}

export const cordon: Normalizer = {
  format: 'cordon',
  detect: (record) => {
    const j = record.json;
    if (!isJsonObject(j)) return false;
    if (j.type === 'denied_flow' || j.type === 'allowed_flow' || j.type === 'anomaly') return true;
    return ((j.action === 'denied' || j.action === 'allowed') && 'observer' in j) || ('entity' in j && 'detector' in j);
  },
  normalize,
};
