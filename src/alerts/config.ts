import { z } from 'zod';

/**
 * The `alerts` section: SIEM detections posted to Cordon (Splunk's webhook alert action, Kibana's
 * webhook connector) become anomaly events. Each source has its own shared secrets, stored as
 * SHA-256 digests like API tokens, so a secret configured in a SIEM can post alerts and nothing else.
 */

const FieldName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_.]{0,127}$/, 'expected a field name');

export const AlertSecret = z.object({
  name: z.string().min(1).max(128),
  /** SHA-256 hex of the secret; the secret itself is never stored. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected the SHA-256 hex of the secret'),
});
export type AlertSecret = z.infer<typeof AlertSecret>;

const Secrets = z.array(AlertSecret).default([]);

export const AlertsConfig = z
  .object({
    enabled: z.boolean().default(true),
    /** Where anomalies go; by default the input topic whose format is `cordon` (else the first `auto` one). */
    topic: z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, 'expected a Kafka topic name').optional(),
    /** The score of an alert that carries none Cordon can read (0..1). */
    defaultScore: z.number().min(0).max(1).default(0.8),
    /** Alerts in one request (a Kibana summary of many alerts); more is a 400. */
    maxAlertsPerRequest: z.number().int().min(1).max(10_000).default(500),
    splunk: z
      .object({
        secrets: Secrets,
        /** Fields of the result row naming the entity, first non-empty one wins. */
        entityFields: z
          .array(FieldName)
          .min(1)
          .default(['cordon_entity', 'dest', 'dest_host', 'dest_nt_host', 'dest_ip', 'src', 'src_host', 'src_ip', 'host']),
        /** Fields of the result row holding a score (0..1, 0..100, or a word such as high). */
        scoreFields: z.array(FieldName).default(['cordon_score', 'risk_score', 'urgency', 'severity']),
      })
      .prefault({}),
    elastic: z.object({ secrets: Secrets }).prefault({}),
  })
  .prefault({});
export type AlertsConfig = z.infer<typeof AlertsConfig>;
