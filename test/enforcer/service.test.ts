import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Kafka } from 'kafkajs';
import type { Config } from '../../src/config';
import { CHANGE_HEADER } from '../../src/correlate/correlator';
import type { Incident } from '../../src/correlate/incident';
import { replay } from '../../src/correlate/replay';
import { enforcersFrom, prepareEnforcers } from '../../src/enforcer/registry';
import type { CordonEvent } from '../../src/events';
import { readLines } from '../../src/io/lines';
import { normalizeRecord } from '../../src/normalize/registry';
import { Service } from '../../src/service';
import { IllumioContractServer } from '../contract/illumio-server';
import { KubernetesContractServer } from '../contract/kubernetes-server';
import { createTopics, deleteTopics, testKafka } from '../support/kafka';
import { eventually, testConfig, testLog } from '../support/stack';

const RECORDING = resolve(__dirname, '../../../shared/datasets/otrf-lateral-movement/covenant_sharpsc_create_dcerpc_smb_svcctl.jsonl.gz');
const POD = 'pod:payments/api-7f9c';
const PLAYBOOK = `apiVersion: cordon.io/v1
kind: Playbook
name: k8s-auto
description: quarantine the root pod (test)
priority: 100
mode: auto
match:
  severity: high
safety:
  protected_approval:
    approvers: [soc-oncall]
    deadline: 15m
steps:
  - id: quarantine-root
    type: quarantine
    target: root
    enforcer: kubernetes
    ttl: 1h
`;

/** The enforcer sections of the config, built by the service and used by a playbook (contract servers). */
describe('enforcers from the config, in the running service', () => {
  jest.setTimeout(120_000);
  const k8s = new KubernetesContractServer({ 'cordon-token': { user: 'system:serviceaccount:cordon:cordon', verbs: ['get', 'patch'] } });
  const pce = new IllumioContractServer({ orgId: 1, apiKeys: { api_cordon: { secret: 'k3y-s3cret', access: 'write' } } });
  let kafka: Kafka;
  let k8sUrl: string;
  let pceUrl: string;
  let config: Config;
  let service: Service | undefined;

  beforeAll(async () => {
    kafka = testKafka();
    k8sUrl = await k8s.start();
    pceUrl = await pce.start();
  });
  afterAll(async () => {
    await service?.stop();
    if (config) await deleteTopics(kafka, config);
    await k8s.stop();
    await pce.stop();
  });

  const enforcerSections = () => ({
    labelstore: true,
    kubernetes: { connection: { mode: 'token', server: k8sUrl, token: 'cordon-token', skipTLSVerify: true }, retry: { retries: 2, initialMs: 10, maxMs: 50 } },
    illumio: { pceUrl, orgId: 1, apiKeyId: 'api_cordon', apiKeySecret: 'k3y-s3cret', retry: { retries: 1, initialMs: 10, maxMs: 50 } },
    webhook: { url: 'http://127.0.0.1:9/cordon', secret: 's'.repeat(32) },
  });

  it('builds every configured layer by name; start-up prepares Illumio (the quarantine label) and survives an unreachable PCE', async () => {
    const cfg = testConfig('enforcers', { contain: { enforcers: enforcerSections() } });
    const built = enforcersFrom(cfg, undefined as never, testLog);
    expect([...built.keys()].sort()).toEqual(['illumio', 'kubernetes', 'labelstore', 'webhook']);
    expect(pce.findLabels('quarantine', 'true')).toHaveLength(0);
    await prepareEnforcers(built, testLog);
    expect(pce.findLabels('quarantine', 'true')).toHaveLength(1);

    const down = testConfig('enforcers', { contain: { enforcers: { illumio: { ...enforcerSections().illumio, pceUrl: 'http://127.0.0.1:9' } } } });
    await expect(prepareEnforcers(enforcersFrom(down, undefined as never, testLog), testLog)).resolves.toBeUndefined();
  });

  it('a playbook naming the kubernetes enforcer labels the pod through the API server', async () => {
    k8s.addPod({ namespace: 'payments', name: 'api-7f9c', labels: { app: 'api' } });
    const dir = mkdtempSync(join(tmpdir(), 'cordon-k8s-playbooks-'));
    writeFileSync(join(dir, 'k8s-auto.yaml'), PLAYBOOK);
    config = testConfig('enforcers-svc', { contain: { playbooks: dir, reconcileIntervalMs: 500, enforcers: enforcerSections() } });
    await createTopics(kafka, config);
    service = new Service(config, testLog);
    await service.start();

    const events: CordonEvent[] = [];
    const ctx = { state: new Map() };
    for await (const line of readLines(RECORDING)) {
      const o = normalizeRecord(line, 'wfp', ctx);
      if (o.kind === 'events') events.push(...o.events);
    }
    const base = replay(events).incidents[0]!;
    const incident: Incident = {
      ...base,
      severity: 'high',
      root: POD,
      entities: [
        { key: POD, kind: 'pod', name: 'api-7f9c', role: 'server', roleSource: 'default', position: 'root' },
        ...base.entities.filter((e) => e.key !== base.root),
      ],
    };
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: config.kafka.topics.incidents, messages: [{ key: incident.id, value: JSON.stringify(incident), headers: { [CHANGE_HEADER]: 'incident_opened' } }] });
    await producer.disconnect();

    const lease = await eventually(async () => {
      const l = await service!.containment!.quarantines.registry.get(POD);
      return l?.state === 'applied' ? l : undefined;
    }, 30_000, 'the kubernetes lease applied');
    expect(lease.enforcer).toBe('kubernetes');
    expect(k8s.pod('payments', 'api-7f9c')?.metadata.labels).toEqual({ app: 'api', 'cordon.io/quarantine': 'true' });
    expect(k8s.requests.some((r) => r.method === 'PATCH')).toBe(true);
  });
});
