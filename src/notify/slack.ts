import { facts, type Notice } from './notice';
import { httpOutcome, type Answer, type Outcome } from './outcome';

/**
 * A Slack incoming webhook message (Slack: "Sending messages using incoming webhooks", Block Kit):
 * `text` is the notification fallback, `blocks` the message. Hostile names reach Slack only inside
 * mrkdwn with `&`, `<` and `>` escaped (Slack: "Formatting text for app surfaces", escaping), so a
 * workload named `<!channel>` or `<https://evil|approve>` is shown, never parsed as a mention or a
 * link; the only links are the approve/deny buttons, whose URLs Cordon made.
 */

/** Block Kit limits: header plain_text 150, section text 3000, field text 2000, button text 75. */
const LIMITS = { header: 150, section: 3000, field: 2000 } as const;

export function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function slackPayload(n: Notice): { text: string; blocks: unknown[] } {
  const blocks: unknown[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(n.title, LIMITS.header) } },
    { type: 'section', text: { type: 'mrkdwn', text: clip(slackEscape(n.text), LIMITS.section) } },
    {
      type: 'section',
      fields: facts(n)
        .slice(0, 10)
        .map(([label, value]) => ({ type: 'mrkdwn', text: clip(`*${label}*\n${slackEscape(value)}`, LIMITS.field) })),
    },
  ];
  if (n.approval) {
    blocks.push({
      type: 'actions',
      elements: [
        { type: 'button', text: { type: 'plain_text', text: 'Approve' }, style: 'primary', url: n.approval.approve, action_id: 'cordon-approve' },
        { type: 'button', text: { type: 'plain_text', text: 'Deny' }, style: 'danger', url: n.approval.deny, action_id: 'cordon-deny' },
      ],
    });
  }
  return { text: clip(slackEscape(`${n.title}: ${n.text}`), LIMITS.section), blocks };
}

export function slackRequest(n: Notice): { body: string; headers: Record<string, string> } {
  return { body: JSON.stringify(slackPayload(n)), headers: { 'content-type': 'application/json' } };
}

/** Slack answers 200 `ok`; errors are short strings (`invalid_payload`, `no_service`, ...) with their status. */
export function slackOutcome(answer: Answer, now?: number): Outcome {
  return httpOutcome(answer, now);
}

/** Cuts at a limit without splitting an escape such as `&amp;`. */
function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max - 1).replace(/&[a-z]{0,3}$/, '');
  return `${cut}…`;
}
