import { z } from 'zod';
import { WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER, signWebhook } from '../enforcer/webhook';
import type { Notice } from './notice';
import { httpOutcome, type Answer, type Outcome } from './outcome';

/**
 * The generic webhook channel: the notice as JSON, POSTed to any receiver (a pager, a ticketing
 * bridge, a SOAR). With a secret, each attempt is signed the way the webhook enforcer signs
 * (`X-Cordon-Timestamp`, `X-Cordon-Signature: v1=<HMAC-SHA256(secret, timestamp + "." + body)>`),
 * so a receiver checks it with the same code. `X-Cordon-Delivery` is the same on every attempt of
 * one delivery: a receiver that saw it already can drop the retry.
 */

export const DELIVERY_HEADER = 'X-Cordon-Delivery';

const Text = z.string().max(4_000);
export const NotificationBody = z.strictObject({
  type: z.literal('cordon.notification'),
  version: z.literal(1),
  kind: z.enum(['incident', 'approval']),
  title: Text,
  text: Text,
  incident: z.strictObject({
    id: z.string(),
    severity: z.string(),
    score: z.number(),
    confidence: z.number(),
    techniques: z.array(z.string()),
    root: z.strictObject({ key: z.string(), name: z.string().optional(), ip: z.string().optional() }),
  }),
  playbook: z.string(),
  step: z.string(),
  approval: z
    .strictObject({ id: z.string(), approvers: z.array(z.string()), deadline: z.string(), approver: z.string(), approve: z.url(), deny: z.url() })
    .optional(),
  sentAt: z.iso.datetime(),
});
export type NotificationBody = z.infer<typeof NotificationBody>;

export function webhookRequest(n: Notice, opts: { delivery: string; secret?: string; now: number }): { body: string; headers: Record<string, string> } {
  const payload: NotificationBody = { type: 'cordon.notification', version: 1, ...n, sentAt: new Date(opts.now).toISOString() };
  const body = JSON.stringify(payload);
  const headers: Record<string, string> = { 'content-type': 'application/json', [DELIVERY_HEADER]: opts.delivery };
  if (opts.secret) {
    const timestamp = Math.floor(opts.now / 1000);
    headers[WEBHOOK_TIMESTAMP_HEADER] = String(timestamp);
    headers[WEBHOOK_SIGNATURE_HEADER] = signWebhook(opts.secret, timestamp, body);
  }
  return { body, headers };
}

export function webhookOutcome(answer: Answer, now?: number): Outcome {
  return httpOutcome(answer, now);
}
