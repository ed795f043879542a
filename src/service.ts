import { hostname } from 'node:os';
import Redis from 'ioredis';
import type { Kafka } from './kafka';
import type { Config } from './config';
import { Containment, type IncidentDecision } from './contain/containment';
import { Leadership } from './contain/leadership';
import { registerForwarding } from './http/forward';
import { Correlator } from './correlate/correlator';
import { AlertPublisher, alertTopic } from './alerts/publisher';
import { registerAlertRoutes } from './alerts/routes';
import { enforcersFrom, prepareEnforcers } from './enforcer/registry';
import { registerConsole } from './console/console';
import { LedgerIndex } from './ledger/incident-index';
import { checkpointStage } from './ledger/checkpoint-stage';
import { FlowHistory } from './flows/history';
import { FlowRecorder } from './flows/recorder';
import { registerApi } from './http/api';
import { Unavailable } from './http/errors';
import { registerIncidentRoutes } from './incidents/routes';
import { StatusRequests } from './incidents/status-requests';
import { registerConsoleApi } from './http/console-api';
import { registerEventStream } from './http/event-stream';
import { createHttpServer, type HttpServer } from './http/server';
import { Rekey } from './ingest/rekey';
import { cordonTopics, createKafka, ensureTopics } from './kafka';
import type { Logger } from './logger';
import { Metrics } from './metrics';
import { SiemStage } from './siem/stage';

/** A part of the service with a lifecycle; started in order, stopped in reverse. */
interface Stage {
  name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The whole Cordon process: wires the stages from one config, starts them in order, and stops
 * them in reverse so that each batch in flight finishes and commits before its consumer leaves.
 */
export class Service {
  readonly metrics = new Metrics();
  readonly kafka: Kafka;
  readonly redis: Redis;
  readonly http: HttpServer;
  readonly correlator: Correlator;
  readonly containment: Containment | undefined;
  /** Which replica leads containment (holds the ledger lock); the others are hot standbys. */
  readonly leadership: Leadership | undefined;
  /** Incidents, ledger records and dead letters to Elasticsearch / Splunk, when either is on. */
  readonly siem: SiemStage | undefined;
  /** SIEM alerts posted to /api/alerts/* to the anomalies topic. */
  readonly alerts: AlertPublisher | undefined;
  private readonly stages: Stage[] = [];
  private started: Stage[] = [];

  constructor(
    readonly config: Config,
    readonly log: Logger,
  ) {
    this.kafka = createKafka(config, log);
    this.metrics.knowInputs(config.kafka.inputs);
    this.redis = new Redis(config.redis.url, { lazyConnect: true, maxRetriesPerRequest: 3 });
    const rekey = new Rekey({ kafka: this.kafka, config, log: log.child({ stage: 'rekey' }), metrics: this.metrics });
    const flows = new FlowHistory(this.redis, config.redis.keyPrefix, {
      log: log.child({ component: 'flows' }),
      maxPerHour: config.flows.maxPerHour,
      onOverflow: (n) => this.metrics.flowOverflow.inc(n),
    });
    this.correlator = new Correlator({
      kafka: this.kafka,
      redis: this.redis,
      config,
      log: log.child({ stage: 'correlate' }),
      metrics: this.metrics,
      flows: new FlowRecorder(flows),
    });
    const correlator = this.correlator;
    const enforcers = enforcersFrom(config, this.redis, log);
    const statusRequests = new StatusRequests(this.kafka, config.kafka.topics.lifecycle);
    this.containment = config.contain.enabled
      ? new Containment({
          kafka: this.kafka,
          redis: this.redis,
          bullConnection: () => new Redis(config.redis.url, { maxRetriesPerRequest: null }),
          config,
          enforcers,
          statusRequests,
          metrics: this.metrics,
          log: log.child({ stage: 'contain' }),
          onLockLost: (err) => this.leadership?.lost(err),
        })
      : undefined;
    const containment = this.containment;
    // Checkpoints sign the leader's head: they run with each term of leadership.
    const checkpoints = containment && config.ledger.checkpoint ? checkpointStage(config, log, () => containment.ledger, this.metrics) : undefined;
    const selfUrl = () => advertisedUrl(config, this.http.server.address());
    this.leadership = containment
      ? new Leadership({
          redis: this.redis,
          prefix: config.redis.keyPrefix,
          url: selfUrl,
          term: {
            start: async (waitMs) => {
              const term = await containment.start(waitMs);
              try {
                await checkpoints?.start();
              } catch (err) {
                await containment.stop();
                throw err;
              }
              return term;
            },
            stop: async (opts) => {
              await checkpoints?.stop();
              await containment.stop(opts);
            },
          },
          firstWaitMs: config.contain.lockWaitMs,
          metrics: this.metrics,
          log: log.child({ stage: 'contain' }),
        })
      : undefined;
    const leadership = this.leadership;
    const standby = () => leadership !== undefined && !leadership.leading;
    const siem = SiemStage.wanted(config) ? new SiemStage({ kafka: this.kafka, redis: this.redis, config, log: log.child({ stage: 'siem' }), metrics: this.metrics }) : undefined;
    this.siem = siem;
    const alertsTo = config.alerts.enabled ? alertTopic(config) : undefined;
    if (config.alerts.enabled && !alertsTo) log.warn('no input topic reads Cordon anomalies (format cordon or auto): /api/alerts/* is off');
    const alerts = alertsTo ? new AlertPublisher(this.kafka, alertsTo) : undefined;
    this.alerts = alerts;
    this.metrics.watch({
      ...(containment ? { liveLeases: async () => (containment.isRunning() ? containment.quarantines.registry.liveCount() : 0) } : {}),
      ...(siem ? { siemDocuments: () => siem.documentCounts() } : {}),
      ...(siem?.elasticsearch ? { siemPending: () => siem.elasticsearch!.pending() } : {}),
    });
    this.http = createHttpServer({
      log,
      metrics: this.metrics,
      limits: config.http,
      checks: [
        { name: 'redis', check: async () => void (await this.redis.ping()) },
        { name: 'kafka', check: () => this.checkKafka() },
        { name: 'rekey', check: async () => refuse(rekey.isRunning() ? rekey.consumerTrouble() : 'consumer not running') },
        { name: 'correlate', check: async () => refuse(correlator.isRunning() ? correlator.consumerTrouble() : 'consumer not running') },
        ...(leadership ? [{ name: 'leadership', check: () => leadershipCheck(leadership) }] : []),
        ...(containment ? [{ name: 'contain', check: async () => refuse(standby() ? undefined : containment.isRunning() ? containment.consumerTrouble() : 'containment not running') }] : []),
        ...(containment ? [{ name: 'ledger', check: async () => refuse(standby() ? undefined : containment.isRunning() ? containment.ledger.unwritable : 'containment, which writes the ledger, is not running') }] : []),
        ...(siem ? [{ name: 'siem', check: async () => refuse(siem.isRunning() ? siem.consumerTrouble() : 'consumer not running') }] : []),
        { name: 'ledger-index', check: async () => refuse(ledgerIndex.isRunning() ? ledgerIndex.consumerTrouble() : 'consumer not running') },
        ...(checkpoints ? [{ name: 'ledger-checkpoints', check: async () => refuse(standby() ? undefined : checkpoints.trouble()) }] : []),
      ],
    });
    if (leadership) registerForwarding(this.http, { leaderUrl: async () => (standby() ? (await leadership.leader())?.url : undefined), self: selfUrl });
    registerApi(this.http, {
      containment: () => (containment?.isRunning() ? containment : undefined),
      incidents: this.correlator.incidents,
      tokens: config.auth.tokens,
      linkSecret: config.auth.linkSecret,
      publicUrl: config.auth.publicUrl,
      linkTtlMs: config.auth.linkTtlMs,
    });
    const ledgerIndex = new LedgerIndex({ kafka: this.kafka, redis: this.redis, topic: config.kafka.topics.ledger, prefix: config.redis.keyPrefix, log: log.child({ stage: 'ledger-index' }), metrics: this.metrics });
    registerConsoleApi(this.http, { containment: () => (containment?.isRunning() ? containment : undefined), incidents: this.correlator.incidents, tokens: config.auth.tokens, flows, ledger: ledgerIndex, enforcers: [...enforcers.keys()] });
    registerConsole(this.http);
    registerEventStream(this.http, { redis: this.redis, prefix: config.redis.keyPrefix, tokens: config.auth.tokens, log: log.child({ component: 'events' }) });
    registerIncidentRoutes(this.http, { incidents: this.correlator.incidents, requests: statusRequests, tokens: config.auth.tokens, audit: (entry) => this.auditDecision(entry) });
    if (alerts) registerAlertRoutes(this.http, { config: config.alerts, tokens: config.auth.tokens, publisher: alerts, metrics: this.metrics, log: log.child({ component: 'alerts' }) });
    this.stages.push(
      { name: 'redis', start: () => this.redis.connect(), stop: async () => void this.redis.disconnect() },
      { name: 'topics', start: () => this.createTopics(), stop: async () => {} },
      { name: 'status-requests', start: () => statusRequests.connect(), stop: () => statusRequests.disconnect() },
      ...(siem ? [{ name: 'siem', start: () => siem.start(), stop: () => siem.stop() }] : []),
      ...(containment
        ? [
            { name: 'enforcers', start: () => prepareEnforcers(enforcers, log), stop: async () => {} },
            { name: 'contain', start: () => leadership!.start(), stop: () => leadership!.stop() },
          ]
        : []),
      { name: 'correlate', start: () => correlator.start(), stop: () => correlator.stop() },
      { name: 'rekey', start: () => rekey.start(), stop: () => rekey.stop() },
      ...(alerts ? [{ name: 'alerts', start: () => alerts.start(), stop: () => alerts.stop() }] : []),
      { name: 'ledger-index', start: () => ledgerIndex.start(), stop: () => ledgerIndex.stop() },
      { name: 'http', start: () => this.listen(), stop: () => this.http.close() },
    );
  }

  /** Starts every stage in order; if one fails, stops those already started and throws. */
  async start(): Promise<void> {
    for (const stage of this.stages) {
      this.log.info({ stage: stage.name }, 'starting');
      try {
        await stage.start();
      } catch (err) {
        this.started.push(stage);
        await this.stop();
        throw err;
      }
      this.started.push(stage);
    }
    this.log.info({ http: this.config.http, brokers: this.config.kafka.brokers }, 'cordon is running');
  }

  async stop(): Promise<void> {
    // The leader hands the ledger lock over first, so a standby takes over while the rest stops.
    if (this.started.some((s) => s.name === 'contain')) await this.leadership?.stop().catch((err) => this.log.error({ err }, 'leadership hand-over failed'));
    for (const stage of this.started.reverse()) {
      try {
        await stage.stop();
      } catch (err) {
        this.log.error({ stage: stage.name, err }, 'stop failed');
      }
    }
    this.started = [];
    this.log.info('cordon stopped');
  }

  private async createTopics(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const created = await ensureTopics(admin, cordonTopics(this.config));
      if (created.length > 0) this.log.info({ created }, 'created topics');
    } finally {
      await admin.disconnect();
    }
  }

  private async checkKafka(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      await admin.describeCluster();
    } finally {
      await admin.disconnect();
    }
  }

  /** An analyst's decision goes to the ledger first; only the replica that writes the ledger takes it. */
  private async auditDecision(entry: IncidentDecision): Promise<void> {
    if (!this.containment?.isRunning()) throw new Unavailable('containment, which writes the ledger, is not running on this replica');
    await this.containment.recordIncidentDecision(entry);
  }

  private async listen(): Promise<void> {
    await this.http.listen({ host: this.config.http.host, port: this.config.http.port });
  }
}

/**
 * Leadership is informative: a standby is ready (it serves the API and forwards decisions); the
 * check fails only while this replica neither leads nor waits, or no replica leads at all.
 */
async function leadershipCheck(leadership: Leadership): Promise<string> {
  const s = leadership.status();
  const since = new Date(s.since).toISOString();
  if (s.role === 'leader') return `leader since ${since} (epoch ${s.epoch}, ${s.token}); takeovers by this replica: ${s.takeovers}`;
  if (s.role === 'stopped') throw new Error('containment is stopped on this replica');
  const leader = await leadership.leader();
  if (!leader) throw new Error(`standby since ${since}; no replica leads containment now (a takeover is under way)`);
  return `standby since ${since}; leader ${leader.token} at ${leader.url} since ${new Date(leader.since).toISOString()}; takeovers by this replica: ${s.takeovers}`;
}

/** How the other replicas reach this one: contain.advertiseUrl, else this host and the port it listens on. */
function advertisedUrl(config: Config, address: ReturnType<HttpServer['server']['address']>): string {
  if (config.contain.advertiseUrl) return config.contain.advertiseUrl;
  const port = typeof address === 'object' && address ? address.port : config.http.port;
  const host = config.http.host === '0.0.0.0' || config.http.host === '::' ? hostname() : config.http.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** A check that fails with `why`, when there is one. */
function refuse(why: string | undefined): void {
  if (why !== undefined) throw new Error(why);
}
