import { facts, type Notice } from './notice';
import { brief, httpOutcome, type Answer, type Outcome } from './outcome';

/**
 * A Microsoft Teams incoming webhook message carrying one Adaptive Card (Teams: "Send Adaptive Cards
 * using an Incoming Webhook": `type: message`, one attachment of content type
 * `application/vnd.microsoft.card.adaptive`). Teams renders Markdown in TextBlock and in Fact title
 * and value only ("Format cards in Teams"), so hostile text goes into RichTextBlock TextRuns, which
 * it shows as plain text; the one TextBlock (the title) is Markdown-escaped as well. The only links
 * are the Action.OpenUrl approve/deny actions, whose URLs Cordon made.
 */

export const ADAPTIVE_CARD = 'application/vnd.microsoft.card.adaptive';

/** Backslash-escapes the characters that open Markdown constructs (emphasis, links, code, headings, HTML). */
export function teamsEscape(text: string): string {
  return text.replace(/[\\`*_~[\]()<>#!|{}]/g, (c) => `\\${c}`);
}

export function teamsPayload(n: Notice): Record<string, unknown> {
  const run = (text: string, bold = false) => ({ type: 'TextRun', text, ...(bold ? { weight: 'Bolder' } : {}) });
  const card = {
    $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
    type: 'AdaptiveCard',
    version: '1.4',
    body: [
      { type: 'TextBlock', text: teamsEscape(n.title), weight: 'Bolder', size: 'Medium', wrap: true },
      { type: 'RichTextBlock', inlines: [run(n.text)] },
      { type: 'RichTextBlock', inlines: facts(n).flatMap(([label, value], i) => [run(`${i > 0 ? '\n' : ''}${label}: `, true), run(value)]) },
    ],
    ...(n.approval
      ? {
          actions: [
            { type: 'Action.OpenUrl', title: 'Approve', url: n.approval.approve },
            { type: 'Action.OpenUrl', title: 'Deny', url: n.approval.deny },
          ],
        }
      : {}),
  };
  return { type: 'message', attachments: [{ contentType: ADAPTIVE_CARD, contentUrl: null, content: card }] };
}

export function teamsRequest(n: Notice): { body: string; headers: Record<string, string> } {
  return { body: JSON.stringify(teamsPayload(n)), headers: { 'content-type': 'application/json' } };
}

/**
 * Teams answers 200 `1`. A connector that is throttled may answer 200 with the error in the body
 * ("Microsoft Teams endpoint returned HTTP error 429 ..."; Teams: "Rate limiting for connectors":
 * read the body, connectors do not throw 429s), so the body is read before the status is trusted.
 */
export function teamsOutcome(answer: Answer, now?: number): Outcome {
  const inner = /HTTP error (\d{3})/.exec(answer.body);
  if (answer.status >= 200 && answer.status < 300 && inner) {
    const status = Number(inner[1]);
    const error = `${answer.status} ${brief(answer.body)}`;
    return status === 429 || status >= 500 ? { kind: 'retry', status, error } : { kind: 'refused', status, error };
  }
  return httpOutcome(answer, now);
}
