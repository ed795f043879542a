import { NotifyConfig, channelProblems } from '../../src/notify/config';
import { httpOutcome, retryAfterMs } from '../../src/notify/outcome';
import { teamsOutcome } from '../../src/notify/teams';

const answer = (status: number, body = '', headers: Record<string, string> = {}) => ({ status, body, headers: new Headers(headers) });

describe('what a delivery attempt came to', () => {
  it('429, 408 and 5xx are tried again (with Retry-After); any other refusal is final', () => {
    expect(httpOutcome(answer(204))).toEqual({ kind: 'delivered', status: 204 });
    expect(httpOutcome(answer(429, 'slow down', { 'retry-after': '30' }))).toEqual({ kind: 'retry', status: 429, error: '429 slow down', retryAfterMs: 30_000 });
    expect(httpOutcome(answer(408)).kind).toBe('retry');
    expect(httpOutcome(answer(503)).kind).toBe('retry');
    for (const [status, body] of [[400, 'invalid_payload'], [401, ''], [403, 'action_prohibited'], [404, 'no_service'], [410, 'channel_is_archived']] as const) {
      expect(httpOutcome(answer(status, body))).toEqual({ kind: 'refused', status, error: `${status} ${body || 'no body'}` });
    }
  });

  it('Retry-After in seconds or as an HTTP date', () => {
    const now = Date.parse('2024-05-01T12:00:00Z');
    expect(retryAfterMs('120', now)).toBe(120_000);
    expect(retryAfterMs('Wed, 01 May 2024 12:00:45 GMT', now)).toBe(45_000);
    expect(retryAfterMs('Wed, 01 May 2024 11:00:00 GMT', now)).toBe(0);
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs(null, now)).toBeUndefined();
  });

  it('Teams: a 2xx whose body reports HTTP error 429 or 5xx is tried again, another HTTP error is final', () => {
    expect(teamsOutcome(answer(200, '1'))).toEqual({ kind: 'delivered', status: 200 });
    expect(teamsOutcome(answer(202, ''))).toEqual({ kind: 'delivered', status: 202 });
    expect(teamsOutcome(answer(200, 'Microsoft Teams endpoint returned HTTP error 429 with ContextId x'))).toMatchObject({ kind: 'retry', status: 429 });
    expect(teamsOutcome(answer(200, 'Microsoft Teams endpoint returned HTTP error 502 with ContextId x'))).toMatchObject({ kind: 'retry', status: 502 });
    expect(teamsOutcome(answer(200, 'Microsoft Teams endpoint returned HTTP error 413 with ContextId x'))).toMatchObject({ kind: 'refused', status: 413 });
    expect(teamsOutcome(answer(400, 'Summary or Text is required.'))).toMatchObject({ kind: 'refused', status: 400 });
  });
});

describe('notify config', () => {
  const issues = (raw: unknown) => {
    const r = NotifyConfig.safeParse(raw);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('refuses the SIEM names, bad names and URLs, short secrets, and on-call entries without their channel', () => {
    expect(issues({ channels: { splunk: { type: 'slack', url: 'https://hooks.slack.com/x' } } })).toEqual(['channels.splunk: splunk is the SIEM channel (through the ledger); pick another name']);
    expect(issues({ channels: { 'Bad Name': { type: 'slack', url: 'https://x' } } }).join()).toMatch(/expected a channel name/);
    expect(issues({ channels: { a: { type: 'teams', url: 'ftp://x' } } }).join()).toMatch(/expected an http\(s\) URL/);
    expect(issues({ channels: { a: { type: 'webhook', url: 'https://x', secret: 'short' } } }).join()).toMatch(/at least 32 characters/);
    expect(issues({ channels: { a: { type: 'pigeon', url: 'https://x' } } })).not.toEqual([]);
    expect(issues({ oncall: [{ approver: 'alice', groups: ['soc-oncall'], channel: 'nope' }] })).toEqual(['oncall.0.channel: no channel nope in notify.channels']);
    expect(issues({})).toEqual([]);
  });

  it('names each notify step whose channel is not configured', () => {
    const config = NotifyConfig.parse({ channels: { 'soc-slack': { type: 'slack', url: 'https://x' } } });
    const playbooks = [{ id: 'p@1', spec: { steps: [{ id: 'tell', type: 'notify', channels: ['splunk', 'elasticsearch', 'soc-slack', 'soc-teams'] }, { id: 'q', type: 'quarantine' }] } }];
    expect(channelProblems(playbooks, config)).toEqual(['p@1 step tell: no channel soc-teams in notify.channels']);
  });
});
