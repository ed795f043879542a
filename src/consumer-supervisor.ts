import { backoffDelay } from './backoff';
import type { Consumer } from './kafka';
import type { Logger } from './logger';
import type { Metrics } from './metrics';

export interface SupervisorOptions {
  /** Names the consumer in logs, metrics and /readyz. */
  name: string;
  log: Logger;
  metrics?: Metrics;
  /** Runs the consumer again (consumer.run, and whatever follows it such as a seek); the supervisor connects it first. */
  run: () => Promise<void>;
  /** Waits before Cordon's own restarts: doubling from initialMs, at most maxMs. */
  backoff?: { initialMs: number; maxMs: number };
}

const DEFAULT_BACKOFF = { initialMs: 1_000, maxMs: 60_000 };

/**
 * Keeps one Kafka consumer running. kafkajs reports a consumer that died with a crash event and
 * restarts it itself only when the error was retriable; otherwise the consumer stays down, and
 * the supervisor connects and runs it again, with backoff, until it joins its group. From the
 * crash until it has joined again, `trouble` says why it is not consuming (for /readyz).
 */
export class ConsumerSupervisor {
  private down: { since: number; error: string; by: 'kafkajs' | 'cordon' } | undefined;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly consumer: Consumer,
    private readonly options: SupervisorOptions,
  ) {
    consumer.on(consumer.events.CRASH, ({ payload }) => this.onCrash(payload.error, payload.restart));
    consumer.on(consumer.events.GROUP_JOIN, () => this.onJoined());
  }

  /** Why the consumer is not consuming now, or undefined while it is. */
  get trouble(): string | undefined {
    const d = this.down;
    if (!d) return undefined;
    const who = d.by === 'kafkajs' ? 'the client restarts it' : `Cordon restarts it (attempt ${this.failures})`;
    return `consumer ${this.options.name} crashed at ${new Date(d.since).toISOString()} (${d.error}); ${who}`;
  }

  /** No more restarts: the owner is stopping the consumer. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private onCrash(error: Error, restartedByClient: boolean): void {
    if (this.stopped) return;
    this.failures += 1;
    const by = restartedByClient ? 'kafkajs' : 'cordon';
    this.down = { since: Date.now(), error: error.message, by };
    this.options.metrics?.consumerCrashes.inc({ consumer: this.options.name, restart: by });
    this.options.log.error({ consumer: this.options.name, err: error, restart: by, failures: this.failures }, 'consumer crashed');
    if (!restartedByClient) this.scheduleRestart();
  }

  private onJoined(): void {
    if (this.down) this.options.log.warn({ consumer: this.options.name, failures: this.failures }, 'consumer running again');
    this.down = undefined;
    this.failures = 0;
  }

  private scheduleRestart(): void {
    if (this.timer || this.stopped) return;
    const { initialMs, maxMs } = this.options.backoff ?? DEFAULT_BACKOFF;
    const waitMs = backoffDelay(this.failures, initialMs, maxMs);
    this.timer = setTimeout(() => void this.restart(), waitMs);
    this.timer.unref();
  }

  private async restart(): Promise<void> {
    this.timer = undefined;
    if (this.stopped) return;
    this.options.metrics?.consumerRestarts.inc({ consumer: this.options.name });
    this.options.log.warn({ consumer: this.options.name, failures: this.failures }, 'restarting consumer');
    try {
      await this.consumer.connect();
      await this.options.run();
    } catch (err) {
      // A failure inside run is a crash event of its own; one before it (connect) is retried here.
      this.failures += 1;
      if (this.down) this.down.error = (err as Error).message;
      this.options.log.error({ consumer: this.options.name, err }, 'consumer restart failed');
      this.scheduleRestart();
    }
  }
}
