import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The service's Prometheus metrics, one registry per service instance. */
export class Metrics {
  readonly registry = new Registry();

  readonly ingestRecords = new Counter({
    name: 'cordon_ingest_records_total',
    help: 'Records read from input topics, by topic and outcome (event, skip, reject).',
    labelNames: ['topic', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly ingestRejects = new Counter({
    name: 'cordon_ingest_rejects_total',
    help: 'Records sent to the dead-letter topic, by topic and reason.',
    labelNames: ['topic', 'reason'] as const,
    registers: [this.registry],
  });

  readonly ingestEvents = new Counter({
    name: 'cordon_ingest_events_total',
    help: 'Normalized events published for correlation, by topic and type.',
    labelNames: ['topic', 'type'] as const,
    registers: [this.registry],
  });

  readonly batchSeconds = new Histogram({
    name: 'cordon_batch_duration_seconds',
    help: 'Time to process one consumer batch until its results are durable, by stage.',
    labelNames: ['stage'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  readonly correlatedEvents = new Counter({
    name: 'cordon_correlate_events_total',
    help: 'Events applied to the correlation engine, and duplicates dropped.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly incidents = new Counter({
    name: 'cordon_incidents_total',
    help: 'Incident changes published, by change type.',
    labelNames: ['change'] as const,
    registers: [this.registry],
  });

  readonly trackedEntities = new Gauge({
    name: 'cordon_correlate_entities',
    help: 'Entities tracked by the correlation engine of this replica.',
    registers: [this.registry],
  });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'cordon_' });
  }
}
