import { SlackWebhookServer, render } from './slack-server';

const HOOK = '/services/T1/B1/secretpart';

describe('Slack incoming-webhook contract server', () => {
  let slack: SlackWebhookServer;
  beforeAll(async () => {
    slack = await SlackWebhookServer.start({ hooks: [HOOK] });
  });
  afterAll(() => slack.close());

  const post = async (body: string, contentType = 'application/json', hook = HOOK) => {
    const res = await fetch(slack.url(hook), { method: 'POST', headers: { 'content-type': contentType }, body });
    return { status: res.status, body: await res.text(), retryAfter: res.headers.get('retry-after') };
  };
  const blocks = (b: unknown[]) => JSON.stringify({ text: 'fallback', blocks: b });

  it('200 ok for text, for valid blocks, and for the legacy form body', async () => {
    expect(await post(JSON.stringify({ text: 'hello' }))).toMatchObject({ status: 200, body: 'ok' });
    expect(await post(blocks([{ type: 'section', text: { type: 'mrkdwn', text: '*hi*' } }, { type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: 'Go' }, url: 'https://x.example' }] }]))).toMatchObject({ status: 200 });
    expect(await post(`payload=${encodeURIComponent(JSON.stringify({ text: 'form' }))}`, 'application/x-www-form-urlencoded')).toMatchObject({ status: 200 });
  });

  it('400 invalid_payload: not JSON, not an object, or another content type', async () => {
    for (const [body, type] of [['{"text":', 'application/json'], ['[1]', 'application/json'], ['text=hi', 'text/plain']] as const) {
      expect(await post(body, type)).toEqual({ status: 400, body: 'invalid_payload', retryAfter: null });
    }
  });

  it('400 no_text and invalid_blocks', async () => {
    expect(await post(JSON.stringify({ username: 'x' }))).toMatchObject({ status: 400, body: 'no_text' });
    const bad = [
      [{ type: 'header', text: { type: 'mrkdwn', text: 'headers are plain_text' } }],
      [{ type: 'header', text: { type: 'plain_text', text: 'x'.repeat(151) } }],
      [{ type: 'section', text: { type: 'mrkdwn', text: 'x'.repeat(3001) } }],
      [{ type: 'section' }],
      [{ type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: 'x'.repeat(76) } }] }],
      [{ type: 'section', text: { type: 'mrkdwn', text: 'x' }, unknown: 1 }],
      [{ type: 'video' }],
      Array.from({ length: 51 }, () => ({ type: 'divider' })),
    ];
    for (const b of bad) expect(await post(blocks(b))).toMatchObject({ status: 400, body: 'invalid_blocks' });
  });

  it('404 no_service for an unknown or revoked webhook, 410 channel_is_archived, 429 with Retry-After, 500 rollup_error', async () => {
    expect(await post(JSON.stringify({ text: 'x' }), 'application/json', '/services/T1/B1/other')).toMatchObject({ status: 404, body: 'no_service' });
    slack.rateLimit(1, 7);
    expect(await post(JSON.stringify({ text: 'x' }))).toMatchObject({ status: 429, retryAfter: '7' });
    slack.fail(1);
    expect(await post(JSON.stringify({ text: 'x' }))).toMatchObject({ status: 500, body: 'rollup_error' });
    const other = await SlackWebhookServer.start({ hooks: ['/a', '/b'] });
    other.archive('/a');
    other.revoke('/b');
    const to = (h: string) => fetch(other.url(h), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"x"}' }).then(async (r) => [r.status, await r.text()]);
    expect([await to('/a'), await to('/b')]).toEqual([
      [410, 'channel_is_archived'],
      [404, 'no_service'],
    ]);
    await other.close();
  });

  it('render: mrkdwn controls become links and mentions, entities are decoded once', () => {
    const seen = render({ blocks: [{ type: 'section', text: { type: 'mrkdwn', text: 'hi <!here> see <https://x.example|this> &amp;lt; &lt;b&gt;' } }] });
    expect(seen).toEqual({ text: 'hi @here see this &lt; <b>\n', links: [{ url: 'https://x.example', label: 'this' }], mentions: ['!here'] });
  });
});
