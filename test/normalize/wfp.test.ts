import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { AllowedFlow, DeniedFlow, type Flow } from '../../src/events';
import type { Outcome, StreamContext } from '../../src/normalize/normalizer';
import { normalizeRecord } from '../../src/normalize/registry';

// The OTRF lateral-movement recordings (NXLog JSON), read in place from the shared datasets.
const DATA = path.resolve(__dirname, '../../../shared/datasets/otrf-lateral-movement');

interface Truth {
  dataset: string;
  deniedFlows: number;
  firstDenied: string;
  deniedPairs: string[];
}

function groundTruth(): Truth[] {
  const [head, ...rows] = readFileSync(path.join(DATA, 'ground-truth.csv'), 'utf8').trim().split(/\r?\n/);
  const cols = head!.split(',');
  const at = (name: string) => cols.indexOf(name);
  return rows.map((row) => {
    const f = row.split(',');
    return {
      dataset: f[at('dataset')]!,
      deniedFlows: Number(f[at('denied_flows')]),
      firstDenied: f[at('first_denied_flow')]!,
      deniedPairs: (f[at('denied_pairs')] ?? '').split(/[;| ]+/).filter(Boolean),
    };
  });
}

function lines(dataset: string): string[] {
  return gunzipSync(readFileSync(path.join(DATA, `${dataset}.jsonl.gz`)))
    .toString('utf8')
    .split('\n')
    .filter((l) => l.length > 0);
}

const ctx = (): StreamContext => ({ state: new Map() });
const norm = (text: string): Outcome => normalizeRecord(text, 'wfp', ctx());

function only(o: Outcome): Flow {
  if (o.kind !== 'events') throw new Error(`expected events, got ${o.kind}: ${o.reason}`);
  expect(o.events).toHaveLength(1);
  return o.events[0] as Flow;
}

function rejectReason(o: Outcome): string {
  if (o.kind !== 'reject') throw new Error(`expected a reject, got ${JSON.stringify(o)}`);
  return o.reason;
}

const TRUTH = groundTruth();
const ALL = TRUTH.flatMap((t) => lines(t.dataset));
const find = (pred: (r: Record<string, unknown>) => boolean): string => {
  const line = ALL.find((l) => pred(JSON.parse(l) as Record<string, unknown>));
  if (!line) throw new Error('no such record in the recordings');
  return line;
};
const edit = (line: string, change: (r: Record<string, unknown>) => void): string => {
  const r = JSON.parse(line) as Record<string, unknown>;
  change(r);
  return JSON.stringify(r);
};

describe('wfp: the OTRF lateral-movement recordings against ground-truth.csv', () => {
  it('covers all 29 recordings', () => {
    expect(TRUTH).toHaveLength(29);
  });

  test.each(TRUTH.map((t) => [t.dataset, t] as const))('%s', (_name, truth) => {
    const denied: Flow[] = [];
    const ids = new Set<string>();
    for (const line of lines(truth.dataset)) {
      const eventId = (JSON.parse(line) as { EventID: number }).EventID;
      const flow = only(norm(line));
      // Every event satisfies the contract as built (no second parse in the normalizer).
      expect((flow.action === 'denied' ? DeniedFlow : AllowedFlow).safeParse(flow).success).toBe(true);
      expect(flow.action).toBe(eventId === 5157 ? 'denied' : 'allowed');
      ids.add(flow.id);
      if (flow.action === 'denied') denied.push(flow);
    }
    expect(ids.size).toBe(lines(truth.dataset).length);
    expect(denied).toHaveLength(truth.deniedFlows);
    if (truth.deniedFlows > 0) {
      expect(new Date(Math.min(...denied.map((f) => f.time))).toISOString()).toBe(truth.firstDenied);
      const pairs = new Set(denied.map((f) => `${f.src.ip}>${f.dst.ip}:${f.dstPort}`));
      expect([...pairs].sort()).toEqual([...truth.deniedPairs].sort());
    }
  });

  it('makes 5156 and Sysmon 3 allowed flows, never denials, in every recording', () => {
    let permitted = 0;
    for (const line of ALL) {
      const r = JSON.parse(line) as { EventID: number };
      if (r.EventID === 5157) continue;
      expect(only(norm(line)).action).toBe('allowed');
      permitted++;
    }
    expect(permitted).toBe(2537 + 1320);
  });
});

describe('wfp: identity', () => {
  const host = (fqdn: string, name: string) => ({ kind: 'host', id: fqdn, name, labels: {} });

  it('a 5157 inbound on the DC names the DC as the destination, the attacker by address only', () => {
    const line = find((r) => r.EventID === 5157 && r.Hostname === 'MORDORDC.theshire.local');
    const r = JSON.parse(line) as { RecordNumber: number };
    expect(only(norm(line))).toEqual({
      id: `wfp:mordordc.theshire.local:${r.RecordNumber}`,
      time: Date.parse('2020-08-05T07:48:31.678Z'),
      src: { ip: '172.18.39.5', port: 60337 },
      dst: { ip: '172.18.38.5', port: 49683, workload: host('mordordc.theshire.local', 'MORDORDC') },
      protocol: 'tcp',
      dstPort: 49683,
      action: 'denied',
      policy: { id: 'wfp:filter/70388', name: 'WFP filter (run-time id 70388)' },
      observer: { type: 'wfp', name: 'mordordc.theshire.local' },
      direction: 'inbound',
      process: 'services.exe', // \device\harddiskvolume2\windows\system32\services.exe
    });
  });

  it('inbound: the host is the destination; outbound: the source (DC 172.18.38.5)', () => {
    const inbound = only(norm(find((r) => r.EventID === 5156 && r.Direction === '%%14592' && r.DestAddress === '172.18.38.5')));
    expect(inbound.dst.workload?.id).toBe('mordordc.theshire.local');
    expect(inbound.src.workload).toBeUndefined();
    const outbound = only(norm(find((r) => r.EventID === 5156 && r.Direction === '%%14593' && r.SourceAddress === '172.18.38.5')));
    expect(outbound.src.workload?.id).toBe('mordordc.theshire.local');
    expect(outbound.dst.workload).toBeUndefined();
  });

  it('a datagram to a multicast or broadcast address does not make that address the host', () => {
    for (const group of ['224.0.0.251', '239.255.255.250', '172.18.39.255', 'ff02::fb']) {
      const flow = only(norm(find((r) => r.EventID === 5156 && r.Direction === '%%14592' && r.DestAddress === group)));
      expect(flow.src.workload).toBeUndefined();
      expect(flow.dst.workload).toBeUndefined();
    }
  });

  it('loopback names the host on both sides', () => {
    const flow = only(norm(find((r) => r.EventID === 5156 && r.SourceAddress === '::1' && r.DestAddress === '::1')));
    expect(flow.src.workload?.kind).toBe('host');
    expect(flow.dst.workload?.kind).toBe('host');
  });

  it('Sysmon: Initiated names the source; inbound TCP the destination; inbound UDP nobody', () => {
    const out = only(norm(find((r) => r.EventID === 3 && r.Initiated === 'true' && r.SourceIp === '172.18.39.5' && r.Protocol === 'tcp')));
    expect(out.src.workload).toEqual(host(String(out.observer.name), out.src.workload!.name));
    expect(out.observer.type).toBe('sysmon');
    expect(out.id).toMatch(/^wfp:[a-z0-9.]+:sysmon:\d+$/);
    const inTcp = only(norm(find((r) => r.EventID === 3 && r.Initiated === 'false' && r.Protocol === 'tcp' && r.DestinationIp === '172.18.38.5')));
    expect(inTcp.dst.workload?.id).toBe('mordordc.theshire.local');
    expect(inTcp.src.workload).toBeUndefined();
    // The DC answering DNS from :53 is logged as Initiated=false with the DC as the *source*.
    const dns = only(norm(find((r) => r.EventID === 3 && r.Initiated === 'false' && r.Protocol === 'udp' && r.SourcePort === '53')));
    expect(dns.src.workload).toBeUndefined();
    expect(dns.dst.workload).toBeUndefined();
  });

  it('writes IPv6 in one canonical form whatever the log wrote', () => {
    const flow = only(norm(find((r) => r.EventID === 3 && r.SourceIp === '0:0:0:0:0:0:0:1')));
    expect(flow.src.ip).toBe('::1');
    const fe80 = only(norm(find((r) => r.EventID === 3 && r.SourceIp === 'fe80:0:0:0:44af:a0ee:c7f9:e9ed')));
    expect(fe80.src.ip).toBe('fe80::44af:a0ee:c7f9:e9ed');
  });

  it('a record without RecordNumber gets a hash id, deterministically', () => {
    const line = find((r) => r.RecordNumber === undefined && r.EventID === 5156);
    const a = only(norm(line));
    expect(a.id).toMatch(/^wfp:[0-9a-f]{20}$/);
    expect(only(norm(line)).id).toBe(a.id);
    expect(a.time).toBe(Date.parse((JSON.parse(line) as { TimeCreated: string }).TimeCreated));
  });
});

describe('wfp: skips and rejects', () => {
  const blocked = find((r) => r.EventID === 5157);
  const sysmon = find((r) => r.EventID === 3);

  it('skips other Windows events', () => {
    const o = norm(edit(blocked, (r) => (r.EventID = 4624)));
    expect(o.kind).toBe('skip');
    expect(norm(edit(sysmon, (r) => (r.EventID = 1))).kind).toBe('skip');
  });

  it('rejects a missing required field, naming it', () => {
    expect(rejectReason(norm(edit(blocked, (r) => delete r.DestPort)))).toContain('DestPort');
    expect(rejectReason(norm(edit(blocked, (r) => delete r.EventID)))).toContain('EventID');
    expect(rejectReason(norm(edit(blocked, (r) => delete r.Hostname)))).toContain('Hostname');
    expect(rejectReason(norm(edit(sysmon, (r) => delete r.DestinationIp)))).toContain('DestinationIp');
    expect(rejectReason(norm(edit(blocked, (r) => delete r['@timestamp'])))).toContain('@timestamp');
  });

  it('rejects a wrong type, naming the field', () => {
    expect(rejectReason(norm(edit(blocked, (r) => (r.SourcePort = 60337))))).toContain('SourcePort');
    expect(rejectReason(norm(edit(blocked, (r) => (r.Direction = 'sideways'))))).toContain('Direction');
    expect(rejectReason(norm(edit(blocked, (r) => (r.EventID = 'blocked'))))).toContain('EventID');
  });

  it('rejects an invalid IP, naming the field', () => {
    expect(rejectReason(norm(edit(blocked, (r) => (r.SourceAddress = '172.18.39.256'))))).toContain('SourceAddress');
    expect(rejectReason(norm(edit(sysmon, (r) => (r.SourceIp = 'not-an-ip'))))).toContain('SourceIp');
  });

  it('rejects a port out of range or not a number, naming the field and the value', () => {
    expect(rejectReason(norm(edit(blocked, (r) => (r.DestPort = '70000'))))).toBe(
      'wfp: DestPort: expected a port number 0..65535, got "70000"',
    );
    expect(rejectReason(norm(edit(blocked, (r) => (r.DestPort = 'abc'))))).toBe(
      'wfp: DestPort: expected a port number 0..65535, got "abc"',
    );
  });

  it('rejects a host name with a bidi override or a zero-width character', () => {
    expect(rejectReason(norm(edit(blocked, (r) => (r.Hostname = 'MORDORDC\u202e.theshire.local'))))).toContain('Hostname');
    expect(rejectReason(norm(edit(blocked, (r) => (r.Hostname = 'MORDOR\u200bDC'))))).toContain('Hostname');
  });
});
