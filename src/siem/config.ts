import { z } from 'zod';

/**
 * The SIEM connectors' configuration. src/config.ts takes these as its top-level `elasticsearch` and
 * `splunk` sections (Elasticsearch turns on when a URL is configured; Splunk needs `enabled` and a
 * token). `SiemConfig` bundles both for code and tests that use the connectors on their own.
 */

const Duration = z.number().int().nonnegative();
const HttpUrl = z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' });

/** Elasticsearch index names: lowercase, no `\ / * ? " < > | , #` or spaces, not starting with `-_+`. */
const IndexPrefix = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,200}$/, 'expected a lowercase Elasticsearch index prefix ([a-z0-9._-], not starting with . _ or -)');

/** The namespace of Elastic's `logs-<dataset>-<namespace>` naming scheme: lowercase, no `-`, at most 100 characters. */
const Namespace = z.string().regex(/^[a-z0-9][a-z0-9_.]{0,99}$/, 'expected an Elastic namespace ([a-z0-9_.], no "-", at most 100 characters)');

const Tls = z
  .object({
    /** PEM file with the CA that signed the server certificate (a private CA, Splunk's default cert, ...). */
    caFile: z.string().min(1).optional(),
    /** Only for a lab: turning this off lets anyone on the path read the token. */
    rejectUnauthorized: z.boolean().default(true),
  })
  .prefault({});

const Backoff = z
  .object({
    initialMs: Duration.default(200),
    maxMs: Duration.default(30_000),
  })
  .prefault({});

export const ElasticsearchSiemObject = z.object({
  enabled: z.boolean().default(false),
  url: HttpUrl.default('http://127.0.0.1:9200'),
  /** Indices and templates are `<prefix>-incidents`, `<prefix>-ledger`, `<prefix>-dlq`, `<prefix>-findings`. */
  indexPrefix: IndexPrefix.default('cordon'),
  /** Each index also answers as `logs-cordon.<dataset>-<namespace>` (logs-cordon.incident-default, ...). */
  namespace: Namespace.default('default'),
  auth: z
    .union([
      z.object({ apiKey: z.string().min(1) }),
      z.object({ username: z.string().min(1), password: z.string().min(1) }),
    ])
    .optional(),
  tls: Tls,
  requestTimeoutMs: Duration.default(30_000),
  numberOfShards: z.number().int().min(1).max(64).default(1),
  numberOfReplicas: z.number().int().min(0).max(8).default(0),
  bulk: z
    .object({
      /** Documents per bulk request (also the most the flusher takes from the outbox at once). */
      maxDocs: z.number().int().min(1).max(5_000).default(500),
      /** How often the flusher looks at the outbox when nothing woke it (other replicas' writes). */
      pollIntervalMs: Duration.default(1_000),
      /** `refresh` on bulk requests: off in production, `wait_for` in tests that read their writes. */
      refresh: z.enum(['false', 'true', 'wait_for']).default('false'),
    })
    .prefault({}),
  retry: Backoff,
  outbox: z
    .object({
      /** Permanently refused documents kept for inspection (`cordon siem failed`), newest kept. */
      maxFailed: z.number().int().min(1).default(10_000),
      /** A writer whose heartbeat is older than this is gone; its in-flight batch goes back to the outbox. */
      heartbeatTtlMs: z.number().int().min(1_000).default(30_000),
    })
    .prefault({}),
  /** Cap on `event.original` of a dead letter; the full size and a SHA-256 are always kept. */
  maxOriginalBytes: z.number().int().min(256).max(1024 * 1024).default(32 * 1024),
});
export const ElasticsearchSiemConfig = ElasticsearchSiemObject.prefault({});
export type ElasticsearchSiemConfig = z.infer<typeof ElasticsearchSiemConfig>;

/** A Splunk index name: letters, digits, underscore and dash, not starting with `_` or `-`. */
const SplunkIndex = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,79}$/, 'expected a Splunk index name (lowercase letters, digits, _ and -)');
const Sourcetype = z.string().regex(/^[A-Za-z0-9_:.-]{1,100}$/, 'expected a sourcetype ([A-Za-z0-9_:.-])');
/** A Splunk relative or absolute time modifier: `-24h`, `-7d@d`, `now`, `0`, or epoch seconds. */
const TimeModifier = z
  .string()
  .regex(/^(now|0|\d{9,11}(\.\d+)?|[-+]\d+(s|m|h|d|w|mon|y)(@(s|m|h|d|w[0-6]?|mon|q|y))?|@(d|w[0-6]?|mon|q|y))$/, 'expected a Splunk time modifier such as -24h or -7d@d');
const FieldName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_.]{0,63}$/, 'expected a Splunk field name');

export const SplunkSiemConfig = z
  .object({
    enabled: z.boolean().default(false),
    hecUrl: HttpUrl.default('https://127.0.0.1:8088'),
    /** The HEC token (a GUID). Required when enabled. */
    token: z.string().min(1).optional(),
    index: SplunkIndex.default('cordon'),
    source: z.string().min(1).max(200).default('cordon'),
    /** The host field of every event; defaults to the machine's hostname. */
    host: z.string().min(1).max(200).optional(),
    sourcetypes: z
      .object({
        incident: Sourcetype.default('cordon:incident'),
        ledger: Sourcetype.default('cordon:ledger'),
        deadLetter: Sourcetype.default('cordon:dlq'),
        finding: Sourcetype.default('cordon:finding'),
      })
      .prefault({}),
    gzip: z.boolean().default(true),
    tls: Tls,
    requestTimeoutMs: Duration.default(30_000),
    batch: z
      .object({
        maxEvents: z.number().int().min(1).max(10_000).default(100),
        /** Uncompressed bytes of one request body (Splunk's default max_content_length is far larger). */
        maxBytes: z.number().int().min(1_024).max(100 * 1024 * 1024).default(512 * 1024),
        /** The longest an event waits for companions before its batch is sent. */
        maxLatencyMs: Duration.default(1_000),
        /** Requests in flight at once (each with its own ackId when acknowledgement is on). */
        concurrency: z.number().int().min(1).max(32).default(2),
      })
      .prefault({}),
    /** Indexer acknowledgement: enable it here only when the token has useACK=1. */
    ack: z
      .object({
        enabled: z.boolean().default(false),
        pollIntervalMs: z.number().int().min(10).default(1_000),
        /** Un-acknowledged after this long: the batch is sent again. */
        timeoutMs: z.number().int().min(100).default(120_000),
        /** Resends of one batch for lack of an ack before it is recorded as failed. */
        maxResends: z.number().int().min(0).default(3),
      })
      .prefault({}),
    retry: z
      .object({
        initialMs: Duration.default(200),
        maxMs: Duration.default(10_000),
        /** Retries of a batch on 503 (busy), 5xx or a network error before it is recorded as failed. */
        retries: z.number().int().min(0).default(10),
      })
      .prefault({}),
    /** Enrichment through the REST API (management port, 8089). */
    search: z
      .object({
        enabled: z.boolean().default(false),
        url: HttpUrl.default('https://127.0.0.1:8089'),
        /** Either username + password (session login) or an authentication token (Bearer). */
        username: z.string().min(1).optional(),
        password: z.string().min(1).optional(),
        token: z.string().min(1).optional(),
        app: z.string().regex(/^[A-Za-z0-9_.-]+$/).optional(),
        indexes: z.array(z.union([SplunkIndex, z.literal('*')])).min(1).default(['*']),
        ipFields: z.array(FieldName).min(1).default(['src', 'dest']),
        hostFields: z.array(FieldName).default(['src', 'dest']),
        earliest: TimeModifier.default('-24h'),
        limit: z.number().int().min(1).max(1_000).default(20),
        /** Entities of one incident put into one search, the rest are left out (and said so). */
        maxEntities: z.number().int().min(1).max(100).default(20),
        timeoutMs: Duration.default(30_000),
        tls: Tls,
      })
      .prefault({})
      .superRefine((s, ctx) => {
        if (!s.enabled || s.token !== undefined || (s.username !== undefined && s.password !== undefined)) return;
        ctx.addIssue({ code: 'custom', path: ['token'], input: s.token, message: 'splunk search needs either a token or a username and password' });
      }),
  })
  .prefault({})
  .superRefine((s, ctx) => {
    if (s.enabled && s.token === undefined) ctx.addIssue({ code: 'custom', path: ['token'], input: s.token, message: 'splunk HEC needs a token when enabled' });
  });
export type SplunkSiemConfig = z.infer<typeof SplunkSiemConfig>;

export const SiemConfig = z
  .object({
    elasticsearch: ElasticsearchSiemConfig,
    splunk: SplunkSiemConfig,
  })
  .prefault({});
export type SiemConfig = z.infer<typeof SiemConfig>;

/** Environment variables of the SIEM sections (src/config.ts reads them with the rest). */
export const SIEM_ENV: Record<string, { path: string[]; type: 'string' | 'number' | 'list' | 'boolean' }> = {
  CORDON_ES_ENABLED: { path: ['elasticsearch', 'enabled'], type: 'boolean' },
  CORDON_ES_INDEX_PREFIX: { path: ['elasticsearch', 'indexPrefix'], type: 'string' },
  CORDON_ES_NAMESPACE: { path: ['elasticsearch', 'namespace'], type: 'string' },
  CORDON_ES_API_KEY: { path: ['elasticsearch', 'auth', 'apiKey'], type: 'string' },
  CORDON_SPLUNK_ENABLED: { path: ['splunk', 'enabled'], type: 'boolean' },
  CORDON_SPLUNK_HEC_URL: { path: ['splunk', 'hecUrl'], type: 'string' },
  CORDON_SPLUNK_HEC_TOKEN: { path: ['splunk', 'token'], type: 'string' },
  CORDON_SPLUNK_INDEX: { path: ['splunk', 'index'], type: 'string' },
  CORDON_SPLUNK_SEARCH_URL: { path: ['splunk', 'search', 'url'], type: 'string' },
  CORDON_SPLUNK_SEARCH_TOKEN: { path: ['splunk', 'search', 'token'], type: 'string' },
};
