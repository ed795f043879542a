import type { Config } from '../config';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { CheckpointError } from './checkpoint';
import { checkpointSigningKey, checkpointStoreFrom, type CheckpointStore } from './checkpoint-stores';
import { Checkpointer, type CheckpointedLedger } from './checkpointer';

/**
 * The service's checkpoint stage (after containment, which writes the ledger): checkpoints the
 * writer's head to `ledger.checkpoint.store` until stop. Start fails when there is no signing key.
 */
export function checkpointStage(config: Config, log: Logger, ledger: () => CheckpointedLedger, metrics?: Metrics) {
  let checkpointer: Checkpointer | undefined;
  let store: CheckpointStore | undefined;
  return {
    name: 'ledger-checkpoints',
    get checkpointer() {
      return checkpointer;
    },
    /** For /readyz: why checkpoints are not being written, or undefined. */
    trouble(): string | undefined {
      if (!config.ledger.checkpoint) return undefined;
      return checkpointer ? checkpointer.trouble : 'not started';
    },
    async start(): Promise<void> {
      const c = config.ledger.checkpoint;
      if (!c) return;
      const key = checkpointSigningKey(c);
      if (!key) throw new CheckpointError('ledger.checkpoint: the service signs checkpoints: set ledger.checkpoint.privateKeyFile or CORDON_LEDGER_CHECKPOINT_KEY');
      store = checkpointStoreFrom(c.store, config, log);
      checkpointer = new Checkpointer({
        topic: config.kafka.topics.ledger,
        key,
        store,
        intervalMs: c.intervalMs,
        log: log.child({ component: 'ledger-checkpoints' }),
        onOutcome: (outcome) => metrics?.ledgerCheckpoints.inc({ outcome }),
      });
      await checkpointer.start(ledger());
    },
    async stop(): Promise<void> {
      await checkpointer?.stop();
      await store?.close?.();
    },
  };
}
