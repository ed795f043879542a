import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { HEC_STATUS, SplunkContractServer, runSpl, splitJson, type IndexedEvent } from './splunk-server';

const TOKEN = '11111111-2222-3333-4444-555555555555';
const ACK_TOKEN = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
const OFF_TOKEN = '00000000-0000-0000-0000-000000000000';

describe('Splunk contract server', () => {
  let splunk: SplunkContractServer;

  beforeAll(async () => {
    splunk = await SplunkContractServer.start({
      hecTokens: [
        { token: TOKEN, indexes: ['cordon', 'main'], defaultIndex: 'cordon' },
        { token: ACK_TOKEN, indexes: ['cordon'], defaultIndex: 'cordon', ack: true },
        { token: OFF_TOKEN, disabled: true },
      ],
      indexes: ['main', 'cordon', 'secret'],
      users: [{ username: 'analyst', password: 's3cret' }],
      authTokens: ['jwt-token-1'],
    });
  });
  afterAll(() => splunk.close());

  async function hec(
    path: string,
    body: string | Buffer,
    headers: Record<string, string> = { Authorization: `Splunk ${TOKEN}` },
  ): Promise<{ status: number; json: Record<string, unknown> }> {
    const res = await fetch(splunk.url + path, { method: 'POST', headers, body });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  }

  /** Asserts the documented status and body of a refusal code. */
  function refused(r: { status: number; json: Record<string, unknown> }, code: number, invalidEventNumber?: number) {
    const [status, text] = HEC_STATUS[code]!;
    expect({ status: r.status, text: r.json.text, code: r.json.code }).toEqual({ status, text, code });
    if (invalidEventNumber !== undefined) expect(r.json['invalid-event-number']).toBe(invalidEventNumber);
  }

  const ev = (event: unknown, extra: Record<string, unknown> = {}) => JSON.stringify({ event, ...extra });

  describe('HEC authentication', () => {
    it('code 2 (401): no Authorization header', async () => {
      refused(await hec('/services/collector/event', ev('x'), {}), 2);
    });
    it('code 3 (401): an Authorization header that is not `Splunk <token>`', async () => {
      refused(await hec('/services/collector/event', ev('x'), { Authorization: TOKEN }), 3);
      refused(await hec('/services/collector/event', ev('x'), { Authorization: `Digest ${TOKEN}` }), 3);
    });
    it('code 4 (403): a token Splunk does not know', async () => {
      refused(await hec('/services/collector/event', ev('x'), { Authorization: `Splunk ${randomUUID()}` }), 4);
    });
    it('code 1 (403): a disabled token', async () => {
      refused(await hec('/services/collector/event', ev('x'), { Authorization: `Splunk ${OFF_TOKEN}` }), 1);
    });
    it('code 16 (400): a known token in the query string, which is off by default; an unknown one is code 4 first', async () => {
      refused(await hec(`/services/collector/event?token=${TOKEN}`, ev('x'), {}), 16);
      refused(await hec(`/services/collector/event?token=${randomUUID()}`, ev('x'), {}), 4);
    });
    it('takes Basic auth with the token as the password', async () => {
      const basic = Buffer.from(`x:${TOKEN}`).toString('base64');
      const r = await hec('/services/collector/event', ev('basic'), { Authorization: `Basic ${basic}` });
      expect(r).toEqual({ status: 200, json: { text: 'Success', code: 0 } });
    });
  });

  describe('HEC event validation', () => {
    it('code 5 (400): an empty body', async () => {
      refused(await hec('/services/collector/event', ''), 5);
      refused(await hec('/services/collector/event', '   \n'), 5);
    });
    it('code 6 (400): malformed JSON, or a value that is not an object', async () => {
      refused(await hec('/services/collector/event', '{"event": "a"'), 6, 0);
      refused(await hec('/services/collector/event', '42'), 6, 0);
      refused(await hec('/services/collector/event', ev('a') + '{"event": '), 6, 1);
      refused(await hec('/services/collector/event', ev('a', { host: 7 })), 6, 0);
    });
    it('code 12 (400): an event without the event field', async () => {
      refused(await hec('/services/collector/event', JSON.stringify({ time: 1, host: 'h' })), 12, 0);
    });
    it('code 13 (400): a blank event field', async () => {
      refused(await hec('/services/collector/event', ev('')), 13, 0);
      refused(await hec('/services/collector/event', ev('   ')), 13, 0);
      refused(await hec('/services/collector/event', ev(null)), 13, 0);
    });
    it('code 15 (400): a non-numeric time or indexed fields that are not strings', async () => {
      refused(await hec('/services/collector/event', ev('a', { time: 'yesterday' })), 15, 0);
      refused(await hec('/services/collector/event', ev('a', { fields: { nested: { no: 1 } } })), 15, 0);
      refused(await hec('/services/collector/event', ev('a', { fields: { n: 5 } })), 15, 0);
    });
    it('code 7 (400): an index the token may not write to, or one that does not exist', async () => {
      refused(await hec('/services/collector/event', ev('a', { index: 'secret' })), 7, 0);
      refused(await hec('/services/collector/event', ev('a', { index: 'nope' })), 7, 0);
    });
    it('takes the events before the bad one and names its zero-based position', async () => {
      const marker = randomUUID();
      const body = ev({ marker, n: 0 }) + ev({ marker, n: 1 }) + JSON.stringify({ nope: 1 }) + ev({ marker, n: 3 });
      refused(await hec('/services/collector/event', body), 12, 2);
      const kept = splunk.indexed.filter((e) => (e.event as { marker?: string }).marker === marker);
      expect(kept.map((e) => (e.event as { n: number }).n)).toEqual([0, 1]);
    });
    it('takes concatenated events (with or without whitespace between them), a JSON array, and gzip', async () => {
      const marker = randomUUID();
      const three = ev({ marker }) + ev({ marker }, { sourcetype: 'st1' }) + '\n  ' + ev({ marker }, { index: 'main' });
      expect((await hec('/services/collector/event', three)).json).toEqual({ text: 'Success', code: 0 });
      expect((await hec('/services/collector', JSON.stringify([{ event: { marker } }, { event: { marker } }]))).status).toBe(200);
      const zipped = gzipSync(Buffer.from(ev({ marker }) + ev({ marker })));
      const gz = await hec('/services/collector/event/1.0', zipped, { Authorization: `Splunk ${TOKEN}`, 'Content-Encoding': 'gzip' });
      expect(gz.status).toBe(200);
      const got = splunk.indexed.filter((e) => (e.event as { marker?: string }).marker === marker);
      expect(got).toHaveLength(7);
      expect(got.map((e) => e.index)).toEqual(['cordon', 'cordon', 'main', 'cordon', 'cordon', 'cordon', 'cordon']);
      expect(got[1]!.sourcetype).toBe('st1');
      expect(splunk.hecRequests.at(-1)).toMatchObject({ gzip: true, status: 200, accepted: 2 });
      refused(await hec('/services/collector/event', Buffer.from('not gzip'), { Authorization: `Splunk ${TOKEN}`, 'Content-Encoding': 'gzip' }), 6);
    });
    it('keeps the envelope: time, host, source, sourcetype, fields', async () => {
      const marker = randomUUID();
      await hec('/services/collector/event', ev({ marker }, { time: 1700000000.125, host: 'h1', source: 's1', sourcetype: 'st', fields: { a: 'b', c: ['d'] } }));
      const e = splunk.indexed.find((x) => (x.event as { marker?: string }).marker === marker)!;
      expect(e).toMatchObject({ time: 1700000000.125, host: 'h1', source: 's1', sourcetype: 'st', fields: { a: 'b', c: ['d'] }, index: 'cordon' });
    });
    it('/raw: one event a line, metadata from the query string', async () => {
      const r = await hec('/services/collector/raw?sourcetype=fw&index=main&host=fw1', 'line one\nline two\n');
      expect(r).toEqual({ status: 200, json: { text: 'Success', code: 0 } });
      expect(splunk.indexed.slice(-2).map((e) => [e.event, e.sourcetype, e.index, e.host, e.endpoint])).toEqual([
        ['line one', 'fw', 'main', 'fw1', 'raw'],
        ['line two', 'fw', 'main', 'fw1', 'raw'],
      ]);
    });
  });

  describe('HEC busy and health', () => {
    it('answers 503 code 9 to the next N requests, taking nothing, then Success', async () => {
      const marker = randomUUID();
      splunk.busy(2);
      expect((await fetch(splunk.url + '/services/collector/health')).status).toBe(503);
      refused(await hec('/services/collector/event', ev({ marker })), 9);
      refused(await hec('/services/collector/event', ev({ marker })), 9);
      expect((await hec('/services/collector/event', ev({ marker }))).status).toBe(200);
      expect(splunk.indexed.filter((e) => (e.event as { marker?: string }).marker === marker)).toHaveLength(1);
      const health = await fetch(splunk.url + '/services/collector/health');
      expect({ status: health.status, body: await health.json() }).toEqual({ status: 200, body: { text: 'HEC is healthy', code: 17 } });
    });
  });

  describe('HEC indexer acknowledgement', () => {
    const ack = (channel?: string) => ({ Authorization: `Splunk ${ACK_TOKEN}`, ...(channel ? { 'X-Splunk-Request-Channel': channel } : {}) });

    it('code 10 (400): no channel on a token with acknowledgement', async () => {
      refused(await hec('/services/collector/event', ev('x'), ack()), 10);
      refused(await hec('/services/collector/raw', 'x', ack()), 10);
    });
    it('code 11 (400): a channel that is not a GUID', async () => {
      refused(await hec('/services/collector/event', ev('x'), ack('not-a-guid')), 11);
    });
    it('code 14 (400): an ack query on a token without acknowledgement, before the channel check', async () => {
      refused(await hec('/services/collector/ack', JSON.stringify({ acks: [0] })), 14);
    });
    it('answers an ackId per request (from 0, per channel) and reports each true once', async () => {
      const channel = randomUUID();
      expect((await hec('/services/collector/event', ev('a'), ack(channel))).json).toEqual({ text: 'Success', code: 0, ackId: 0 });
      expect((await hec(`/services/collector/event?channel=${channel}`, ev('b'), { Authorization: `Splunk ${ACK_TOKEN}` })).json).toEqual({
        text: 'Success',
        code: 0,
        ackId: 1,
      });
      const other = randomUUID();
      expect((await hec('/services/collector/event', ev('c'), ack(other))).json.ackId).toBe(0);
      const q = await hec('/services/collector/ack', JSON.stringify({ acks: [0, 1, 7] }), ack(channel));
      expect(q).toEqual({ status: 200, json: { acks: { '0': true, '1': true, '7': false } } });
      expect((await hec('/services/collector/ack', JSON.stringify({ acks: [0] }), ack(channel))).json).toEqual({ acks: { '0': false } });
      refused(await hec('/services/collector/ack', JSON.stringify({ nope: [] }), ack(channel)), 6);
      refused(await hec('/services/collector/ack', JSON.stringify({ acks: [0] }), ack()), 10);
    });
    it('an ack stays false until the events are indexed, and forever when they were lost', async () => {
      const channel = randomUUID();
      const marker = randomUUID();
      splunk.setAckDelay(300);
      const first = await hec('/services/collector/event', ev({ marker, n: 1 }), ack(channel));
      expect((await hec('/services/collector/ack', JSON.stringify({ acks: [first.json.ackId] }), ack(channel))).json).toEqual({ acks: { '0': false } });
      await new Promise((r) => setTimeout(r, 350));
      expect((await hec('/services/collector/ack', JSON.stringify({ acks: [0] }), ack(channel))).json).toEqual({ acks: { '0': true } });
      splunk.setAckDelay(0);
      splunk.loseAcks(1);
      const lost = await hec('/services/collector/event', ev({ marker, n: 2 }), ack(channel));
      expect(lost.json).toEqual({ text: 'Success', code: 0, ackId: 1 });
      expect((await hec('/services/collector/ack', JSON.stringify({ acks: [1] }), ack(channel))).json).toEqual({ acks: { '1': false } });
      expect(splunk.indexed.filter((e) => (e.event as { marker?: string }).marker === marker).map((e) => (e.event as { n: number }).n)).toEqual([1]);
    });
  });

  describe('REST API', () => {
    const form = (o: Record<string, string>) => new URLSearchParams(o).toString();
    const post = (path: string, body: Record<string, string>, headers: Record<string, string> = {}) =>
      fetch(splunk.url + path, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers }, body: form(body) });

    it('logs in with username and password and answers a session key', async () => {
      const ok = await post('/services/auth/login?output_mode=json', { username: 'analyst', password: 's3cret' });
      expect(ok.status).toBe(200);
      const { sessionKey } = (await ok.json()) as { sessionKey: string };
      expect(sessionKey).toMatch(/^\S{20,}$/);
      const info = await fetch(splunk.url + '/services/server/info?output_mode=json', { headers: { Authorization: `Splunk ${sessionKey}` } });
      expect(info.status).toBe(200);
      expect(((await info.json()) as { generator: { version: string } }).generator.version).toBe('9.3.0');
      const xml = await post('/services/auth/login', { username: 'analyst', password: 's3cret' });
      expect(await xml.text()).toMatch(/<sessionKey>\S+<\/sessionKey>/);
    });
    it('refuses a wrong password (401), a missing one (400), and anonymous calls (401)', async () => {
      const bad = await post('/services/auth/login?output_mode=json', { username: 'analyst', password: 'nope' });
      expect({ status: bad.status, body: await bad.json() }).toEqual({ status: 401, body: { messages: [{ type: 'WARN', text: 'Login failed' }] } });
      expect((await post('/services/auth/login?output_mode=json', { username: 'analyst' })).status).toBe(400);
      const anon = await fetch(splunk.url + '/services/server/info?output_mode=json');
      expect({ status: anon.status, body: await anon.json() }).toEqual({
        status: 401,
        body: { messages: [{ type: 'WARN', text: 'call not properly authenticated' }] },
      });
      const basic = await fetch(splunk.url + '/services/server/info', { headers: { Authorization: `Basic ${Buffer.from('analyst:wrong').toString('base64')}` } });
      expect(basic.status).toBe(401);
      expect(basic.headers.get('www-authenticate')).toBe('Basic realm="/splunk"');
    });
    it('runs a oneshot search (v1, v2 and namespaced paths; Bearer, Basic) over what HEC indexed', async () => {
      const marker = `m${Date.now()}`;
      const body = [443, 443, 22].map((p) => ev({ src: '10.9.9.9', dest: '10.9.9.10', dest_port: p, marker }, { sourcetype: 'fw:traffic' })).join('');
      await hec('/services/collector/event', body);
      const search = `search index=* (src="10.9.9.9" OR dest="10.9.9.9") marker=${marker} earliest=-1h | stats count by sourcetype, dest_port | sort - count | head 5`;
      for (const [path, auth] of [
        ['/services/search/jobs', 'Bearer jwt-token-1'],
        ['/services/search/v2/jobs', `Basic ${Buffer.from('analyst:s3cret').toString('base64')}`],
        ['/servicesNS/analyst/search/search/v2/jobs', 'Splunk jwt-token-1'],
      ] as const) {
        const r = await post(path, { search, exec_mode: 'oneshot', output_mode: 'json' }, { Authorization: auth });
        expect(r.status).toBe(200);
        const json = (await r.json()) as { results: unknown[]; fields: { name: string }[] };
        expect(json.results).toEqual([
          { sourcetype: 'fw:traffic', dest_port: '443', count: '2' },
          { sourcetype: 'fw:traffic', dest_port: '22', count: '1' },
        ]);
        expect(json.fields.map((f) => f.name)).toEqual(['sourcetype', 'dest_port', 'count']);
      }
      const rows = await post('/services/search/jobs', { search, exec_mode: 'oneshot', output_mode: 'json_rows' }, { Authorization: 'Bearer jwt-token-1' });
      expect(await rows.json()).toMatchObject({ fields: ['sourcetype', 'dest_port', 'count'], rows: [['fw:traffic', '443', '2'], ['fw:traffic', '22', '1']] });
    });
    it('refuses a dispatch without a search, and an unknown command, with FATAL messages', async () => {
      const auth = { Authorization: 'Bearer jwt-token-1' };
      const none = await post('/services/search/jobs', { exec_mode: 'oneshot', output_mode: 'json' }, auth);
      expect(none.status).toBe(400);
      expect(((await none.json()) as { messages: { type: string; text: string }[] }).messages[0]).toMatchObject({
        type: 'FATAL',
        text: expect.stringMatching(/required 'search' parameter/),
      });
      const unknown = await post('/services/search/jobs', { search: 'search * | boguscmd', exec_mode: 'oneshot', output_mode: 'json' }, auth);
      expect(unknown.status).toBe(400);
      expect(await unknown.json()).toEqual({ messages: [{ type: 'FATAL', text: "Unknown search command 'boguscmd'." }] });
    });
  });
});

describe('concatenated JSON', () => {
  it('splits values with or without whitespace, and stops at the first broken one', () => {
    expect([...splitJson('{"a":"}{"}{"b":[1,{"c":2}]}  [3]')].map((p) => p.value)).toEqual([{ a: '}{' }, { b: [1, { c: 2 }] }, [3]]);
    expect([...splitJson('{"a":1}{"b":')].map((p) => p.error ?? p.value)).toEqual([{ a: 1 }, true]);
    expect([...splitJson('{"a":"\\"}"}')].map((p) => p.value)).toEqual([{ a: '"}' }]);
  });
});

describe('the SPL subset', () => {
  const now = Date.UTC(2026, 0, 1);
  const mk = (event: Record<string, unknown>, over: Partial<IndexedEvent> = {}): IndexedEvent => ({
    index: 'main',
    sourcetype: 'st',
    source: 's',
    host: 'h',
    time: now / 1000 - 60,
    event,
    request: 1,
    endpoint: 'event',
    ...over,
  });
  const events = [
    mk({ src: 'a', dest: 'b', dest_port: 1 }),
    mk({ src: 'A', dest: 'c', dest_port: 2 }, { sourcetype: 'x' }),
    mk({ src: 'z', dest: ['a', 'q'], dest_port: [3, 4] }),
    mk({ src: 'a "quoted" \\ name' }),
    mk({ src: 'old' }, { time: now / 1000 - 48 * 3600 }),
  ];
  const run = (spl: string) => runSpl(spl, events, { now });

  it('OR binds tighter than AND, values match case-insensitively, arrays are name{} multivalues', () => {
    expect(run('search src=a dest=b OR dest=c | stats count')).toEqual([{ count: '2' }]);
    expect(run('search dest{}=a | stats count by dest_port{}')).toEqual([
      { 'dest_port{}': '3', count: '1' },
      { 'dest_port{}': '4', count: '1' },
    ]);
    expect(run('search NOT src=a earliest=-24h | stats count')).toEqual([{ count: '2' }]);
    expect(run('search src="a \\"quoted\\" \\\\ name" | stats count')).toEqual([{ count: '1' }]);
    expect(run('search src=* | stats count by sourcetype | sort - count | head 1')).toEqual([{ sourcetype: 'st', count: '4' }]);
  });
  it('refuses what it does not model instead of guessing', () => {
    expect(() => run('index=main')).toThrow("Unknown search command 'index=main'.");
    expect(() => run('search x | eval y=1')).toThrow("Unknown search command 'eval'.");
    expect(() => run('search src="unbalanced')).toThrow('Unbalanced quotes.');
  });
});
