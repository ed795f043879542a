import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Incident } from '../../src/correlate/incident';
import type { LedgerEntry } from '../../src/ledger/records';
import { NotifyConfig } from '../../src/notify/config';
import { approvalNotice, incidentNotice } from '../../src/notify/notice';
import { Notifier, RetryLater, retryDelay, type Delivery } from '../../src/notify/notifier';
import { slackEscape, slackOutcome } from '../../src/notify/slack';
import { teamsEscape } from '../../src/notify/teams';
import { NotifyWebhookReceiver } from '../contract/notify-webhook-server';
import { SlackWebhookServer, render as renderSlack } from '../contract/slack-server';
import { TeamsWebhookServer, render as renderTeams } from '../contract/teams-server';
import { testLog } from '../support/stack';

/** A workload name an attacker chose: SPL, Slack and Markdown syntax, a mention and a fake link. */
const HOSTILE = 'ws9" | ] <!channel> <https://evil.example/a|Approve> & *bold* [click](https://evil.example/b) _x_';
const SLACK_HOOK = '/services/T0001/B0001/abcdefghijklmnopqrstuvwx';
const TEAMS_HOOK = '/webhookb2/0000@0000/IncomingWebhook/abc/def';
const SECRET = 'notify-secret-0123456789abcdef0123456789';

const incident = {
  id: 'inc-0123456789abcdef0123',
  severity: 'high',
  score: 42,
  confidence: 0.9,
  techniques: ['T1021.002'],
  root: 'host:ws9',
  entities: [{ key: 'host:ws9', kind: 'host', name: HOSTILE, ip: '10.1.0.9', role: 'workstation', roleSource: 'label', position: 'root' }],
} as unknown as Incident;

const LINKS = { approver: 'alice', approve: 'https://cordon.example/a/approve-token', deny: 'https://cordon.example/a/deny-token' };

describe('notification delivery against contract servers', () => {
  let slack: SlackWebhookServer;
  let teams: TeamsWebhookServer;
  let hook: NotifyWebhookReceiver;
  let silent: http.Server;
  let silentUrl: string;

  beforeAll(async () => {
    slack = await SlackWebhookServer.start({ hooks: [SLACK_HOOK] });
    teams = await TeamsWebhookServer.start({ hooks: [TEAMS_HOOK] });
    hook = await NotifyWebhookReceiver.start({ secret: SECRET });
    silent = http.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/`;
  });
  afterAll(async () => {
    await Promise.all([slack.close(), teams.close(), hook.close()]);
    silent.closeAllConnections();
    silent.close();
  });

  function notifier(over: Record<string, unknown> = {}) {
    const entries: LedgerEntry[] = [];
    const config = NotifyConfig.parse({
      channels: {
        'soc-slack': { type: 'slack', url: slack.url(SLACK_HOOK) },
        'soc-teams': { type: 'teams', url: teams.url(TEAMS_HOOK) },
        pager: { type: 'webhook', url: hook.url, secret: SECRET },
        'pager-unsigned': { type: 'webhook', url: hook.url },
        gone: { type: 'slack', url: slack.url('/services/T0001/B0001/revoked') },
        silent: { type: 'webhook', url: silentUrl },
      },
      timeoutMs: 300,
      retry: { attempts: 3, initialMs: 10, maxMs: 5_000 },
      ...over,
    });
    const n = new Notifier({ config, append: async (e) => void entries.push(e), log: testLog, random: () => 1 });
    return { n, entries };
  }
  const delivery = (channel: string, notice = incidentNotice(incident, 'pb@abc', 'tell', `quarantining ${HOSTILE}`)): Delivery => ({
    id: `inc-0123456789abcdef0123.pb@abc.tell.${channel}`,
    channel,
    notice,
    actor: 'playbook:pb@abc',
    incidentId: incident.id,
    target: 'inc-0123456789abcdef0123.pb@abc.tell',
  });
  /** Runs attempts as the side queue would, until one does not ask for another. */
  async function deliver(n: Notifier, d: Delivery): Promise<number[]> {
    const delays: number[] = [];
    for (let made = 0; ; made++) {
      try {
        await n.attempt(d, made);
        return delays;
      } catch (err) {
        if (!(err instanceof RetryLater)) throw err;
        delays.push(err.delayMs);
      }
    }
  }

  describe('Slack incoming webhook', () => {
    it('a hostile name reaches Slack as text: no mention, no link but the approve/deny buttons', async () => {
      const { n, entries } = notifier();
      await deliver(n, delivery('soc-slack', approvalNotice(incident, { id: 'ap-1', playbookId: 'pb@abc', question: `Quarantine ${HOSTILE}?`, approvers: ['soc-oncall'], deadline: 1_700_000_000_000 }, 'ask', LINKS)));
      const seen = renderSlack(slack.messages.at(-1)!.payload);
      expect(seen.mentions).toEqual([]);
      expect(seen.links).toEqual([
        { url: LINKS.approve, label: 'Approve' },
        { url: LINKS.deny, label: 'Deny' },
      ]);
      expect(seen.text).toContain(`Quarantine ${HOSTILE}?`);
      expect(seen.text).toContain(`*Root*\n${HOSTILE} (10.1.0.9)`);
      expect(entries).toEqual([expect.objectContaining({ action: 'playbook_step', reason: 'approval links for alice to soc-slack (slack): delivered', after: expect.objectContaining({ outcome: 'delivered', attempts: 1, status: 200, channel: 'soc-slack' }) })]);
    });

    it('escapes only &, < and >, as Slack documents', () => {
      expect(slackEscape('a & b <c> "d" *e*')).toBe('a &amp; b &lt;c&gt; "d" *e*');
    });

    it('429 with Retry-After: waits at least that long, then delivers; the record says which attempt', async () => {
      const { n, entries } = notifier();
      slack.rateLimit(1, 2);
      const before = slack.messages.length;
      const delays = await deliver(n, delivery('soc-slack'));
      expect(delays).toEqual([2_000]);
      expect(slack.messages.length).toBe(before + 1);
      expect(slack.requests.slice(-2).map((r) => r.status)).toEqual([429, 200]);
      expect(entries[0]).toMatchObject({ reason: 'notify to soc-slack (slack): delivered on attempt 2', after: { outcome: 'delivered', attempts: 2 } });
    });

    it('a Retry-After beyond notify.retry.maxMs ends the delivery as failed at once', async () => {
      const { n, entries } = notifier();
      slack.rateLimit(1, 3_600);
      expect(await deliver(n, delivery('soc-slack'))).toEqual([]);
      expect(entries[0]).toMatchObject({ after: { outcome: 'failed', attempts: 1, status: 429, error: expect.stringContaining('Retry-After 3600 s is longer than notify.retry.maxMs') } });
    });

    it('500 rollup_error is tried again with backoff, and recorded as failed after the last attempt', async () => {
      const { n, entries } = notifier();
      slack.fail(3);
      expect(await deliver(n, delivery('soc-slack'))).toEqual([10, 20]);
      expect(entries).toHaveLength(1);
      expect(entries[0]).toMatchObject({ reason: 'notify to soc-slack (slack): not delivered: 500 rollup_error (after 3 attempts)', after: { outcome: 'failed', attempts: 3, status: 500 } });
    });

    it('404 no_service (a revoked webhook) is refused at once, not retried', async () => {
      const { n, entries } = notifier();
      expect(await deliver(n, delivery('gone'))).toEqual([]);
      expect(entries[0]).toMatchObject({ after: { outcome: 'failed', attempts: 1, status: 404, error: '404 no_service' } });
    });

    it('400 invalid_payload is a refusal: what Slack answers a body that is not JSON', async () => {
      const res = await fetch(slack.url(SLACK_HOOK), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text": ' });
      const answer = { status: res.status, body: await res.text(), headers: res.headers };
      expect(answer.body).toBe('invalid_payload');
      expect(slackOutcome(answer)).toEqual({ kind: 'refused', status: 400, error: '400 invalid_payload' });
    });
  });

  describe('Microsoft Teams incoming webhook', () => {
    it('an Adaptive Card where a hostile name is plain text: no link but the approve/deny actions, no formatting', async () => {
      const { n, entries } = notifier();
      await deliver(n, delivery('soc-teams', approvalNotice(incident, { id: 'ap-1', playbookId: 'pb@abc', question: `Quarantine ${HOSTILE}?`, approvers: ['soc-oncall'], deadline: 1_700_000_000_000 }, 'ask', LINKS)));
      const seen = renderTeams(teams.messages.at(-1)!.payload);
      expect(seen.links).toEqual([
        { url: LINKS.approve, label: 'Approve' },
        { url: LINKS.deny, label: 'Deny' },
      ]);
      expect(seen.formatted).toEqual([]);
      expect(seen.text).toContain(`Quarantine ${HOSTILE}?`);
      expect(seen.text).toContain(`Root: ${HOSTILE} (10.1.0.9)`);
      expect(entries[0]).toMatchObject({ after: { outcome: 'delivered', channelType: 'teams', status: 200 } });
    });

    it('Markdown in a TextBlock is backslash-escaped so Teams shows it literally (bare URLs stay TextRun-only)', () => {
      const markup = 'ws9" | ] *bold* [click](x) _x_ `code` # h';
      const card = (text: string) => ({ type: 'message', attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive', content: { type: 'AdaptiveCard', version: '1.4', body: [{ type: 'TextBlock', text }] } }] });
      expect(renderTeams(card(teamsEscape(markup)))).toEqual({ text: `${markup}\n`, links: [], formatted: [] });
      const raw = renderTeams(card(markup));
      expect(raw.links).toEqual([{ url: 'x', label: 'click' }]);
      expect(raw.formatted.length).toBeGreaterThan(0);
    });

    it('a throttled webhook (HTTP error 429 in a 200 body) is tried again', async () => {
      const { n, entries } = notifier();
      teams.throttle(1);
      expect(await deliver(n, delivery('soc-teams'))).toEqual([10]);
      expect(teams.requests.slice(-2).map((r) => [r.status, r.body.includes('HTTP error 429')])).toEqual([
        [200, true],
        [200, false],
      ]);
      expect(entries[0]).toMatchObject({ after: { outcome: 'delivered', attempts: 2 } });
    });
  });

  describe('generic webhook', () => {
    it('signed JSON the receiver verifies; a 429 with Retry-After and a 503 are tried again under the same delivery id', async () => {
      const { n, entries } = notifier();
      hook.answer({ status: 429, retryAfter: '1' }, { status: 503 });
      const d = delivery('pager');
      expect(await deliver(n, d)).toEqual([1_000, 20]);
      expect(hook.requests.slice(-3).map((r) => [r.status, r.delivery])).toEqual([
        [429, d.id],
        [503, d.id],
        [200, d.id],
      ]);
      expect(hook.received.at(-1)).toMatchObject({ type: 'cordon.notification', kind: 'incident', text: `quarantining ${HOSTILE}`, incident: { id: incident.id, root: { name: HOSTILE } } });
      expect(entries[0]).toMatchObject({ after: { outcome: 'delivered', attempts: 3 } });
    });

    it('an unsigned request to a receiver with a secret is refused (401) and not retried', async () => {
      const { n, entries } = notifier();
      expect(await deliver(n, delivery('pager-unsigned'))).toEqual([]);
      expect(entries[0]).toMatchObject({ after: { outcome: 'failed', status: 401, error: expect.stringContaining('missing or malformed timestamp') } });
    });

    it('no answer within notify.timeoutMs counts as a failed attempt and is tried again', async () => {
      const { n, entries } = notifier();
      expect(await deliver(n, delivery('silent'))).toEqual([10, 20]);
      expect(entries[0]).toMatchObject({ after: { outcome: 'failed', attempts: 3, status: null, error: 'no answer within 300 ms (after 3 attempts)' } });
    });
  });

  it('backoff doubles from initialMs with jitter, capped at maxMs, never below Retry-After', () => {
    const retry = { attempts: 6, initialMs: 1_000, maxMs: 8_000 };
    const wait = (attempt: number, random: number, retryAfterMs?: number) => retryDelay({ kind: 'retry', error: 'x', ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) }, attempt, retry, random);
    expect([1, 2, 3, 4, 5].map((a) => wait(a, 1))).toEqual([1_000, 2_000, 4_000, 8_000, 8_000].map((delayMs) => ({ ok: true, delayMs })));
    expect(wait(1, 0)).toEqual({ ok: true, delayMs: 500 });
    expect(wait(1, 0, 3_000)).toEqual({ ok: true, delayMs: 3_000 });
    expect(wait(1, 0, 9_000)).toMatchObject({ ok: false });
  });
});
