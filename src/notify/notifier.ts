import type { LedgerEntry } from '../ledger/records';
import type { Logger } from '../logger';
import type { NotifyChannel, NotifyConfig } from './config';
import type { Notice } from './notice';
import type { Answer, Outcome } from './outcome';
import { slackOutcome, slackRequest } from './slack';
import { teamsOutcome, teamsRequest } from './teams';
import { webhookOutcome, webhookRequest } from './webhook';

/**
 * Delivers notices to configured channels, one attempt per call: a delivery is a job on the side
 * queue (src/contain/side-queue.ts), which calls `attempt` again after the delay a `RetryLater`
 * names. Only 429, 5xx and network errors are tried again, with exponential backoff and at least
 * the receiver's Retry-After; every delivery ends in exactly one ledger record, delivered or not.
 */

export interface Delivery {
  /** The same on every attempt: the side-queue job id and the webhook's X-Cordon-Delivery. */
  id: string;
  channel: string;
  notice: Notice;
  actor: string;
  incidentId: string;
  /** The ledger record's target: the step's job id, or the approval id. */
  target: string;
  approvalId?: string;
}

/** Thrown to have the side queue run the attempt again after `delayMs`. */
export class RetryLater extends Error {
  override name = 'RetryLater';
  constructor(
    readonly delayMs: number,
    message: string,
  ) {
    super(message);
  }
}

export interface NotifierDeps {
  config: NotifyConfig;
  append: (entry: LedgerEntry) => Promise<unknown>;
  log: Logger;
  clock?: () => number;
  random?: () => number;
}

export class Notifier {
  private readonly clock: () => number;
  private readonly random: () => number;

  constructor(private readonly deps: NotifierDeps) {
    this.clock = deps.clock ?? Date.now;
    this.random = deps.random ?? Math.random;
  }

  get attempts(): number {
    return this.deps.config.retry.attempts;
  }

  /** Attempt number `attemptsMade + 1` of a delivery: records the end, or throws RetryLater. */
  async attempt(d: Delivery, attemptsMade: number): Promise<void> {
    const attempt = attemptsMade + 1;
    const channel = this.deps.config.channels[d.channel];
    if (!channel) return this.record(d, undefined, attempt, { kind: 'refused', status: 0, error: `no channel ${d.channel} in notify.channels` });
    const outcome = await this.send(channel, d);
    if (outcome.kind === 'retry') {
      const wait = retryDelay(outcome, attempt, this.deps.config.retry, this.random());
      if (attempt < this.attempts && wait.ok) {
        this.deps.log.warn({ delivery: d.id, channel: d.channel, attempt, error: outcome.error, delayMs: wait.delayMs }, 'notification not delivered yet, trying again');
        throw new RetryLater(wait.delayMs, outcome.error);
      }
      const error = wait.ok ? `${outcome.error} (after ${attempt} attempts)` : `${outcome.error}; ${wait.reason}`;
      return this.record(d, channel, attempt, { ...outcome, error });
    }
    return this.record(d, channel, attempt, outcome);
  }

  private async send(channel: NotifyChannel, d: Delivery): Promise<Outcome> {
    const now = this.clock();
    const request =
      channel.type === 'slack'
        ? slackRequest(d.notice)
        : channel.type === 'teams'
          ? teamsRequest(d.notice)
          : webhookRequest(d.notice, { delivery: d.id, now, ...(channel.secret ? { secret: channel.secret } : {}) });
    let answer: Answer;
    try {
      const res = await fetch(channel.url, { method: 'POST', headers: request.headers, body: request.body, redirect: 'error', signal: AbortSignal.timeout(this.deps.config.timeoutMs) });
      answer = { status: res.status, body: await res.text(), headers: res.headers };
    } catch (err) {
      const e = err as Error;
      return { kind: 'retry', error: e.name === 'TimeoutError' ? `no answer within ${this.deps.config.timeoutMs} ms` : `${e.message}${e.cause ? `: ${(e.cause as Error).message}` : ''}` };
    }
    return channel.type === 'slack' ? slackOutcome(answer, now) : channel.type === 'teams' ? teamsOutcome(answer, now) : webhookOutcome(answer, now);
  }

  private async record(d: Delivery, channel: NotifyChannel | undefined, attempts: number, outcome: Outcome): Promise<void> {
    const delivered = outcome.kind === 'delivered';
    const kind = channel ? `${d.channel} (${channel.type})` : d.channel;
    const what = d.notice.kind === 'approval' ? `approval links for ${d.notice.approval?.approver}` : 'notify';
    await this.deps.append({
      actor: d.actor,
      action: 'playbook_step',
      target: d.target,
      incidentId: d.incidentId,
      ...(d.approvalId ? { approvalId: d.approvalId } : {}),
      reason: delivered ? `${what} to ${kind}: delivered${attempts > 1 ? ` on attempt ${attempts}` : ''}` : `${what} to ${kind}: not delivered: ${'error' in outcome ? outcome.error : ''}`,
      after: {
        step: d.notice.step,
        type: 'notify',
        delivery: d.id,
        kind: d.notice.kind,
        channel: d.channel,
        channelType: channel?.type ?? null,
        outcome: delivered ? 'delivered' : 'failed',
        attempts,
        status: outcome.status ?? null,
        ...(outcome.kind !== 'delivered' ? { error: outcome.error } : {}),
        ...(d.notice.approval ? { approver: d.notice.approval.approver } : {}),
      },
    });
  }
}

/**
 * How long to wait before attempt `attempt + 1`: exponential from `initialMs` (with jitter, capped
 * at `maxMs`), never less than the receiver's Retry-After; a Retry-After beyond `maxMs` ends it.
 */
export function retryDelay(
  outcome: Extract<Outcome, { kind: 'retry' }>,
  attempt: number,
  retry: NotifyConfig['retry'],
  random: number,
): { ok: true; delayMs: number } | { ok: false; reason: string } {
  if (outcome.retryAfterMs !== undefined && outcome.retryAfterMs > retry.maxMs) {
    return { ok: false, reason: `Retry-After ${Math.ceil(outcome.retryAfterMs / 1000)} s is longer than notify.retry.maxMs` };
  }
  const backoff = Math.min(retry.maxMs, retry.initialMs * 2 ** (attempt - 1));
  const jittered = Math.round(backoff * (0.5 + random / 2));
  return { ok: true, delayMs: Math.max(jittered, outcome.retryAfterMs ?? 0) };
}
