import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { CorrelationConfig } from './correlate/config';
import { AlertsConfig } from './alerts/config';
import { IllumioEnforcerConfig } from './enforcer/illumio';
import { KubernetesEnforcerConfig } from './enforcer/kubernetes';
import { WebhookEnforcerConfig } from './enforcer/webhook';
import { TokenConfig } from './http/auth';
import { KafkaSaslConfig, KafkaTlsConfig, saslNeedsTls } from './kafka-security';
import { LedgerConfig } from './ledger/checkpoint-config';
import { LOG_FORMATS } from './logger';
import { FORMATS } from './normalize/normalizer';
import { DeclaredVpcFields } from './normalize/vpcflow';
import { NotifyConfig } from './notify/config';
import { ElasticsearchSiemObject, SIEM_ENV, SplunkSiemConfig, type ElasticsearchSiemConfig } from './siem/config';
import { DEFAULT_JSON_LIMITS, jsonLimitProblem, parseYaml, type JsonParse } from './validation';

/**
 * One configuration model: defaults < config file (YAML or JSON) < environment variables.
 * Validated once at start; a bad value stops start-up naming the key, the value and what was expected.
 */

const HostPort = z.string().regex(/^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$/, 'expected host:port');
const TopicName = z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, 'expected a Kafka topic name ([A-Za-z0-9._-], at most 249)');
const Duration = z.number().int().nonnegative();

export const InputTopic = z.object({
  topic: TopicName,
  format: z.enum([...FORMATS, 'auto']).default('auto'),
  /**
   * Whether producers key this topic's records by source entity key (as `cordon produce` does).
   * Keyed topics go straight to the correlator; others are rekeyed through the events topic first.
   */
  keyed: z.boolean().default(true),
  /**
   * VPC / Transit Gateway flow logs: the field order of this input's records, for logs delivered
   * without a header line (CloudWatch Logs). A list of field names or AWS's LogFormat string.
   */
  vpcFields: DeclaredVpcFields.optional(),
});
export type InputTopic = z.infer<typeof InputTopic>;

const DEFAULT_ES_URL = 'http://127.0.0.1:9200';

/**
 * Elasticsearch, as the SIEM Cordon writes incidents, ledger records and dead letters to. Writing
 * is on as soon as a URL is configured (file or CORDON_ES_URL) unless `enabled: false` says otherwise;
 * with no URL it stays off, so a deployment without Elasticsearch never fills Redis with documents
 * waiting for it.
 */
const ElasticsearchConfig = ElasticsearchSiemObject.extend({
  enabled: z.boolean().optional(),
  url: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }).optional(),
})
  .transform(({ enabled, url, ...rest }): ElasticsearchSiemConfig => ({ ...rest, url: url ?? DEFAULT_ES_URL, enabled: enabled ?? url !== undefined }))
  .prefault({});

export const ConfigSchema = z.object({
  serviceName: z.string().min(1).default('cordon'),
  log: z
    .object({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      /** `json` (pino's lines) or `ecs` (Elastic Common Schema, for Filebeat / Elastic Agent without an ingest pipeline). */
      format: z.enum(LOG_FORMATS).default('json'),
    })
    .prefault({}),
  kafka: z
    .object({
      brokers: z.array(HostPort).min(1).default(['127.0.0.1:9092']),
      clientId: z.string().min(1).default('cordon'),
      partitions: z.number().int().min(1).max(1000).default(6),
      inputs: z
        .array(InputTopic)
        .min(1)
        .default([
          { topic: 'cordon.flows', format: 'auto', keyed: true },
          { topic: 'cordon.anomalies', format: 'cordon', keyed: true },
        ]),
      topics: z
        .object({
          events: TopicName.default('cordon.events'),
          dlq: TopicName.default('cordon.dlq'),
          incidents: TopicName.default('cordon.incidents'),
          ledger: TopicName.default('cordon.ledger'),
          lifecycle: TopicName.default('cordon.lifecycle'),
          /** Hop chains across partitions (src/correlate/handoff.ts); default: the events topic's name + `.handoffs`. */
          handoffs: TopicName.optional(),
        })
        .prefault({}),
      groups: z
        .object({
          ingest: z.string().min(1).default('cordon-ingest'),
          correlate: z.string().min(1).default('cordon-correlate'),
          contain: z.string().min(1).default('cordon-contain'),
          siem: z.string().min(1).default('cordon-siem'),
        })
        .prefault({}),
      tls: KafkaTlsConfig.optional(),
      sasl: KafkaSaslConfig.optional(),
    })
    .refine(saslNeedsTls, { path: ['sasl'], message: 'SASL needs kafka.tls: Cordon does not send credentials or telemetry in the clear' })
    .prefault({}),
  redis: z
    .object({
      url: z.string().regex(/^rediss?:\/\//, 'expected a redis:// or rediss:// URL').default('redis://127.0.0.1:6379'),
      keyPrefix: z.string().regex(/^[A-Za-z0-9._-]+$/, 'expected letters, digits, dot, dash or underscore').default('cordon'),
    })
    .prefault({}),
  flows: z
    .object({
      /** Distinct flows (direction, peer, port/protocol, verdict) the flow history keeps per entity and hour; the rest are only counted. */
      maxPerHour: z.number().int().min(1).max(100_000).default(2_000),
    })
    .prefault({}),
  elasticsearch: ElasticsearchConfig,
  splunk: SplunkSiemConfig,
  /** Signed checkpoints of the ledger's head (src/ledger/checkpoint-config.ts, docs/ledger.md). */
  ledger: LedgerConfig,
  siem: z
    .object({
      /** How long stop waits for queued documents to reach Elasticsearch / Splunk (they stay queued). */
      drainTimeoutMs: Duration.default(5_000),
    })
    .prefault({}),
  alerts: AlertsConfig,
  /** Where notify steps and approval requests are delivered (webhook, Slack, Teams). */
  notify: NotifyConfig,
  http: z
    .object({
      host: z.string().min(1).default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(8080),
      /** Request bodies larger than this (bytes) are refused with 413 before they are parsed. */
      bodyLimit: z.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
      /** JSON bodies nested deeper than this are refused with 400 before they are parsed. */
      maxJsonDepth: z.number().int().min(8).max(512).default(64),
    })
    .prefault({}),
  ingest: z
    .object({
      maxRecordBytes: z.number().int().min(1024).default(1024 * 1024),
      /** JSON records nested deeper than this go to the dead-letter topic, refused before parsing. */
      maxJsonDepth: z.number().int().min(8).max(512).default(64),
      /** Events stamped further ahead of the broker's clock than this are rejected. */
      maxFutureSkewMs: Duration.default(5 * 60_000),
      /** Events older than this (relative to the Kafka message timestamp) are rejected; 0 disables. */
      maxEventAgeMs: Duration.default(30 * 24 * 3600_000),
      /** Worker threads for the rekey stage's intake; 0 keeps it on the main thread (src/ingest/intake-pool.ts intakeThreads). */
      threads: z.union([z.literal('auto'), z.number().int().min(0).max(16)]).default('auto'),
    })
    .prefault({}),
  correlate: z
    .object({
      snapshotIntervalMs: Duration.default(5_000),
      engine: CorrelationConfig.prefault({}),
    })
    .prefault({}),
  contain: z
    .object({
      enabled: z.boolean().default(true),
      /** A playbook file or a folder of them. */
      playbooks: z.string().min(1).default('playbooks'),
      /** Every playbook runs dry: decisions are recorded, nothing is touched. */
      dryRun: z.boolean().default(false),
      /**
       * How long start-up waits for another writer's ledger lock before this replica serves as a hot
       * standby (API and console on, containment waiting for the lock in the background).
       */
      lockWaitMs: Duration.default(0),
      /** How long the ledger lock lives without renewal (renewed every third of it): after a SIGKILL, a standby takes over within it. */
      lockTtlMs: Duration.min(1000).max(60_000).default(5_000),
      /** How this replica's HTTP API is reached by the others, so a standby forwards decisions to the leader (default http://<hostname>:<http.port>). */
      advertiseUrl: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }).optional(),
      /**
       * The incidents consumer's group session: after a SIGKILL, the new leader's consumer gets the
       * partitions once the dead member's session ran out. The consumer heartbeats after every incident.
       */
      sessionTimeoutMs: Duration.min(6_000, 'at least 6000 (the broker default group.min.session.timeout.ms)').max(300_000).default(6_000),
      reconcileIntervalMs: Duration.min(100).default(10_000),
      /** A live quarantine whose labels were changed outside Cordon: put them back (`reapply`) or end it (`release`). */
      driftPolicy: z.enum(['reapply', 'release']).default('reapply'),
      /** The longest one extension may ask (`POST /api/quarantines/:entity/extend`); never above 7d, the hard TTL limit. */
      maxExtensionMs: Duration.min(1000).max(7 * 86_400_000, 'at most 7d (604800000), the hard limit of a quarantine TTL').default(86_400_000),
      /** How long, from its first apply, extensions may keep one quarantine in place (a playbook's max_lifetime may lower it). */
      maxLifetimeMs: Duration.min(1000).default(30 * 86_400_000),
      breaker: z
        .object({
          maxConcurrent: z.number().int().min(1).default(50),
          maxNew: z.number().int().min(1).default(20),
          windowMs: Duration.min(1000).default(10 * 60_000),
          coolDownMs: Duration.default(15 * 60_000),
        })
        .prefault({}),
      enforcers: z
        .object({
          labelstore: z.boolean().default(false),
          nftables: z
            .object({ enabled: z.boolean().default(false), table: z.string().regex(/^[a-z][a-z0-9_]{0,31}$/).default('cordon'), netns: z.string().optional() })
            .prefault({}),
          /** Pod labels through the Kubernetes API; on when the section is present. */
          kubernetes: KubernetesEnforcerConfig.optional(),
          /** Workload labels through the Illumio PCE API; on when the section is present. */
          illumio: IllumioEnforcerConfig.optional(),
          /** Signed HTTP calls to an enforcement point without a connector; on when the section is present. */
          webhook: WebhookEnforcerConfig.optional(),
        })
        .prefault({}),
    })
    .prefault({}),
  auth: z
    .object({
      tokens: z.array(TokenConfig).default([]),
      /** Signs one-click approval links; at least 32 characters. */
      linkSecret: z.string().min(32, 'expected at least 32 characters').optional(),
      /** Where links point, e.g. https://cordon.example.com. */
      publicUrl: z.url().default('http://127.0.0.1:8080'),
      linkTtlMs: Duration.default(3_600_000),
    })
    .prefault({}),
});
export type Config = z.infer<typeof ConfigSchema>;


/** Environment variables and the config keys they set. Lists are comma-separated. */
type EnvType = 'string' | 'number' | 'list' | 'boolean';
export const ENV: Readonly<Record<string, { path: string[]; type: EnvType }>> = {
  CORDON_LOG_LEVEL: { path: ['log', 'level'], type: 'string' },
  CORDON_LOG_FORMAT: { path: ['log', 'format'], type: 'string' },
  CORDON_KAFKA_BROKERS: { path: ['kafka', 'brokers'], type: 'list' },
  CORDON_KAFKA_CLIENT_ID: { path: ['kafka', 'clientId'], type: 'string' },
  CORDON_KAFKA_PARTITIONS: { path: ['kafka', 'partitions'], type: 'number' },
  CORDON_KAFKA_TLS_CA_FILE: { path: ['kafka', 'tls', 'caFile'], type: 'string' },
  CORDON_KAFKA_TLS_CERT_FILE: { path: ['kafka', 'tls', 'certFile'], type: 'string' },
  CORDON_KAFKA_TLS_KEY_FILE: { path: ['kafka', 'tls', 'keyFile'], type: 'string' },
  CORDON_KAFKA_SASL_MECHANISM: { path: ['kafka', 'sasl', 'mechanism'], type: 'string' },
  CORDON_KAFKA_SASL_USERNAME: { path: ['kafka', 'sasl', 'username'], type: 'string' },
  CORDON_KAFKA_SASL_PASSWORD: { path: ['kafka', 'sasl', 'password'], type: 'string' },
  CORDON_KAFKA_SASL_PASSWORD_FILE: { path: ['kafka', 'sasl', 'passwordFile'], type: 'string' },
  CORDON_REDIS_URL: { path: ['redis', 'url'], type: 'string' },
  CORDON_REDIS_PREFIX: { path: ['redis', 'keyPrefix'], type: 'string' },
  CORDON_ES_URL: { path: ['elasticsearch', 'url'], type: 'string' },
  CORDON_HTTP_HOST: { path: ['http', 'host'], type: 'string' },
  CORDON_HTTP_PORT: { path: ['http', 'port'], type: 'number' },
  CORDON_ADVERTISE_URL: { path: ['contain', 'advertiseUrl'], type: 'string' },
  CORDON_MAX_RECORD_BYTES: { path: ['ingest', 'maxRecordBytes'], type: 'number' },
  CORDON_MAX_EVENT_AGE_MS: { path: ['ingest', 'maxEventAgeMs'], type: 'number' },
  CORDON_INGEST_THREADS: { path: ['ingest', 'threads'], type: 'number' },
  CORDON_LEDGER_CHECKPOINT_KEY: { path: ['ledger', 'checkpoint', 'privateKey'], type: 'string' },
  ...SIEM_ENV,
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function loadConfig(opts: { file?: string; env?: NodeJS.ProcessEnv; overrides?: object } = {}): Config {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.CORDON_CONFIG;
  const fromFile = file ? readConfigFile(file) : {};
  refuseSecretsInFile(fromFile, file);
  const raw = deepMerge(fromFile, envOverrides(env), opts.overrides ?? {});
  const parsed = ConfigSchema.safeParse(raw, { reportInput: true });
  if (parsed.success) return parsed.data;
  throw new ConfigError(
    'invalid configuration:\n' +
      parsed.error.issues
        .map((i) => `  ${i.path.join('.') || '(root)'} = ${redacted(i.path, i.input)}: ${i.message}`)
        .join('\n'),
  );
}

/** Secrets that may come from the environment or a file of their own, never from the config file. */
const ENV_ONLY_SECRETS = [
  { path: ['kafka', 'sasl', 'password'], env: 'CORDON_KAFKA_SASL_PASSWORD', file: 'kafka.sasl.passwordFile' },
  { path: ['ledger', 'checkpoint', 'privateKey'], env: 'CORDON_LEDGER_CHECKPOINT_KEY', file: 'ledger.checkpoint.privateKeyFile' },
];

function refuseSecretsInFile(doc: object, file: string | undefined): void {
  for (const secret of ENV_ONLY_SECRETS) {
    let node: unknown = doc;
    for (const key of secret.path) node = isPlainObject(node) ? node[key] : undefined;
    if (node !== undefined) {
      throw new ConfigError(`config file ${file}: ${secret.path.join('.')} may not be in a config file; set ${secret.env} or ${secret.file}`);
    }
  }
}

/** Keys whose values are secrets (`passwordFile` and the like name a file, and are shown). */
const SECRET_KEY = /(password|secret|token|apikey|passphrase|privatekey)$/i;

/** An invalid value as the error shows it, with every secret (by key name) replaced. */
function redacted(path: PropertyKey[], input: unknown): string {
  const hide = (key: PropertyKey, v: unknown): unknown =>
    SECRET_KEY.test(String(key)) && v !== undefined && !isPlainObject(v) && !Array.isArray(v) ? '(redacted)' : v;
  const last = path[path.length - 1];
  if (last !== undefined && hide(last, input) !== input) return '(redacted)';
  return JSON.stringify(input, (key, v: unknown) => (key === '' ? v : hide(key, v)));
}

function readConfigFile(file: string): object {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  const parsed = file.endsWith('.json') ? parseConfigJson(text) : parseYaml(text);
  if (!parsed.ok) throw new ConfigError(`cannot parse config file ${file}: ${parsed.reason}`);
  const doc = parsed.value;
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`cannot parse config file ${file}: expected a mapping at the top`);
  return doc;
}

/** Within the size and depth limits; a `__proto__` key is an own key the schema then drops. */
function parseConfigJson(text: string): JsonParse {
  const over = jsonLimitProblem(text, DEFAULT_JSON_LIMITS);
  if (over) return { ok: false, reason: over };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

function envOverrides(env: NodeJS.ProcessEnv): object {
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(ENV)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    setPath(out, spec.path, convert(value, spec.type));
  }
  return out;
}

function convert(value: string, type: EnvType): unknown {
  if (type === 'boolean') return value === 'true' ? true : value === 'false' ? false : value;
  if (type === 'list') return value.split(',').map((s) => s.trim()).filter(Boolean);
  if (type === 'number') return /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
  return value;
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>;
  node[path[path.length - 1]!] = value;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function deepMerge(...layers: object[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer)) {
      if (key === '__proto__' || key === 'constructor' || key === 'prototype') continue;
      out[key] = isPlainObject(value) && isPlainObject(out[key]) ? deepMerge(out[key] as object, value) : value;
    }
  }
  return out;
}
