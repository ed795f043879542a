import Redis from 'ioredis';
import type { Kafka } from 'kafkajs';
import type { Config } from '../../src/config';
import { Containment } from '../../src/contain/containment';
import { Quarantines } from '../../src/contain/quarantine';
import type { Target } from '../../src/enforcer/enforcer';
import { KubernetesEnforcer } from '../../src/enforcer/kubernetes';
import { Ledger } from '../../src/ledger/ledger';
import { Metrics } from '../../src/metrics';
import { KubernetesContractServer, type KubeUser } from '../contract/kubernetes-server';
import { createTopics, deleteTopics, testKafka } from '../support/kafka';
import { eventually, REDIS_URL, testConfig, testLog } from '../support/stack';
import { autoPlaybook, playbookDir } from './support';

/**
 * The reconciler takes each overdue lease on its own (real Kafka, Redis, BullMQ; Kubernetes
 * contract server): a lease whose release keeps failing does not stop the others being released,
 * nor the service starting, and is released once its target can be reverted again.
 */

const Q = 'cordon.io/quarantine';

describe('reconcile, one lease at a time', () => {
  // Cordon's service account is granted pods in two namespaces; it loses the second one for a while.
  const cordon: KubeUser = { user: 'system:serviceaccount:cordon:cordon', verbs: ['get', 'patch'], namespaces: ['payments', 'billing'] };
  const server = new KubernetesContractServer({ 'cordon-token': cordon });
  let kafka: Kafka;
  let redis: Redis;
  let config: Config;
  let containment: Containment | undefined;

  beforeAll(async () => {
    await server.start();
    kafka = testKafka();
    redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    await containment?.stop();
    await deleteTopics(kafka, config);
    redis.disconnect();
    await server.stop();
  });


  it('an overdue lease whose release fails is left overdue and retried; the other is released and start-up goes on', async () => {
    config = testConfig('reconcile-iso', { contain: { playbooks: playbookDir('reconcile-iso', autoPlaybook('reconcile-iso', '  - id: quarantine-root\n    type: quarantine\n    target: root\n    enforcer: kubernetes\n    ttl: 1h\n')), reconcileIntervalMs: 200 } });
    await createTopics(kafka, config);
    const k8s = new KubernetesEnforcer({ connection: { mode: 'token', server: server.url, token: 'cordon-token', skipTLSVerify: true }, retry: { retries: 1, initialMs: 10, maxMs: 20 } });
    const enforcers = new Map([['kubernetes', k8s]]);
    const pod = (namespace: string): Target => {
      server.addPod({ namespace, name: 'api', labels: { app: 'api' } });
      return { entity: `pod:${namespace}/api`, kind: 'pod', namespace, name: 'api' };
    };
    const [a, b] = [pod('payments'), pod('billing')];

    // Two leases that fall due while no containment runs.
    const ledger = await Ledger.open({ kafka, redis, topic: config.kafka.topics.ledger, prefix: config.redis.keyPrefix, log: testLog });
    const q = new Quarantines({ ledger, enforcers, schedule: async () => undefined, log: testLog });
    for (const target of [a, b]) {
      await q.contain({ target, enforcer: 'kubernetes', labels: { [Q]: 'true' }, ttlMs: 1, incidentId: 'inc-1', actor: 'playbook:auto@1', reason: 'test' });
    }
    await ledger.close();
    expect(server.pod('billing', 'api')?.metadata.labels).toMatchObject({ [Q]: 'true' });
    cordon.namespaces = ['payments']; // b's revert is now refused (403) until the grant comes back

    const metrics = new Metrics({ defaultMetrics: false });
    containment = new Containment({ kafka, redis, bullConnection: () => new Redis(REDIS_URL, { maxRetriesPerRequest: null }), config, enforcers, metrics, log: testLog });
    await containment.start(); // without isolation, b's failed release made start() throw

    const registry = containment.quarantines.registry;
    expect(await registry.get(a.entity)).toMatchObject({ state: 'expired', outcome: 'restored' });
    expect(server.pod('payments', 'api')?.metadata.labels).toEqual({ app: 'api' });
    expect(await registry.get(b.entity)).toMatchObject({ state: 'applied' });
    expect(containment.overdueLeases()).toEqual([{ target: b.entity, failures: 1, error: expect.stringMatching(/forbidden/) }]);
    expect((await metrics.leasesOverdue.get()).values[0]?.value).toBe(1);
    expect((await metrics.releaseFailures.get()).values[0]?.value).toBeGreaterThanOrEqual(1);

    cordon.namespaces = ['payments', 'billing'];
    await eventually(async () => ((await registry.get(b.entity))?.state === 'expired' ? true : undefined), 15_000, 'b released once it can be');
    expect(server.pod('billing', 'api')?.metadata.labels).toEqual({ app: 'api' });
    await eventually(async () => (containment!.overdueLeases().length === 0 ? true : undefined), 5_000, 'no overdue lease left');
    expect((await metrics.leasesOverdue.get()).values[0]?.value).toBe(0);
  }, 60_000);
});
