import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import type { Flow } from '../../src/events';
import type { Outcome, StreamContext } from '../../src/normalize/normalizer';
import { intake, normalizeRecord } from '../../src/normalize/registry';
import { declareVpcFormat, vpcflow, vpcflowSchemaOnly } from '../../src/normalize/vpcflow';

/**
 * VPC flow log fields of versions 7 (ECS) and 8 (reject-reason), on Elastic's AWS integration
 * samples (test/fixtures/vpcflow/README.md). They carry no header: the field order is declared, as
 * for CloudWatch Logs delivery, or given by a header line, as S3 delivery writes it.
 */
const fixture = (name: string) =>
  readFileSync(path.resolve(__dirname, '../fixtures/vpcflow', name), 'utf8').split('\n').filter((l) => l.length > 0);
const ECS_RECORDS = fixture('elastic-ecs-samples.txt');
const [V8_RECORD] = fixture('elastic-v8-samples.txt') as [string];

// AWS's "Available fields", in their documented order: version 2, then the fields versions 3-8 added.
const V5 = ('version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status ' +
  'vpc-id subnet-id instance-id tcp-flags type pkt-srcaddr pkt-dstaddr region az-id sublocation-type sublocation-id ' +
  'pkt-src-aws-service pkt-dst-aws-service flow-direction traffic-path').split(' ');
const V7 = [...V5, ...('ecs-cluster-arn ecs-cluster-name ecs-container-instance-arn ecs-container-instance-id ecs-container-id ' +
  'ecs-second-container-id ecs-service-name ecs-task-definition-arn ecs-task-arn ecs-task-id').split(' ')];
const V8 = [...V7, 'reject-reason'];

const declared = (fields: readonly string[]): StreamContext => {
  const c: StreamContext = { state: new Map() };
  declareVpcFormat(c, fields);
  return c;
};
const flowsOf = (out: readonly Outcome[]) => out.flatMap((o) => (o.kind === 'events' ? (o.events as Flow[]) : []));

describe('vpcflow: version 7 (ECS) and 8 (reject-reason) fields, Elastic\'s samples', () => {
  test('the samples have the field counts of those versions', () => {
    expect(ECS_RECORDS).toHaveLength(10);
    expect(ECS_RECORDS.every((l) => l.split(' ').length === V7.length)).toBe(true);
    expect(V8_RECORD.split(' ')).toHaveLength(V8.length);
  });

  test('declared per input (the LogFormat of every field up to version 8) is accepted at start-up', () => {
    const logFormat = V8.map((f) => `\${${f}}`).join(' ');
    const config = loadConfig({ env: {}, overrides: { kafka: { inputs: [{ topic: 'vpc.flows', format: 'vpcflow', keyed: false, vpcFields: logFormat }] } } });
    expect(config.kafka.inputs[0]!.vpcFields).toEqual(V8);
  });

  test('version 7 records by the declared order: OK records are flows, NODATA and SKIPDATA skipped', () => {
    const c = declared(V7);
    const out = ECS_RECORDS.map((l) => normalizeRecord(l, 'vpcflow', c));
    expect(out.map((o) => o.kind)).toEqual(['events', 'skip', 'skip', 'events', 'events', 'events', 'skip', 'skip', 'skip', 'skip']);
    expect(flowsOf(out).map((f) => [f.src.ip, f.src.port, f.dst.ip, f.dstPort, f.protocol, f.action])).toEqual([
      ['1.128.0.0', 64072, '2a02:cf40::', 22, 'udp', 'denied'],
      ['81.2.69.142', 27556, '89.160.20.112', 80, 'udp', 'denied'],
      ['81.2.69.144', 63842, '81.2.69.192', 80, 'udp', 'allowed'],
      ['81.2.69.192', 14797, '81.2.69.144', 8080, 'tcp', 'allowed'],
    ]);
    expect(flowsOf(out)[0]!.time).toBe(1755678619000);
  });

  test('a header line naming the same fields (S3 delivery) gives the same outcomes', () => {
    const c: StreamContext = { state: new Map() };
    expect(normalizeRecord(V7.join(' '), 'vpcflow', c).kind).toBe('skip');
    expect(ECS_RECORDS.map((l) => normalizeRecord(l, 'vpcflow', c))).toEqual(ECS_RECORDS.map((l) => normalizeRecord(l, 'vpcflow', declared(V7))));
  });

  test('version 8: the NODATA sample is skipped; the same record with data is a denial', () => {
    expect(normalizeRecord(V8_RECORD, 'vpcflow', declared(V8))).toEqual({ kind: 'skip', reason: 'vpcflow: log-status NODATA' });
    const withData = V8_RECORD.replace(' REJECT NODATA ', ' REJECT OK ');
    expect(normalizeRecord(withData, 'vpcflow', declared(V8))).toMatchObject({
      kind: 'events',
      events: [{ src: { ip: '2a02:cf40::', port: 42910 }, dst: { ip: '1.128.0.0' }, dstPort: 80, protocol: 'udp', action: 'denied' }],
    });
    // Read by the version 7 order, the extra reject-reason field is a count mismatch, named.
    expect(normalizeRecord(withData, 'vpcflow', declared(V7))).toMatchObject({ kind: 'reject', reason: expect.stringMatching(/expected 39 fields/) });
  });

  test('the fast path gives the schema outcome on every sample', () => {
    for (const [fields, line] of [...ECS_RECORDS.map((l) => [V7, l] as const), [V8, V8_RECORD] as const]) {
      expect(intake(line, vpcflow, declared(fields))).toEqual(intake(line, vpcflowSchemaOnly, declared(fields)));
    }
  });
});
