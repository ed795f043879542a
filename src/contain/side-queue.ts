import { Queue, Worker, type Job } from 'bullmq';
import type Redis from 'ioredis';
import type { Logger } from '../logger';
import { RetryLater } from '../notify/notifier';

/**
 * Work a playbook run starts and never waits for: enrichment searches and notification deliveries.
 * It has its own BullMQ queue and worker, so a Splunk search that takes its full timeout or a Slack
 * webhook that answers 429 for minutes never holds a slot the containment jobs need. A handler
 * that throws RetryLater runs again after the delay it names (a Retry-After, a backoff); the job
 * id makes each piece of work run once however often it is asked for.
 */

export type SideJobs = {
  enrich: { incidentId: string; index: number; labels: unknown };
  deliver: import('../notify/notifier').Delivery;
};
export type SideHandlers = { [K in keyof SideJobs]: (data: SideJobs[K], attemptsMade: number) => Promise<void> };

const CONCURRENCY = 16;

export class SideQueue {
  private queue: Queue | undefined;
  private worker: Worker | undefined;

  constructor(
    private readonly opts: { connection: () => Redis; prefix: string; handlers: SideHandlers; log: Logger },
  ) {}

  start(): void {
    const { connection, prefix, log } = this.opts;
    this.queue = new Queue('contain-side', { connection: connection(), prefix });
    this.worker = new Worker('contain-side', (job) => this.run(job), {
      connection: connection(),
      prefix,
      concurrency: CONCURRENCY,
      // Seconds an idle worker blocks waiting for a job: close() waits it out (a leader's SIGTERM hand-over).
      drainDelay: 1,
      settings: { backoffStrategy: (attemptsMade: number, _type?: string, err?: Error) => (err instanceof RetryLater ? err.delayMs : Math.min(60_000, 500 * 2 ** attemptsMade)) },
    });
    this.worker.on('failed', (job, err) => {
      if (!(err instanceof RetryLater)) log.error({ job: job?.id, name: job?.name, attempts: job?.attemptsMade, err }, 'side job failed');
    });
  }

  async add<K extends keyof SideJobs>(name: K, data: SideJobs[K], opts: { jobId: string; attempts: number }): Promise<void> {
    if (!this.queue) throw new Error('side queue not started');
    await this.queue.add(name, data, { jobId: opts.jobId, attempts: opts.attempts, backoff: { type: 'side' } });
  }

  async stop(): Promise<void> {
    await this.worker?.close();
    await this.queue?.close();
  }

  private async run(job: Job): Promise<void> {
    const handler = this.opts.handlers[job.name as keyof SideJobs] as (data: unknown, attemptsMade: number) => Promise<void>;
    await handler(job.data, job.attemptsMade);
  }
}
