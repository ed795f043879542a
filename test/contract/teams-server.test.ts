import { ADAPTIVE, TeamsWebhookServer, render } from './teams-server';

const HOOK = '/webhookb2/g@t/IncomingWebhook/a/b';
const card = (body: unknown[], actions?: unknown[]) => ({ type: 'message', attachments: [{ contentType: ADAPTIVE, contentUrl: null, content: { type: 'AdaptiveCard', version: '1.4', body, ...(actions ? { actions } : {}) } }] });

describe('Microsoft Teams incoming-webhook contract server', () => {
  let teams: TeamsWebhookServer;
  beforeAll(async () => {
    teams = await TeamsWebhookServer.start({ hooks: [HOOK] });
  });
  afterAll(() => teams.close());
  const pause = () => new Promise((r) => setTimeout(r, 1_100));

  const post = async (body: unknown, hook = HOOK) => {
    const res = await fetch(teams.url(hook), { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
    return { status: res.status, body: await res.text() };
  };

  it('200 1 for a simple text, a MessageCard with a summary, and an Adaptive Card message', async () => {
    expect(await post({ text: 'Hello World' })).toEqual({ status: 200, body: '1' });
    expect(await post({ '@type': 'MessageCard', summary: 's', sections: [] })).toEqual({ status: 200, body: '1' });
    expect(await post(card([{ type: 'TextBlock', text: 'x' }, { type: 'RichTextBlock', inlines: [{ type: 'TextRun', text: 'y' }] }], [{ type: 'Action.OpenUrl', title: 'Go', url: 'https://x.example' }]))).toEqual({ status: 200, body: '1' });
  });

  it('400 for what Teams refuses: not JSON, no card, a MessageCard without summary or text, Action.Submit, a wrong content type', async () => {
    await pause();
    expect(await post('{nope')).toEqual({ status: 400, body: 'Bad payload received by generic incoming webhook.' });
    expect(await post({ '@type': 'MessageCard', sections: [] })).toEqual({ status: 400, body: 'Summary or Text is required.' });
    expect((await post(card([{ type: 'TextBlock', text: 'x' }], [{ type: 'Action.Submit', title: 'Go' }]))).status).toBe(400);
    await pause();
    expect((await post({ type: 'message', attachments: [{ contentType: 'application/json', content: {} }] })).status).toBe(400);
    expect((await post(card([{ type: 'Marquee', text: 'x' }]))).status).toBe(400);
  });

  it('more than 4 requests in a second are throttled with HTTP error 429 in a 200 body; over 28 KB is HTTP error 413', async () => {
    await pause();
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await post({ text: `n${i}` }));
    expect(answers.slice(0, 4).map((a) => a.body)).toEqual(['1', '1', '1', '1']);
    expect(answers[4]).toMatchObject({ status: 200, body: expect.stringContaining('Microsoft Teams endpoint returned HTTP error 429') });
    await pause();
    expect(await post({ text: 'x'.repeat(29 * 1024) })).toMatchObject({ status: 200, body: expect.stringContaining('HTTP error 413') });
    expect((await post({ text: 'x' }, '/webhookb2/unknown')).status).toBe(404);
  });

  it('render: Markdown is rendered in TextBlock and facts, TextRun is shown as it is', () => {
    const seen = render(card([{ type: 'TextBlock', text: '**b** [l](https://x.example) \\*n\\*' }, { type: 'RichTextBlock', inlines: [{ type: 'TextRun', text: '[t](https://y.example)' }] }, { type: 'FactSet', facts: [{ title: 'k', value: '_i_' }] }]));
    expect(seen).toEqual({ text: 'b l *n*\n[t](https://y.example)\nk: i\n', links: [{ url: 'https://x.example', label: 'l' }], formatted: ['**b**', '_i_'] });
  });
});
