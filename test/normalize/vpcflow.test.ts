import { readFileSync } from 'node:fs';
import path from 'node:path';
import { AllowedFlow, DeniedFlow, type Flow } from '../../src/events';
import type { Outcome, StreamContext } from '../../src/normalize/normalizer';
import { normalizeRecord } from '../../src/normalize/registry';
import { isVpcHeaderLine } from '../../src/normalize/vpcflow';

// All fixtures: AWS VPC user guide, "Flow log record examples"
// (https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-records-examples.html,
// doc_source/flow-logs-records-examples.md in github.com/awsdocs/amazon-vpc-user-guide).
const fixture = (name: string) =>
  readFileSync(path.resolve(__dirname, '../fixtures/vpcflow', name), 'utf8').split('\n').filter((l) => l.length > 0);

// "Accepted and rejected traffic", "No data and skipped records", "Security group and network ACL
// rules" (ping accepted in, reply rejected out), "IPv6 traffic": default format records.
const DEFAULT = fixture('default-format.txt');
// "TCP flag sequence": a custom format (header line first), one record with a double space as published.
const TCP_FLAGS = fixture('custom-tcp-flags.txt');
// "Service name, traffic path, and flow direction": version 5 fields incl. flow-direction.
const TRAFFIC_PATH = fixture('custom-traffic-path.txt');
// "Traffic through a NAT gateway": a custom format without action, ports or time (the trailing
// "#Traffic from ..." annotations of the last two published lines are left out).
const NAT = fixture('custom-nat-gateway.txt');

const ctx = (): StreamContext => ({ state: new Map() });

/** Normalizes the lines of one stream (one file), in order. */
const stream = (lines: readonly string[], c: StreamContext = ctx()): Outcome[] =>
  lines.map((l) => normalizeRecord(l, 'vpcflow', c));

function only(o: Outcome): Flow {
  if (o.kind !== 'events') throw new Error(`expected events, got ${o.kind}: ${o.reason}`);
  expect(o.events).toHaveLength(1);
  return o.events[0] as Flow;
}

function rejectReason(o: Outcome): string {
  if (o.kind !== 'reject') throw new Error(`expected a reject, got ${JSON.stringify(o)}`);
  return o.reason;
}

describe('vpcflow: default format (documented examples)', () => {
  const [ssh, rdp, nodata, skipdata, pingIn, pingReply, ipv6] = stream(DEFAULT);

  it('ACCEPT is an allowed flow', () => {
    const flow = only(ssh!);
    expect(AllowedFlow.safeParse(flow).success).toBe(true);
    expect(flow).toEqual({
      id: expect.stringMatching(/^vpcflow:[0-9a-f]{20}$/),
      time: 1418530010000,
      src: { ip: '172.31.16.139', port: 20641 },
      dst: { ip: '172.31.16.21', port: 22 },
      protocol: 'tcp',
      dstPort: 22,
      action: 'allowed',
      observer: { type: 'vpcflow', name: 'eni-1235b8ca123456789' },
    });
  });

  it('REJECT is a denied flow', () => {
    const flow = only(rdp!);
    expect(DeniedFlow.safeParse(flow).success).toBe(true);
    expect(flow).toMatchObject({
      src: { ip: '172.31.9.69', port: 49761 },
      dst: { ip: '172.31.9.12', port: 3389 },
      dstPort: 3389,
      action: 'denied',
      policy: { id: 'vpcflow:REJECT' },
    });
  });

  it('NODATA and SKIPDATA are skipped', () => {
    expect(nodata).toEqual({ kind: 'skip', reason: 'vpcflow: log-status NODATA' });
    expect(skipdata).toEqual({ kind: 'skip', reason: 'vpcflow: log-status SKIPDATA' });
  });

  it('ICMP (protocol 1): the ping in is allowed, the reply the network ACL dropped is denied', () => {
    expect(only(pingIn!)).toMatchObject({ protocol: 'icmp', dstPort: 0, action: 'allowed', src: { ip: '203.0.113.12' } });
    expect(only(pingReply!)).toMatchObject({ protocol: 'icmp', dstPort: 0, action: 'denied', src: { ip: '172.31.16.139' } });
  });

  it('IPv6 addresses', () => {
    expect(only(ipv6!)).toMatchObject({
      src: { ip: '2001:db8:1234:a100:8d6e:3477:df66:f105' },
      dst: { ip: '2001:db8:1234:a102:3304:8879:34cf:4071', port: 22 },
    });
  });

  it('the same line always gets the same id', () => {
    expect(only(stream([DEFAULT[0]!])[0]!).id).toBe(only(ssh!).id);
  });
});

describe('vpcflow: custom formats declared by a header line', () => {
  it('remembers the header (TCP flag sequence example): every record is read by its fields', () => {
    const [header, ...records] = stream(TCP_FLAGS);
    expect(header!.kind).toBe('skip');
    expect(records).toHaveLength(8);
    const flows = records.map(only);
    expect(flows.every((f) => f.action === 'allowed' && f.protocol === 'tcp')).toBe(true);
    expect(flows[0]).toMatchObject({ src: { ip: '52.213.180.42', port: 43416 }, dst: { ip: '10.0.0.62', port: 5001 }, time: 1566848875000 });
    // The record published with a double space reads like the others.
    expect(flows[7]).toMatchObject({ src: { ip: '10.0.0.62', port: 5001 }, dst: { ip: '52.213.180.42', port: 43638 } });
    // No flow-direction in this format: which side is i-01234567890123456 is unknown, so IP only.
    expect(flows.every((f) => f.src.workload === undefined && f.dst.workload === undefined)).toBe(true);
  });

  it('with flow-direction, the instance is the destination of ingress and the source of egress', () => {
    const [, ingress, egress] = stream(TRAFFIC_PATH);
    const vm = { kind: 'vm', id: 'i-0c50d5961bcb2d47b', name: 'i-0c50d5961bcb2d47b', labels: {} };
    expect(only(ingress!)).toMatchObject({ src: { ip: '52.95.128.179', port: 80 }, dst: { ip: '10.0.0.71', port: 34210, workload: vm } });
    expect(only(ingress!).src.workload).toBeUndefined();
    expect(only(egress!)).toMatchObject({ src: { ip: '10.0.0.71', workload: vm }, dst: { ip: '52.95.128.179', port: 80 } });
  });

  it('the header belongs to its stream: a new stream reads the default format again', () => {
    stream(TCP_FLAGS.slice(0, 1));
    expect(only(stream([DEFAULT[0]!])[0]!).dstPort).toBe(22);
    // ...and on the header's own stream a default-format line no longer fits.
    const c = ctx();
    stream(TCP_FLAGS.slice(0, 1), c);
    expect(rejectReason(stream([DEFAULT[0]!], c)[0]!)).toContain('expected 21 fields');
  });

  it('a format that lacks what a flow needs (NAT gateway example) is rejected, naming the fields', () => {
    const [header, ...records] = stream(NAT);
    expect(rejectReason(header!)).toBe('vpcflow: header: the format lacks dstport, protocol, action, start, so its records cannot give flows');
    for (const r of records) expect(rejectReason(r)).toContain('dstport, protocol, action, start: not in the format');
  });

  it('recognizes header lines', () => {
    expect(isVpcHeaderLine(TCP_FLAGS[0]!)).toBe(true);
    expect(isVpcHeaderLine(NAT[0]!)).toBe(true);
    expect(isVpcHeaderLine(NAT[1]!)).toBe(false);
    expect(isVpcHeaderLine(DEFAULT[0]!)).toBe(false);
  });
});

describe('vpcflow: skips and rejects', () => {
  const base = DEFAULT[1]!.split(' ');
  const line = (i: number, v: string) => base.map((t, j) => (j === i ? v : t)).join(' ');
  const one = (text: string) => stream([text])[0]!;

  it('skips a "-" in a field the flow needs', () => {
    expect(one(line(6, '-'))).toEqual({ kind: 'skip', reason: 'vpcflow: dstport is "-" (no data)' });
  });

  it('rejects a missing field (by count) or a format missing a field (by name)', () => {
    expect(rejectReason(one(base.slice(0, 13).join(' ')))).toBe('vpcflow: expected 14 fields (the default version 2 format), got 13');
    const c = ctx();
    stream(['version interface-id srcaddr dstaddr srcport dstport protocol start end log-status'], c);
    expect(rejectReason(stream(['2 eni-1 10.0.0.1 10.0.0.2 1 22 6 1418530010 1418530070 OK'], c)[0]!)).toContain('action');
  });

  it('rejects a wrong type, an invalid IP, a port out of range, an unknown action, naming the field', () => {
    expect(rejectReason(one(line(7, 'tcp')))).toContain('protocol');
    expect(rejectReason(one(line(10, 'yesterday')))).toContain('start');
    expect(rejectReason(one(line(3, '172.31.9.256')))).toContain('srcaddr');
    expect(rejectReason(one(line(6, '70000')))).toBe('vpcflow: dstport: expected a port number 0..65535, got "70000"');
    expect(rejectReason(one(line(12, 'DROP')))).toContain('action');
  });
});
