import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import pkg from '../package.json';

/**
 * The label values each labelled series is known to take, so every series is exported at 0 from
 * start (a rate() or an alert on a series that appears only at its first event misses that event).
 */
export const KNOWN_LABELS = {
  ingestOutcomes: ['event', 'skip', 'reject'],
  ingestEventTypes: ['denied_flow', 'allowed_flow', 'anomaly'],
  /** reasonClass() in ingest/dead-letter.ts; `<format>_invalid_field` is added per input topic. */
  rejectReasons: ['malformed_json', 'forbidden_key', 'unknown_format', 'too_large', 'too_deep', 'not_text', 'empty', 'stale', 'future', 'invalid'],
  batchStages: ['rekey', 'correlate'],
  correlateResults: ['applied', 'duplicate'],
  incidentChanges: ['incident_opened', 'incident_updated', 'policy_gap'],
  quarantineKinds: ['applied', 'released', 'expired', 'failed'],
  consumers: ['rekey', 'correlate', 'contain', 'siem', 'ledger-index'],
  restartedBy: ['kafkajs', 'cordon'],
  checkpointOutcomes: ['written', 'failed'],
  alertSources: ['splunk', 'elastic'],
  alertOutcomes: ['accepted', 'refused', 'unauthorized', 'unavailable'],
} as const;

/** `CORDON_COMMIT` (the image's build argument) when it is a git commit id, for cordon_build_info. */
export function buildCommit(env: Readonly<Record<string, string | undefined>> = process.env): string | undefined {
  const commit = env.CORDON_COMMIT?.trim();
  return commit && /^[0-9a-f]{7,40}$/.test(commit) ? commit : undefined;
}

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

  readonly correlateHandoffs = new Counter({
    name: 'cordon_correlate_handoffs_total',
    help: 'Cross-partition hand-offs of this replica\'s correlation engine, by kind: reached (a campaign met an entity of another partition), forwarded, applied, declined, refused (invalid), bound (an address binding shared), redirected (a bare-address event sent to its holder\'s partition).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly trackedEntities = new Gauge({
    name: 'cordon_correlate_entities',
    help: 'Entities tracked by the correlation engine of this replica.',
    registers: [this.registry],
  });

  readonly quarantineChanges = new Counter({
    name: 'cordon_quarantine_changes_total',
    help: 'Quarantine lease changes recorded in the ledger, by kind (applied, released, expired, failed).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly quarantinesActive = new Gauge({
    name: 'cordon_quarantines_active',
    help: 'Quarantines in force or being applied (live leases), as the registry holds them when scraped.',
    registers: [this.registry],
    collect: async () => {
      const live = await this.sources.liveLeases?.().catch(() => undefined);
      if (live !== undefined) this.quarantinesActive.set(live);
    },
  });

  readonly releaseFailures = new Counter({
    name: 'cordon_release_failures_total',
    help: 'Releases and expiries of a quarantine that failed (the enforcer could not revert) and are tried again with backoff.',
    registers: [this.registry],
  });

  readonly leasesOverdue = new Gauge({
    name: 'cordon_leases_overdue',
    help: 'Live leases past their expiry whose release keeps failing, as the last reconcile found them.',
    registers: [this.registry],
  });

  readonly consumerCrashes = new Counter({
    name: 'cordon_consumer_crashes_total',
    help: 'Kafka consumers that died, by consumer and who restarts them (kafkajs, or cordon when kafkajs does not).',
    labelNames: ['consumer', 'restart'] as const,
    registers: [this.registry],
  });

  readonly consumerRestarts = new Counter({
    name: 'cordon_consumer_restarts_total',
    help: 'Restarts Cordon made of a Kafka consumer that kafkajs left dead, by consumer.',
    labelNames: ['consumer'] as const,
    registers: [this.registry],
  });

  readonly ledgerCheckpoints = new Counter({
    name: 'cordon_ledger_checkpoints_total',
    help: 'Signed checkpoints of the ledger head handed to ledger.checkpoint.store, by outcome (written, failed).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly leader = new Gauge({
    name: 'cordon_leader',
    help: 'Whether this replica leads containment (holds the ledger writer lock): 1 leader, 0 standby.',
    registers: [this.registry],
  });

  readonly leaderSince = new Gauge({
    name: 'cordon_leader_since_seconds',
    help: 'Since when (Unix seconds) this replica has been the leader or a standby.',
    registers: [this.registry],
  });

  readonly leaderTakeovers = new Counter({
    name: 'cordon_leader_takeovers_total',
    help: 'Times this replica took containment over after waiting as a standby.',
    registers: [this.registry],
  });

  readonly flowOverflow = new Counter({
    name: 'cordon_flow_overflow_total',
    help: 'Flows not kept in the flow history: their entity-hour already held flows.maxPerHour distinct flows.',
    registers: [this.registry],
  });

  readonly alerts = new Counter({
    name: 'cordon_alerts_total',
    help: 'SIEM alerts posted to /api/alerts/*, by source and outcome (accepted, refused, unauthorized, unavailable).',
    labelNames: ['source', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly siemDocuments = new Counter({
    name: 'cordon_siem_documents_total',
    help: 'Documents handed to a SIEM since start, by sink and outcome (enqueued, written, duplicate, failed, refused).',
    labelNames: ['sink', 'outcome'] as const,
    registers: [this.registry],
    collect: () => {
      const documents = this.sources.siemDocuments?.();
      if (!documents) return;
      this.siemDocuments.reset();
      for (const [sink, outcomes] of Object.entries(documents)) {
        for (const [outcome, n] of Object.entries(outcomes)) this.siemDocuments.inc({ sink, outcome }, n);
      }
    },
  });

  readonly siemPending = new Gauge({
    name: 'cordon_siem_pending',
    help: 'Documents waiting for Elasticsearch in the durable outbox (it is down, or behind).',
    labelNames: ['sink'] as const,
    registers: [this.registry],
    collect: async () => {
      const pending = await this.sources.siemPending?.().catch(() => undefined);
      if (pending !== undefined) this.siemPending.set({ sink: 'elasticsearch' }, pending);
    },
  });

  readonly buildInfo = new Gauge({
    name: 'cordon_build_info',
    help: 'Always 1; the labels say which Cordon runs: version, node (the runtime), commit (when the build said).',
    labelNames: ['version', 'node', 'commit'] as const,
    registers: [this.registry],
  });

  private sources: MetricSources = {};

  /** Figures that other parts of the service own, read when Prometheus scrapes. */
  watch(sources: MetricSources): void {
    this.sources = { ...this.sources, ...sources };
  }

  /** Node's default metrics keep their stock names (process_*, nodejs_*), so stock dashboards find them. */
  constructor(opts: { defaultMetrics?: boolean; commit?: string } = {}) {
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    const commit = opts.commit ?? buildCommit();
    this.buildInfo.set({ version: pkg.version, node: process.version, ...(commit ? { commit } : {}) }, 1);
    this.zeroFixed();
  }

  /** Zero-initialises the series of each input topic (their format names one more reject reason). */
  knowInputs(inputs: ReadonlyArray<{ topic: string; format: string }>): void {
    const k = KNOWN_LABELS;
    for (const { topic, format } of inputs) {
      for (const outcome of k.ingestOutcomes) this.ingestRecords.inc({ topic, outcome }, 0);
      for (const type of k.ingestEventTypes) this.ingestEvents.inc({ topic, type }, 0);
      const reasons = format === 'auto' ? k.rejectReasons : [...k.rejectReasons, `${format}_invalid_field`];
      for (const reason of reasons) this.ingestRejects.inc({ topic, reason }, 0);
    }
  }

  private zeroFixed(): void {
    const k = KNOWN_LABELS;
    for (const stage of k.batchStages) this.batchSeconds.zero({ stage });
    for (const result of k.correlateResults) this.correlatedEvents.inc({ result }, 0);
    for (const change of k.incidentChanges) this.incidents.inc({ change }, 0);
    for (const kind of k.quarantineKinds) this.quarantineChanges.inc({ kind }, 0);
    for (const consumer of k.consumers) {
      this.consumerRestarts.inc({ consumer }, 0);
      for (const restart of k.restartedBy) this.consumerCrashes.inc({ consumer, restart }, 0);
    }
    for (const outcome of k.checkpointOutcomes) this.ledgerCheckpoints.inc({ outcome }, 0);
    for (const source of k.alertSources) for (const outcome of k.alertOutcomes) this.alerts.inc({ source, outcome }, 0);
  }
}

export interface MetricSources {
  liveLeases?: () => Promise<number>;
  /** Documents per sink and outcome, since start. */
  siemDocuments?: () => Record<string, Record<string, number>>;
  siemPending?: () => Promise<number>;
}
