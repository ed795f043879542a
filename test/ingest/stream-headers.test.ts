import { readFileSync } from 'node:fs';
import path from 'node:path';
import { IntakeStreams, type RecordIn, type Verdicts } from '../../src/ingest/intake';
import { MAX_CHECKPOINTS, MAX_LINE_CHARS, StreamHeaders, linesFor, parseStored, type StoredHeaders } from '../../src/ingest/stream-headers';
import type { Format } from '../../src/normalize/normalizer';

/**
 * The header state of a stream, stored as checkpoints and replayed into a new stream context,
 * must give every record the verdict an uninterrupted reader gives it: after a restart at any
 * batch boundary, after a batch read again (stored, then not committed), and on a replay from
 * offset 0 (records before a header stay refused). Pure: IntakeStreams and the stored values
 * only; the Redis and Kafka edges are in stream-headers-kafka.test.ts.
 */
const FIXTURES = path.resolve(__dirname, '../fixtures');
const NOW = Date.parse('2026-12-01T00:00:00Z');
const lines = (file: string) => readFileSync(path.join(FIXTURES, file), 'utf8').split('\n').filter((l) => l.length > 0);
const LIMITS = { maxRecordBytes: 1024 * 1024, maxJsonDepth: 64, maxFutureSkewMs: 0, maxEventAgeMs: 0 };

/** A custom VPC format, a record before it (refused: the default format), another format later. */
function vpcStream(): string[] {
  const [header, ...records] = lines('vpcflow/custom-tcp-flags.txt');
  const other = 'version srcaddr dstaddr srcport dstport protocol start action log-status';
  const otherRecords = [1, 2, 3].map((i) => `5 10.0.0.${i} 10.0.0.9 4000${i} 445 6 1566848875 REJECT OK`);
  return [records[0]!, header!, ...records.slice(0, 4), other, ...otherRecords, ...records.slice(4, 6)];
}

/** A Zeek TSV log, a record before it (refused), then a second log with its columns in another order. */
function zeekStream(): string[] {
  const all = lines('zeek/conn-zed-sample.log');
  const head = all.filter((l) => l.startsWith('#'));
  const record = all.find((l) => !l.startsWith('#'))!;
  const uid = (r: string, i: number) => r.replace('C8Tful1TvM3Zf5x8fl', `C8Tful1TvM3Zf5x${i}`);
  const fields = head.find((l) => l.startsWith('#fields'))!.split('\t').slice(1);
  const order = fields.map((_, i) => i).reverse();
  const reorder = (line: string) => {
    const [name, ...cols] = line.split('\t');
    return [name, ...order.map((i) => cols[i])].join('\t');
  };
  const second = head.map((l) => (l.startsWith('#fields') || l.startsWith('#types') ? reorder(l) : l));
  const reversed = (i: number) => order.map((j) => uid(record, i).split('\t')[j]).join('\t');
  return [
    uid(record, 0),
    ...head,
    ...[1, 2, 3].map((i) => uid(record, i)),
    '#unset_field\tNONE',
    uid(record, 4).replaceAll('\t-\t', '\tNONE\t'),
    '#close\t2019-11-08-11-45-00',
    ...second,
    ...[5, 6].map(reversed),
  ];
}

const STREAMS: Array<{ name: string; records: () => string[]; format: Format | 'auto' }> = [
  { name: 'VPC custom formats', records: vpcStream, format: 'vpcflow' },
  { name: 'VPC custom formats, detected', records: vpcStream, format: 'auto' },
  { name: 'Zeek TSV logs', records: zeekStream, format: 'zeek' },
  { name: 'Zeek TSV logs, detected', records: zeekStream, format: 'auto' },
];

const record = (text: string, offset: number): RecordIn => ({ key: null, value: Buffer.from(text), offset: String(offset), timestamp: String(NOW) });

function batches(records: string[], size: number): RecordIn[][] {
  const out: RecordIn[][] = [];
  for (let i = 0; i < records.length; i += size) out.push(records.slice(i, i + size).map((r, j) => record(r, i + j)));
  return out;
}

/** What became of each record of a batch: its events' ids, or the reason it was refused. */
function decided(batch: RecordIn[], v: Verdicts): string[] {
  return batch.map((m, index) => {
    const refusal = v.refused.find((r) => r.index === index);
    if (refusal) return `refused: ${refusal.reason}`;
    const events = v.admitted.filter((a) => a.origin.split('/')[2] === m.offset).map((a) => a.event.id);
    return events.length > 0 ? `events: ${events.join(',')}` : 'skipped';
  });
}

const TOPIC = 'flows';

describe('stream headers across readers', () => {
  test.each(STREAMS.flatMap((s) => [1, 2, 3, 5].map((size) => ({ ...s, size }))))(
    '$name in batches of $size: a reader restarted at any batch, or reading a batch again, decides as one reader does',
    ({ records, format, size }) => {
      const stream = batches(records(), size);
      const one = new IntakeStreams(LIMITS, []);
      const expected = stream.map((b) => decided(b, one.verdicts(TOPIC, 0, b, format, 'record')));
      // the stream is meaningful: refusals before each header, events after it
      expect(expected.flat().filter((d) => d.startsWith('events')).length).toBeGreaterThanOrEqual(6);
      expect(expected.flat()[0]).toMatch(/^refused/);

      let stored: StoredHeaders | undefined;
      stream.forEach((batch, b) => {
        const first = Number(batch[0]!.offset);
        const restarted = new IntakeStreams(LIMITS, []);
        restarted.prime(TOPIC, 0, format, stored, first);
        const v = restarted.verdicts(TOPIC, 0, batch, format, 'record');
        expect(decided(batch, v)).toEqual(expected[b]);
        const after = v.headers ?? stored;
        // stored, then the reader died before its offsets were committed: the batch is read again
        const again = new IntakeStreams(LIMITS, []);
        again.prime(TOPIC, 0, format, after, first);
        expect(decided(batch, again.verdicts(TOPIC, 0, batch, format, 'record'))).toEqual(expected[b]);
        stored = after;
      });

      // a replay from offset 0 with everything stored: the records before a header are refused as before
      const replay = new IntakeStreams(LIMITS, []);
      replay.prime(TOPIC, 0, format, stored, 0);
      const replayed = stream.map((b) => replay.verdicts(TOPIC, 0, b, format, 'record'));
      expect(stream.map((b, i) => decided(b, replayed[i]!))).toEqual(expected);
      expect(replayed.map((v) => v.headers)).toEqual(stream.map(() => undefined)); // nothing new to store
    },
  );

  test('the stored lines are the newest of each kind that changed the state: a long Zeek stream keeps 4 (its defaults unstated)', () => {
    const log = zeekStream();
    const many = Array.from({ length: 30 }, () => log).flat();
    const streams = new IntakeStreams(LIMITS, []);
    const v = streams.verdicts(TOPIC, 0, many.map(record), 'zeek', 'record');
    const last = v.headers!.checkpoints.at(-1)!;
    // #empty_field (empty) and #unset_field - are Zeek's defaults: they change nothing
    expect(last.lines!.map((l) => l.text.split('\t')[0]!.split(' ')[0])).toEqual(['#separator', '#path', '#fields', '#types']);
    expect(last.to).toBe(many.lastIndexOf([...log].reverse().find((l) => l.startsWith('#types'))!));
  });

  test('a line changed nothing is not kept: #open, #close, a #set_separator, a VPC header naming a field twice', () => {
    const streams = new IntakeStreams(LIMITS, []);
    const v = streams.verdicts(TOPIC, 0, ['#open\t2019', '#set_separator\t,', '#close\t2019'].map(record), 'zeek', 'record');
    expect(v.headers).toBeUndefined();
    const vpc = streams.verdicts(TOPIC, 1, ['version srcaddr srcaddr'].map(record), 'vpcflow', 'record');
    expect(vpc.refused).toHaveLength(1);
    expect(vpc.headers).toBeUndefined();
  });

  test('a header line longer than the bound is not kept: a reader after it applies nothing, and a later header is kept again', () => {
    const huge = `version srcaddr dstaddr srcport dstport protocol start action log-status ${'x'.repeat(MAX_LINE_CHARS)}`;
    const h = new StreamHeaders(undefined);
    h.note(huge, 3);
    const stored = h.take()!;
    expect(stored.checkpoints).toEqual([{ from: 3, to: 3, lines: null }]);
    expect(linesFor(stored, 10)).toBeUndefined();
    h.note('version srcaddr dstaddr dstport protocol start action', 12);
    expect(h.take()!.checkpoints.at(-1)).toEqual({ from: 12, to: 12, lines: [{ offset: 12, text: 'version srcaddr dstaddr dstport protocol start action' }] });
  });

  test(`at most ${MAX_CHECKPOINTS} checkpoints are kept, the newest; a reader before the oldest applies nothing`, () => {
    const h = new StreamHeaders(undefined);
    let stored: StoredHeaders | undefined;
    for (let i = 0; i < 10; i++) {
      h.note(`version srcaddr dstaddr dstport protocol start action pad${i}`, i * 10);
      stored = h.take();
    }
    expect(stored!.checkpoints.map((c) => c.from)).toEqual([60, 70, 80, 90]);
    expect(linesFor(stored, 55)).toBeUndefined();
    expect(linesFor(stored, 75)![0]!.offset).toBe(70);
  });

  test('a header read again (a replay) is not stored again; one beyond the stored ones is', () => {
    const h = new StreamHeaders({ v: 1, checkpoints: [{ from: 5, to: 5, lines: [{ offset: 5, text: 'version srcaddr' }] }] });
    h.note('version srcaddr', 5);
    expect(h.take()).toBeUndefined();
    h.note('#fields\tts', 9);
    expect(h.take()!.checkpoints.at(-1)).toEqual({ from: 9, to: 9, lines: [{ offset: 5, text: 'version srcaddr' }, { offset: 9, text: '#fields\tts' }] });
  });

  describe('which checkpoint applies to a batch from offset X', () => {
    const stored: StoredHeaders = {
      v: 1,
      checkpoints: [
        { from: 10, to: 12, lines: [{ offset: 12, text: 'version a' }] },
        { from: 20, to: 25, lines: [{ offset: 25, text: 'version b' }] },
      ],
    };
    test.each([
      [0, undefined],
      [10, undefined],
      [12, undefined],
      [13, 'version a'],
      [20, 'version a'],
      [21, undefined], // inside the lines of the second: the state there was stored by neither
      [25, undefined],
      [26, 'version b'],
      [10_000, 'version b'],
    ])('X = %i: %s', (first, text) => {
      expect(linesFor(stored, first)?.[0]?.text).toBe(text);
    });
  });

  describe('a stored value read back is validated (Redis is shared input)', () => {
    const valid = { v: 1, checkpoints: [{ from: 1, to: 1, lines: [{ offset: 1, text: '#fields\tts\tuid' }] }] };
    test('a valid value', () => {
      expect(parseStored(JSON.stringify(valid))).toEqual({ ok: true, value: valid });
    });
    test.each([
      ['not JSON', '{"v": 1, "checkp', /not JSON/],
      ['another version', JSON.stringify({ ...valid, v: 2 }), /^v:/],
      ['a line that is no header line', JSON.stringify({ v: 1, checkpoints: [{ from: 1, to: 1, lines: [{ offset: 1, text: '{"action":"denied"}' }] }] }), /not a VPC flow log or Zeek TSV header line/],
      ['a negative offset', JSON.stringify({ v: 1, checkpoints: [{ from: -1, to: 1, lines: [] }] }), /checkpoints\.0\.from/],
      ['from after to', JSON.stringify({ v: 1, checkpoints: [{ from: 5, to: 1, lines: [] }] }), /from after to/],
      ['checkpoints out of order', JSON.stringify({ v: 1, checkpoints: [{ from: 5, to: 6, lines: [] }, { from: 2, to: 3, lines: [] }] }), /out of order/],
      ['too many checkpoints', JSON.stringify({ v: 1, checkpoints: Array.from({ length: MAX_CHECKPOINTS + 1 }, (_, i) => ({ from: i, to: i, lines: [] })) }), /checkpoints/],
      ['a line too long', JSON.stringify({ v: 1, checkpoints: [{ from: 1, to: 1, lines: [{ offset: 1, text: `#fields\t${'x'.repeat(MAX_LINE_CHARS)}` }] }] }), /text/],
      ['a bare string', '"version srcaddr"', /expected object/],
    ])('%s is refused, naming why', (_, json, why) => {
      const parsed = parseStored(json);
      expect(parsed.ok).toBe(false);
      expect(!parsed.ok && parsed.reason).toMatch(why);
    });
  });
});
