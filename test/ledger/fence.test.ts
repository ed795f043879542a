import { EpochFence, fenceHeaders, fenceMarker, KIND_HEADER, WRITER_HEADER, writerEpoch } from '../../src/ledger/fence';

/** The read-side fencing rule (src/ledger/fence.ts), on messages as the ledger topic holds them. */
describe('EpochFence', () => {
  const at = (writer?: string, marker?: boolean) => ({ ...(writer ? { writer } : {}), ...(marker ? { marker } : {}) });

  it('fences a message whose epoch is below one admitted before it, and admits the rest in order', () => {
    const fence = new EpochFence();
    const log = [at('a#3', true), at('a#3'), at('b#4', true), at('a#3'), at('b#4'), at('a#3'), at('c#9', true), at('b#4', true), at('c#9')];
    expect(log.map((m) => fence.admit(m))).toEqual(['marker', 'record', 'marker', 'fenced', 'record', 'fenced', 'marker', 'fenced', 'record']);
    expect(fence.epoch).toBe(9);
  });

  it('admits a late record of the old writer that lands before the new writer wrote anything', () => {
    const fence = new EpochFence();
    expect([at('a#3', true), at('a#3'), at('a#3'), at('b#4', true)].map((m) => fence.admit(m))).toEqual(['marker', 'record', 'record', 'marker']);
  });

  it('admits records without a writer token (ledgers written before fencing) without moving the fence', () => {
    const fence = new EpochFence(5);
    expect([at(), at('x#5'), at(), at('y#2')].map((m) => fence.admit(m))).toEqual(['record', 'record', 'record', 'fenced']);
    expect(fence.epoch).toBe(5);
  });

  it('starts from a primed epoch: the fence after an admitted message is its own epoch', () => {
    expect(new EpochFence(7).admit(at('old#6'))).toBe('fenced');
    expect(new EpochFence(7).admit(at('same#7'))).toBe('record');
  });

  it('reads the epoch from the end of a token only', () => {
    expect(writerEpoch('host:12#4#17')).toBe(17);
    expect(writerEpoch('host#x')).toBeUndefined();
    expect(writerEpoch(undefined)).toBeUndefined();
  });

  it('builds a marker whose headers the reader recognises, whatever their form', () => {
    const marker = fenceMarker('node-a:42#12', Date.UTC(2026, 11, 7));
    expect(JSON.parse(marker.value)).toEqual({ fence: 12, writer: 'node-a:42#12', at: '2026-12-07T00:00:00.000Z' });
    expect(fenceHeaders(Object.fromEntries(Object.entries(marker.headers).map(([k, v]) => [k, Buffer.from(v)])))).toEqual({ writer: 'node-a:42#12', marker: true });
    expect(fenceHeaders({ [WRITER_HEADER]: [Buffer.from('w#1'), 'w#2'], [KIND_HEADER]: 'other' })).toEqual({ writer: 'w#1' });
    expect(fenceHeaders(undefined)).toEqual({});
  });
});
