import { z } from 'zod';

/**
 * `ledger.checkpoint`: where signed checkpoints of the ledger's head go, how often, and the keys.
 * The private key comes from a PEM file (`privateKeyFile`) or CORDON_LEDGER_CHECKPOINT_KEY, never
 * from the config file; `publicKeyFiles` lets an auditor verify without it (and keeps old keys
 * valid after a rotation). The Elasticsearch and Splunk stores take their connection from the
 * top-level `elasticsearch` and `splunk` sections.
 */

const Duration = z.number().int().nonnegative();
const EsIndex = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,200}$/, 'expected a lowercase Elasticsearch index name');
const SplunkIndex = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,79}$/, 'expected a Splunk index name (lowercase letters, digits, _ and -)');
const Sourcetype = z.string().regex(/^[A-Za-z0-9_:.-]{1,100}$/, 'expected a sourcetype ([A-Za-z0-9_:.-])');

export const CheckpointStoreConfig = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('file'), path: z.string().min(1) }),
  z.strictObject({ kind: z.literal('elasticsearch'), index: EsIndex.default('cordon-ledger-checkpoints') }),
  z.strictObject({
    kind: z.literal('splunk'),
    /** Default: the `splunk.index` of the config. */
    index: SplunkIndex.optional(),
    sourcetype: Sourcetype.default('cordon:ledger:checkpoint'),
  }),
]);
export type CheckpointStoreConfig = z.infer<typeof CheckpointStoreConfig>;

export const LedgerCheckpointConfig = z
  .strictObject({
    store: CheckpointStoreConfig,
    /** PEM file of the Ed25519 private key that signs checkpoints. */
    privateKeyFile: z.string().min(1).optional(),
    /** The PEM itself: from CORDON_LEDGER_CHECKPOINT_KEY only (a config file holding it is refused). */
    privateKey: z.string().min(1).optional(),
    /** PEM files of the public keys `audit verify` accepts (default: the private key's own). */
    publicKeyFiles: z.array(z.string().min(1)).default([]),
    /** How often the writer checkpoints its head (skipped when the head has not moved). */
    intervalMs: Duration.min(1000).default(300_000),
  })
  .refine((c) => !(c.privateKey && c.privateKeyFile), { path: ['privateKeyFile'], message: 'set privateKeyFile or CORDON_LEDGER_CHECKPOINT_KEY, not both' })
  .refine((c) => c.privateKey || c.privateKeyFile || c.publicKeyFiles.length > 0, {
    path: ['privateKeyFile'],
    message: 'checkpoints need a key: privateKeyFile or CORDON_LEDGER_CHECKPOINT_KEY (to sign), or publicKeyFiles (to verify)',
  });
export type LedgerCheckpointConfig = z.infer<typeof LedgerCheckpointConfig>;

export const LedgerConfig = z
  .object({
    /** Signed checkpoints of the chain's head outside Kafka and Redis; off without this section. */
    checkpoint: LedgerCheckpointConfig.optional(),
  })
  .prefault({});
