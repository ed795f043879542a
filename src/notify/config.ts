import { z } from 'zod';
import { SIEM_CHANNELS } from '../playbook/model';

/**
 * Where notify steps (and approval requests) are delivered: named channels, each a generic webhook,
 * a Slack incoming webhook or a Microsoft Teams incoming webhook. A playbook names channels; their
 * URLs and secrets live here, never in a playbook. `splunk` and `elasticsearch` are not channels of
 * this section: a notify record reaches them through the ledger, as the SIEM stage ships it.
 */

export const ChannelName = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, "expected a channel name: lower-case letters, digits and '-', at most 63");

const HttpUrl = z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' });

export const NotifyChannel = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('webhook'),
    url: HttpUrl,
    /** Signs every request (X-Cordon-Timestamp, X-Cordon-Signature: v1=HMAC-SHA256), as the webhook enforcer does. */
    secret: z.string().min(32, 'expected at least 32 characters').optional(),
  }),
  z.strictObject({ type: z.literal('slack'), url: HttpUrl }),
  z.strictObject({ type: z.literal('teams'), url: HttpUrl }),
]);
export type NotifyChannel = z.infer<typeof NotifyChannel>;

export const NotifyConfig = z
  .object({
    channels: z.record(z.string(), NotifyChannel).default({}),
    /**
     * The on-call rota: each approver (a token name) gets their own signed approve/deny links, on
     * their channel, when an approval asking one of their groups opens (or escalates to one).
     */
    oncall: z
      .array(
        z.strictObject({
          approver: z.string().min(1).max(128),
          groups: z.array(z.string().min(1).max(128)).min(1),
          channel: ChannelName,
        }),
      )
      .default([]),
    /** One delivery attempt; a slower answer counts as a failed attempt. */
    timeoutMs: z.number().int().min(100).default(10_000),
    retry: z
      .object({
        /** Attempts of one delivery, the first included; only 429, 5xx and network errors are tried again. */
        attempts: z.number().int().min(1).max(20).default(6),
        initialMs: z.number().int().min(1).default(1_000),
        /** The longest wait between attempts; a Retry-After longer than this ends the delivery as failed. */
        maxMs: z.number().int().min(1).default(5 * 60_000),
      })
      .prefault({}),
  })
  .prefault({})
  .superRefine((n, ctx) => {
    for (const name of Object.keys(n.channels)) {
      const named = ChannelName.safeParse(name);
      if (!named.success) ctx.addIssue({ code: 'custom', path: ['channels', name], message: named.error.issues[0]!.message });
      if ((SIEM_CHANNELS as readonly string[]).includes(name)) {
        ctx.addIssue({ code: 'custom', path: ['channels', name], message: `${name} is the SIEM channel (through the ledger); pick another name` });
      }
    }
    n.oncall.forEach((o, i) => {
      if (!Object.hasOwn(n.channels, o.channel)) {
        ctx.addIssue({ code: 'custom', path: ['oncall', i, 'channel'], message: `no channel ${o.channel} in notify.channels` });
      }
    });
  });
export type NotifyConfig = z.infer<typeof NotifyConfig>;

/** The channels of a notify step that are missing from the config (SIEM channels always exist). */
export function unknownChannels(channels: readonly string[], config: NotifyConfig): string[] {
  return channels.filter((c) => !(SIEM_CHANNELS as readonly string[]).includes(c) && !Object.hasOwn(config.channels, c));
}

/** Each notify step of these playbooks that names a channel the config does not have. */
export function channelProblems(
  playbooks: readonly { id: string; spec: { steps: readonly { id: string; type: string; channels?: readonly string[] }[] } }[],
  config: NotifyConfig,
): string[] {
  return playbooks.flatMap((p) =>
    p.spec.steps.flatMap((s) =>
      s.type === 'notify' ? unknownChannels(s.channels ?? [], config).map((c) => `${p.id} step ${s.id}: no channel ${c} in notify.channels`) : [],
    ),
  );
}
