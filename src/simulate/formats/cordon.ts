import type { Anomaly, AnomalyEntity } from '../../events';
import type { AnomalyActivity } from '../activity';
import type { Entity } from '../topology';

/**
 * Canonical Cordon JSON for anomalies: the `Anomaly` contract of events.ts, one object a line.
 * The entity is named the way the flow telemetry about it names it, so the correlator can join
 * the two: a pod by its workload (kind pod, id = pod name, namespace, labels, as Hubble and
 * Calico name it), a host by its address (what an IdP's logon record or a flow baseline knows).
 */

export class CordonWriter {
  private seq = 0;

  constructor(private readonly scenario: string) {}

  record(a: AnomalyActivity): string {
    const anomaly: Anomaly = {
      id: `sim:${this.scenario}:${a.kind}:${++this.seq}`,
      time: Math.floor(a.t),
      entity: anomalyEntity(a.entity),
      kind: a.kind,
      score: Math.round(a.score * 1000) / 1000,
      detector: a.detector,
    };
    if (a.detail) anomaly.detail = a.detail;
    return JSON.stringify(anomaly);
  }
}

export function anomalyEntity(e: Entity): AnomalyEntity {
  if (e.role === 'pod' && e.namespace) {
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(e.labels)) if (k !== 'pod-template-hash') labels[k] = v;
    return { kind: 'pod', id: e.name, name: e.name, namespace: e.namespace, labels };
  }
  return { ip: e.ip };
}
