import { z } from 'zod';
import { RULES } from '../correlate/evidence';
import { INCIDENT_STATUSES, SEVERITIES, type Incident } from '../correlate/incident';
import { SERVICE_CLASSES } from '../correlate/ports';
import { ANOMALY_KINDS, Labels, Name } from '../events';

/**
 * An incident read from outside (a file for `cordon playbook test`, a message for the executor):
 * what src/correlate/incident.ts produces, checked at the edge. Unknown fields are dropped, not
 * refused, so a newer engine's incident still loads; the fields playbooks decide on are strict.
 */

const Time = z.number().int().min(0);
const Score = z.number().finite().min(0);
const Key = Name;

/** Becomes part of BullMQ job ids: no ':' and never all digits (it starts with a letter). */
export const IncidentId = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9._-]{0,127}$/, { error: 'expected an incident id such as inc-2ae9f2705bece07d1001' });

export const IncidentEntitySchema = z.object({
  key: Key,
  kind: Name,
  name: Name.optional(),
  ip: z.string().max(64).optional(),
  role: Name,
  roleSource: z.enum(['label', 'inventory', 'observed', 'kind', 'default']),
  position: z.enum(['root', 'pivot', 'target']),
  /** Not produced by the engine today; accepted so label and namespace selectors can use them when it does. */
  namespace: Name.optional(),
  labels: Labels.optional(),
});

const PathEdgeSchema = z.object({
  from: Key,
  to: Key,
  ports: z.array(z.number().int().min(0).max(65535)),
  services: z.array(z.enum(SERVICE_CLASSES)),
  denied: z.number().int().min(0),
  allowed: z.number().int().min(0),
  anomalies: z.array(z.string()),
  firstSeen: Time,
  lastSeen: Time,
});

const EvidenceSchema = z.object({
  items: z.array(
    z.object({
      rule: z.enum(RULES),
      weight: z.number().finite(),
      count: z.number().int().min(0),
      firstSeen: Time,
      lastSeen: Time,
      src: Key,
      dst: Key.optional(),
      port: z.number().int().min(0).max(65535).optional(),
      service: z.enum(SERVICE_CLASSES).optional(),
      anomaly: z.enum(ANOMALY_KINDS).optional(),
      reason: z.string().max(4096),
    }),
  ),
  total: z.number().int().min(0),
  dropped: z.number().int().min(0),
  byRule: z.partialRecord(z.enum(RULES), z.object({ count: z.number().int().min(0), weight: z.number().finite() })),
});

export const IncidentSchema = z
  .object({
    id: IncidentId,
    status: z.enum(INCIDENT_STATUSES),
    severity: z.enum(SEVERITIES),
    score: Score,
    confidence: z.number().min(0).max(1),
    root: Key,
    entities: z.array(IncidentEntitySchema).max(10_000),
    path: z.object({ nodes: z.array(Key), edges: z.array(PathEdgeSchema), edgesDropped: z.number().int().min(0) }),
    techniques: z.array(z.string().regex(/^T\d{4}(\.\d{3})?$/, { error: 'expected an ATT&CK technique id such as T1021.002' })),
    evidence: EvidenceSchema,
    counters: z.object({
      denied: z.number().int().min(0),
      allowed: z.number().int().min(0),
      anomalies: z.number().int().min(0),
      entitiesDropped: z.number().int().min(0),
    }),
    windowStart: Time,
    firstSeen: Time,
    lastSeen: Time,
    version: z.number().int().min(0),
    summary: z.string().max(8192),
  });
export type ParsedIncident = z.output<typeof IncidentSchema>;

/** The part of an incident playbooks read: the engine's Incident and a parsed one both fit. */
export type IncidentEntityView = z.output<typeof IncidentEntitySchema>;
export interface IncidentView {
  id: string;
  severity: ParsedIncident['severity'];
  score: number;
  confidence: number;
  root: string;
  entities: readonly IncidentEntityView[];
  techniques: readonly string[];
  summary: string;
  firstSeen: number;
  lastSeen: number;
}

// Compile-time guarantees: the schema accepts every Incident the engine produces, and both fit the view.
const _acceptsEngine = (i: Incident): z.input<typeof IncidentSchema> => i;
const _engineView = (i: Incident): IncidentView => i;
const _parsedView = (i: ParsedIncident): IncidentView => i;
void _acceptsEngine;
void _engineView;
void _parsedView;
