import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { AllowedFlow, DeniedFlow, type Flow } from '../../src/events';
import type { Outcome, StreamContext } from '../../src/normalize/normalizer';
import { normalizeRecord } from '../../src/normalize/registry';

// The OTRF APT29 Zeek conn.log recordings, read in place from the shared datasets.
const DATA = path.resolve(__dirname, '../../../shared/datasets/otrf-apt29-zeek');
const FILES = readdirSync(DATA).filter((f) => f.endsWith('.gz')).sort();

interface Conn {
  uid: string;
  ts: number;
  conn_state: string;
  proto: string;
  id_orig_h: string;
  id_resp_h: string;
  id_resp_p: number;
}

function lines(file: string): string[] {
  return gunzipSync(readFileSync(path.join(DATA, file))).toString('utf8').split('\n').filter((l) => l.length > 0);
}

const ctx = (): StreamContext => ({ state: new Map() });
const norm = (text: string): Outcome => normalizeRecord(text, 'zeek', ctx());

function only(o: Outcome): Flow {
  if (o.kind !== 'events') throw new Error(`expected events, got ${o.kind}: ${o.reason}`);
  expect(o.events).toHaveLength(1);
  return o.events[0] as Flow;
}

function rejectReason(o: Outcome): string {
  if (o.kind !== 'reject') throw new Error(`expected a reject, got ${JSON.stringify(o)}`);
  return o.reason;
}

/** Written independently of the normalizer: a responder address that is a group, not a host. */
function groupAddress(ip: string): boolean {
  const first = Number(ip.split('.')[0]);
  return ip.startsWith('ff') || (first >= 224 && first <= 239) || ip.split('.')[3] === '255';
}

describe('zeek: the APT29 conn.log recordings', () => {
  test.each(FILES)('%s: REJ and S0 become denials, one event or skip per record', (file) => {
    const records = lines(file);
    const raw = records.map((l) => JSON.parse(l) as Conn);
    const count = (pred: (c: Conn) => boolean) => raw.filter(pred).length;
    const rej = count((c) => c.conn_state === 'REJ');
    const s0 = count((c) => c.conn_state === 'S0' && !groupAddress(c.id_resp_h));
    const halfOpen = count((c) => ['RSTOS0', 'RSTRH', 'SH', 'SHR'].includes(c.conn_state));

    const tally = { 'zeek:REJ': 0, 'zeek:S0': 0, allowed: 0, skip: 0 };
    for (const line of records) {
      const o = norm(line);
      if (o.kind === 'skip') {
        tally.skip++;
        continue;
      }
      const flow = only(o);
      expect((flow.action === 'denied' ? DeniedFlow : AllowedFlow).safeParse(flow).success).toBe(true);
      if (flow.action === 'denied') tally[flow.policy!.id as 'zeek:REJ' | 'zeek:S0']++;
      else tally.allowed++;
    }
    expect(tally).toEqual({ 'zeek:REJ': rej, 'zeek:S0': s0, allowed: records.length - rej - s0 - halfOpen, skip: halfOpen });
  });

  it('finds denials in the recordings at all (REJ and S0 both occur)', () => {
    const all = FILES.flatMap(lines).map((l) => JSON.parse(l) as Conn);
    expect(all.filter((c) => c.conn_state === 'REJ').length).toBeGreaterThan(0);
    expect(all.filter((c) => c.conn_state === 'S0' && !groupAddress(c.id_resp_h)).length).toBeGreaterThan(0);
  });

  it('carries every ground-truth lateral step (apt29_lm_groundtruth.csv) as normalized flows', () => {
    const flows = FILES.flatMap(lines)
      .map(norm)
      .flatMap((o) => (o.kind === 'events' ? (o.events as Flow[]) : []));
    const [head, ...rows] = readFileSync(path.join(DATA, 'apt29_lm_groundtruth.csv'), 'utf8').trim().split(/\r?\n/);
    const cols = head!.split(',');
    expect(rows.length).toBeGreaterThanOrEqual(4);
    for (const row of rows) {
      const f = row.split(',');
      const col = (name: string) => f[cols.indexOf(name)]!;
      let first = Infinity;
      for (const port of col('dport').split('|').map(Number)) {
        const matching = flows.filter((e) => e.src.ip === col('src_ip') && e.dst.ip === col('dst_ip') && e.dstPort === port);
        expect({ step: col('step'), port, seen: matching.length > 0 }).toEqual({ step: col('step'), port, seen: true });
        first = Math.min(first, ...matching.map((e) => e.time));
      }
      // Our first event for the step is no later than the time the ground truth first saw it.
      expect(first).toBeLessThanOrEqual(Date.parse(col('first_seen_in_zeek_utc')));
    }
    // 10.0.1.4 -> 10.0.1.6:5985 (step 8.A, WinRM) specifically.
    expect(flows.some((e) => e.src.ip === '10.0.1.4' && e.dst.ip === '10.0.1.6' && e.dstPort === 5985)).toBe(true);
  });
});

describe('zeek: one record', () => {
  const all = FILES.flatMap(lines);
  const rej = all.find((l) => l.includes('"conn_state":"REJ"'))!;
  const sf = all.find((l) => l.includes('"conn_state":"SF"') && l.includes('"proto":"tcp"'))!;
  const edit = (line: string, change: (r: Record<string, unknown>) => void): string => {
    const r = JSON.parse(line) as Record<string, unknown>;
    change(r);
    return JSON.stringify(r);
  };

  it('maps a REJ record field by field', () => {
    const r = JSON.parse(rej) as Conn & { id_orig_p: number; '@system': string };
    expect(only(norm(rej))).toEqual({
      id: `zeek:${r.uid}`,
      time: Math.floor(r.ts * 1000),
      src: { ip: r.id_orig_h, port: r.id_orig_p },
      dst: { ip: r.id_resp_h, port: r.id_resp_p },
      protocol: 'tcp',
      dstPort: r.id_resp_p,
      action: 'denied',
      policy: { id: 'zeek:REJ', name: 'connection refused (REJ)' },
      observer: { type: 'zeek', name: r['@system'] },
      connState: 'REJ',
    });
  });

  it("reads Zeek's own dotted keys (id.orig_h) the same way", () => {
    const dotted = edit(sf, (r) => {
      for (const k of ['orig_h', 'orig_p', 'resp_h', 'resp_p']) {
        r[`id.${k}`] = r[`id_${k}`];
        delete r[`id_${k}`];
      }
    });
    expect(only(norm(dotted))).toEqual(only(norm(sf)));
    expect(only(norm(sf)).action).toBe('allowed');
  });

  it('accepts ts as ISO-8601 too', () => {
    const r = JSON.parse(sf) as Conn;
    const iso = edit(sf, (x) => (x.ts = new Date(Math.floor(r.ts * 1000)).toISOString()));
    expect(only(norm(iso)).time).toBe(Math.floor(r.ts * 1000));
  });

  it('S0 to a broadcast address is an allowed datagram, not a denial', () => {
    const bcast = all.find((l) => l.includes('"conn_state":"S0"') && l.includes('"id_resp_h":"10.0.1.255"'))!;
    expect(only(norm(bcast)).action).toBe('allowed');
  });

  it('skips a half-open connection and a record without conn_state', () => {
    expect(norm(edit(sf, (r) => (r.conn_state = 'RSTOS0'))).kind).toBe('skip');
    expect(norm(edit(sf, (r) => delete r.conn_state)).kind).toBe('skip');
  });

  it('rejects (not skips) a record missing a required field, even without conn_state', () => {
    expect(rejectReason(norm(edit(sf, (r) => delete r.uid)))).toContain('uid');
    expect(rejectReason(norm(edit(sf, (r) => (delete r.conn_state, delete r.ts))))).toContain('ts');
    expect(rejectReason(norm(edit(sf, (r) => delete r.id_resp_h)))).toContain('id_resp_h');
  });

  it('rejects a wrong type, an invalid IP, a port out of range and an unknown state, naming the field', () => {
    expect(rejectReason(norm(edit(sf, (r) => (r.id_resp_p = '445'))))).toContain('id_resp_p');
    expect(rejectReason(norm(edit(sf, (r) => (r.ts = 'yesterday'))))).toContain('ts');
    expect(rejectReason(norm(edit(sf, (r) => (r.id_orig_h = '10.0.1.400'))))).toContain('id_orig_h');
    expect(rejectReason(norm(edit(sf, (r) => (r.id_resp_p = 70000))))).toContain('id_resp_p');
    expect(rejectReason(norm(edit(sf, (r) => (r.conn_state = 'XYZ'))))).toContain('conn_state');
  });
});
