import { randomUUID } from 'node:crypto';
import type { HecEvent } from '../../src/siem/cim';
import { SplunkSiemConfig } from '../../src/siem/config';
import { HecSender, SplunkWriter, type HecFailure, type HecSenderOptions } from '../../src/siem/splunk-hec';
import { SplunkContractServer, splitJson, type IndexedEvent } from '../contract/splunk-server';
import { eventually, testLog } from '../support/stack';
import { sampleDeadLetter, sampleFinding, sampleIncident, sampleLedger } from './fixtures';

const TOKEN = '5c0f0c8e-1d6b-4b1e-9a4e-6f7a2b3c4d5e';
const ACK_TOKEN = '9e8d7c6b-5a49-4838-a726-150f4e3d2c1b';

describe('Splunk HEC sender against the contract server', () => {
  let splunk: SplunkContractServer;
  const senders: HecSender[] = [];

  beforeAll(async () => {
    splunk = await SplunkContractServer.start({
      hecTokens: [
        { token: TOKEN, indexes: ['cordon'], defaultIndex: 'cordon' },
        { token: ACK_TOKEN, indexes: ['cordon'], defaultIndex: 'cordon', ack: true },
      ],
      indexes: ['main', 'cordon', 'secret'],
    });
  });
  afterAll(async () => {
    for (const s of senders) await s.close().catch(() => undefined);
    await splunk.close();
  });

  function sender(over: Partial<HecSenderOptions> = {}): HecSender {
    const s = new HecSender({
      url: splunk.url,
      token: TOKEN,
      gzip: true,
      batch: { maxEvents: 10, maxBytes: 512 * 1024, maxLatencyMs: 20, concurrency: 2 },
      ack: { enabled: false, pollIntervalMs: 20, timeoutMs: 2_000, maxResends: 3 },
      retry: { initialMs: 5, maxMs: 50, retries: 5 },
      requestTimeoutMs: 5_000,
      log: testLog,
      ...over,
    });
    senders.push(s);
    return s;
  }

  const event = (marker: string, n: number, extra: Partial<HecEvent> = {}): HecEvent => ({
    time: 1714816800 + n / 1000,
    source: 'cordon',
    sourcetype: 'cordon:test',
    index: 'cordon',
    event: { marker, n },
    ...extra,
  });
  const indexedOf = (marker: string): IndexedEvent[] => splunk.indexed.filter((e) => (e.event as { marker?: string }).marker === marker);
  const requestsOf = (channel: string, path = '/services/collector/event') => splunk.hecRequests.filter((r) => r.channel === channel && r.path === path);

  it('batches events into requests of concatenated JSON (not an array), gzip-compressed', async () => {
    const s = sender();
    const marker = randomUUID();
    for (let n = 0; n < 25; n++) s.send(event(marker, n));
    await s.flush();
    const reqs = requestsOf(s.channel);
    expect(reqs.map((r) => [r.status, r.gzip, r.accepted])).toEqual([
      [200, true, 10],
      [200, true, 10],
      [200, true, 5],
    ]);
    for (const r of reqs) {
      expect(r.body.startsWith('{"time":')).toBe(true);
      const values = [...splitJson(r.body)].map((p) => p.value);
      expect(values.every((v) => !Array.isArray(v))).toBe(true);
      expect(r.body).toBe(values.map((v) => JSON.stringify(v)).join(''));
    }
    // two requests in flight: batches may land in either order (Splunk orders by time), each exactly once
    const got = indexedOf(marker).map((e) => (e.event as { n: number }).n);
    expect([...got].sort((a, b) => a - b)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(indexedOf(marker).find((e) => (e.event as { n: number }).n === 3)).toMatchObject({ time: 1714816800.003, sourcetype: 'cordon:test', source: 'cordon', index: 'cordon' });
    expect(s.counters).toMatchObject({ events: 25, delivered: 25, batches: 3, requests: 3, failed: 0 });
  });

  it('sends a batch when it reaches the size bound or the latency bound, without gzip when told so', async () => {
    const s = sender({ gzip: false, batch: { maxEvents: 1_000, maxBytes: 2_048, maxLatencyMs: 50, concurrency: 1 } });
    const marker = randomUUID();
    const pad = 'x'.repeat(400);
    for (let n = 0; n < 12; n++) s.send(event(marker, n, { event: { marker, n, pad } }));
    await s.flush();
    const sized = requestsOf(s.channel);
    expect(sized.length).toBeGreaterThanOrEqual(3);
    expect(sized.every((r) => !r.gzip && Buffer.byteLength(r.body) <= 2_048)).toBe(true);
    expect(indexedOf(marker)).toHaveLength(12);

    const later = randomUUID();
    s.send(event(later, 0));
    s.send(event(later, 1));
    await eventually(async () => (indexedOf(later).length === 2 ? true : undefined), 2_000, 'the latency bound to send the batch');
    expect(splunk.hecRequests.at(-1)).toMatchObject({ accepted: 2 });
  });

  it('retries 503 Server is busy (code 9) with backoff and delivers each event exactly once', async () => {
    const s = sender({ batch: { maxEvents: 100, maxBytes: 512 * 1024, maxLatencyMs: 10, concurrency: 1 } });
    const marker = randomUUID();
    splunk.busy(3);
    for (let n = 0; n < 10; n++) s.send(event(marker, n));
    await s.flush();
    const reqs = requestsOf(s.channel);
    expect(reqs.map((r) => [r.status, r.code])).toEqual([
      [503, 9],
      [503, 9],
      [503, 9],
      [200, 0],
    ]);
    expect(s.counters).toMatchObject({ retries: 3, delivered: 10, failed: 0 });
    const got = indexedOf(marker).map((e) => (e.event as { n: number }).n);
    expect(got).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('records a 403 (invalid token) with Splunk code and text, and does not retry it', async () => {
    const failures: HecFailure[] = [];
    const s = sender({ token: randomUUID(), onFailure: (f) => failures.push(f) });
    const marker = randomUUID();
    for (let n = 0; n < 3; n++) s.send(event(marker, n));
    await s.flush();
    expect(requestsOf(s.channel)).toHaveLength(1);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ status: 403, code: 4, text: 'Invalid token' });
    expect(failures[0]!.events).toHaveLength(3);
    expect(s.failures).toEqual(failures);
    expect(s.counters).toMatchObject({ failed: 3, delivered: 0, retries: 0 });
  });

  it('records a 400 (incorrect index, code 7) for the events sent to that index and delivers the others', async () => {
    const s = sender({ batch: { maxEvents: 100, maxBytes: 512 * 1024, maxLatencyMs: 10, concurrency: 1 } });
    const marker = randomUUID();
    s.send(event(marker, 0));
    s.send(event(marker, 1, { index: 'secret' }));
    s.send(event(marker, 2));
    s.send(event(marker, 3, { index: 'secret' }));
    await s.flush();
    expect(s.failures.map((f) => [f.status, f.code, f.text, f.events.map((e) => (e.event as { n: number }).n)])).toEqual([
      [400, 7, 'Incorrect index', [1, 3]],
    ]);
    expect(indexedOf(marker).map((e) => (e.event as { n: number }).n).sort()).toEqual([0, 2]);
    // 0 was taken by the first request; 2 went again; nothing twice
    expect(new Set(indexedOf(marker).map((e) => (e.event as { n: number }).n)).size).toBe(indexedOf(marker).length);
  });

  it('fails only the event Splunk names (invalid-event-number) and sends the rest again', async () => {
    const s = sender({ batch: { maxEvents: 100, maxBytes: 512 * 1024, maxLatencyMs: 10, concurrency: 1 } });
    const marker = randomUUID();
    s.send(event(marker, 0));
    s.send(event(marker, 1));
    s.send({ ...event(marker, 2), event: '  ' });
    s.send(event(marker, 3));
    s.send({ ...event(marker, 4), fields: { nested: { x: 1 } } as unknown as Record<string, string> });
    s.send(event(marker, 5));
    await s.flush();
    expect(s.failures.map((f) => [f.code, f.text])).toEqual([
      [13, 'Event field cannot be blank'],
      [15, 'Error in handling indexed fields'],
    ]);
    expect(indexedOf(marker).map((e) => (e.event as { n: number }).n)).toEqual([0, 1, 3, 5]);
    expect(s.counters).toMatchObject({ delivered: 4, failed: 2, requests: 3 });
  });

  it('gives up on a network error after the configured retries and records it', async () => {
    const s = sender({ url: 'http://127.0.0.1:9', retry: { initialMs: 1, maxMs: 5, retries: 2 } });
    s.send(event(randomUUID(), 0));
    await s.flush();
    expect(s.counters).toMatchObject({ retries: 2, failed: 1, requests: 3 });
    expect(s.failures[0]).toMatchObject({ status: null, code: null, text: expect.stringMatching(/ECONNREFUSED.*gave up after 2 retries/) });
  });

  describe('indexer acknowledgement', () => {
    const acking = (over: Partial<HecSenderOptions> = {}) =>
      sender({
        token: ACK_TOKEN,
        ack: { enabled: true, pollIntervalMs: 20, timeoutMs: 1_000, maxResends: 3 },
        batch: { maxEvents: 5, maxBytes: 512 * 1024, maxLatencyMs: 10, concurrency: 2 },
        ...over,
      });

    it('sends on one channel, polls /ack until every ackId is true', async () => {
      splunk.setAckDelay(100);
      try {
        const s = acking();
        const marker = randomUUID();
        for (let n = 0; n < 12; n++) s.send(event(marker, n));
        await s.flush();
        expect(s.channel).toMatch(/^[0-9a-f-]{36}$/);
        const sends = requestsOf(s.channel);
        expect(sends.map((r) => r.ackId)).toEqual([0, 1, 2]);
        const polls = requestsOf(s.channel, '/services/collector/ack');
        expect(polls.length).toBeGreaterThanOrEqual(2); // the first poll comes before the 100 ms delay is over
        expect(polls.every((p) => Array.isArray((JSON.parse(p.body) as { acks: number[] }).acks))).toBe(true);
        expect(s.counters).toMatchObject({ delivered: 12, acked: 12, resends: 0, failed: 0 });
        expect(indexedOf(marker)).toHaveLength(12);
      } finally {
        splunk.setAckDelay(0);
      }
    });

    it('sends a batch again when its ack does not come in time; the event lands once', async () => {
      const s = acking({ ack: { enabled: true, pollIntervalMs: 20, timeoutMs: 200, maxResends: 3 } });
      const marker = randomUUID();
      splunk.loseAcks(1);
      for (let n = 0; n < 3; n++) s.send(event(marker, n));
      await s.flush();
      expect(s.counters).toMatchObject({ resends: 1, delivered: 3, acked: 3, failed: 0 });
      expect(requestsOf(s.channel).map((r) => r.ackId)).toEqual([0, 1]);
      expect(indexedOf(marker).map((e) => (e.event as { n: number }).n)).toEqual([0, 1, 2]);
    });

    it('records a batch that is never acknowledged after the resends', async () => {
      const s = acking({ ack: { enabled: true, pollIntervalMs: 20, timeoutMs: 100, maxResends: 1 } });
      splunk.loseAcks(2);
      s.send(event(randomUUID(), 0));
      await s.flush();
      expect(s.failures[0]).toMatchObject({ status: 200, code: 0, text: expect.stringMatching(/not acknowledged within 100 ms after 2 sends/) });
    });

    it('answers 400 code 10 when acknowledgement is on at the token and no channel is sent', async () => {
      const res = await fetch(`${splunk.url}/services/collector/event`, { method: 'POST', headers: { Authorization: `Splunk ${ACK_TOKEN}` }, body: '{"event":"x"}' });
      expect({ status: res.status, body: await res.json() }).toEqual({ status: 400, body: { text: 'Data channel is missing', code: 10 } });
    });
  });

  it('SplunkWriter sends incidents, ledger records, dead letters and findings under their sourcetypes', async () => {
    const config = SplunkSiemConfig.parse({ enabled: true, hecUrl: splunk.url, token: TOKEN, index: 'cordon', host: 'cordon-test', batch: { maxLatencyMs: 10 } });
    const writer = new SplunkWriter(config, testLog);
    const before = splunk.indexed.length;
    writer.enqueue([
      { kind: 'incident', incident: sampleIncident() },
      { kind: 'ledger', record: sampleLedger(1) },
      { kind: 'dead_letter', letter: sampleDeadLetter(3) },
      { kind: 'finding', finding: sampleFinding() },
    ]);
    await writer.stop();
    const got = splunk.indexed.slice(before);
    expect(got.map((e) => [e.sourcetype, e.index, e.host, e.source])).toEqual([
      ['cordon:incident', 'cordon', 'cordon-test', 'cordon'],
      ['cordon:ledger', 'cordon', 'cordon-test', 'cordon'],
      ['cordon:dlq', 'cordon', 'cordon-test', 'cordon'],
      ['cordon:finding', 'cordon', 'cordon-test', 'cordon'],
    ]);
    expect(got[0]!.event).toMatchObject({ signature_id: 'cordon:lateral_movement', src_ip: '10.1.0.5', vendor_product: 'Cordon' });
    expect(got[0]!.fields).toEqual({ cordon_kind: 'incident', cordon_incident_id: 'inc-0123456789abcdef0123', cordon_severity: 'high' });
    expect(writer.sender.counters).toMatchObject({ delivered: 4, failed: 0 });
  });
});
