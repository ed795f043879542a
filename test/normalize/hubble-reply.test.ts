import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Outcome, StreamContext } from '../../src/normalize/normalizer';
import { intake, normalizeRecord } from '../../src/normalize/registry';
import { hubble, hubbleSchemaOnly } from '../../src/normalize/hubble';

/**
 * Hubble's deprecated `reply` field (Cilium flow API, api/v1/flow/README.md: "Deprecated. This
 * suffers from false negatives ... Please use is_reply instead"). Older Hubble versions write only
 * `reply`; newer ones write both. The flows are the exporter fixture's policy denial (a real
 * record) turned into a forwarded flow and its reply by the test.
 */
const FIXTURE = path.resolve(__dirname, '../fixtures/hubble/exporter-output.jsonl');
const denied = readFileSync(FIXTURE, 'utf8').split('\n').filter((l) => l.includes('POLICY_DENIED'))[0]!;

type Json = Record<string, any>;
function forwarded(change: (flow: Json) => void): string {
  const r = JSON.parse(denied) as Json;
  r.flow.verdict = 'FORWARDED';
  delete r.flow.drop_reason_desc;
  change(r.flow);
  return JSON.stringify(r);
}
/** The server's answer: source and destination swapped, as Hubble reports a reply packet. */
function answer(flow: Json): void {
  [flow.IP.source, flow.IP.destination] = [flow.IP.destination, flow.IP.source];
  const tcp = flow.l4.TCP;
  [tcp.source_port, tcp.destination_port] = [tcp.destination_port, tcp.source_port];
  [flow.source, flow.destination] = [flow.destination, flow.source];
}

const ctx = (): StreamContext => ({ state: new Map() });
const norm = (t: string): Outcome => normalizeRecord(t, 'hubble', ctx());

describe('hubble: the deprecated reply field', () => {
  test('the request is an allowed flow to the server port', () => {
    const o = norm(forwarded(() => {}));
    expect(o).toMatchObject({ kind: 'events', events: [{ action: 'allowed', dstPort: 80, dst: { ip: '10.244.1.5' } }] });
  });

  test('"reply": true alone (older Hubble) is the reply direction, not a flow to the ephemeral port', () => {
    const o = norm(forwarded((f) => { answer(f); f.reply = true; }));
    expect(o).toEqual({ kind: 'skip', reason: 'hubble: reply direction of a flow' });
  });

  test('without reply markers the swapped flow reads as a new flow (what the marker prevents)', () => {
    expect(norm(forwarded(answer))).toMatchObject({ kind: 'events', events: [{ dstPort: 44916 }] });
  });

  test('is_reply decides when present: is_reply false with reply true is not a reply', () => {
    const o = norm(forwarded((f) => { f.reply = true; f.is_reply = false; }));
    expect(o).toMatchObject({ kind: 'events', events: [{ action: 'allowed' }] });
    expect(norm(forwarded((f) => { answer(f); f.reply = true; f.is_reply = true; })).kind).toBe('skip');
  });

  test('"reply": false is not a reply; a reply that is not a boolean is a reject naming it', () => {
    expect(norm(forwarded((f) => { f.reply = false; })).kind).toBe('events');
    const o = norm(forwarded((f) => { f.reply = 'true'; }));
    expect(o.kind === 'reject' && o.reason).toMatch(/^hubble: flow\.reply: /);
  });

  test('the fast path gives the schema outcome on every reply variant', () => {
    const values: unknown[] = [true, false, 'true', 1, null, {}];
    for (const reply of values) {
      for (const isReply of [undefined, true, false]) {
        const t = forwarded((f) => { f.reply = reply; if (isReply !== undefined) f.is_reply = isReply; });
        expect({ reply, isReply, o: intake(t, hubble, ctx()) }).toEqual({ reply, isReply, o: intake(t, hubbleSchemaOnly, ctx()) });
      }
    }
  });
});
