import Redis from 'ioredis';
import type { Kafka } from 'kafkajs';
import type { Config } from '../../src/config';
import { Quarantines, type DriftPolicy } from '../../src/contain/quarantine';
import type { Target } from '../../src/enforcer/enforcer';
import { KubernetesEnforcer } from '../../src/enforcer/kubernetes';
import { exportLedger, verifyLedger } from '../../src/ledger/audit';
import { Ledger } from '../../src/ledger/ledger';
import type { LedgerRecord } from '../../src/ledger/records';
import { KubernetesContractServer } from '../contract/kubernetes-server';
import { createTopics, deleteTopics, testKafka } from '../support/kafka';
import { REDIS_URL, testConfig, testLog } from '../support/stack';

/**
 * Releases that always end, on the real ledger (Kafka, Redis) and the Kubernetes enforcer against
 * the contract server: a pod that is gone, labels changed outside Cordon, and the drift policy.
 */

const Q = 'cordon.io/quarantine';

describe('releases that always end (Kubernetes contract server, real ledger)', () => {
  const server = new KubernetesContractServer({ 'cordon-token': { user: 'system:serviceaccount:cordon:cordon', verbs: ['get', 'patch'] } });
  let kafka: Kafka;
  let redis: Redis;
  const configs: Config[] = [];
  let seq = 0;

  beforeAll(async () => {
    await server.start();
    kafka = testKafka();
    redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    for (const c of configs) await deleteTopics(kafka, c);
    redis.disconnect();
    await server.stop();
  });

  async function setup(name: string, driftPolicy?: DriftPolicy) {
    const config = testConfig(name);
    configs.push(config);
    await createTopics(kafka, config);
    const ledger = await Ledger.open({ kafka, redis, topic: config.kafka.topics.ledger, prefix: config.redis.keyPrefix, log: testLog });
    const enforcer = new KubernetesEnforcer({ connection: { mode: 'token', server: server.url, token: 'cordon-token', skipTLSVerify: true }, retry: { retries: 1, initialMs: 10, maxMs: 20 } });
    const q = new Quarantines({ ledger, enforcers: new Map([['kubernetes', enforcer]]), schedule: async () => undefined, log: testLog, ...(driftPolicy ? { driftPolicy } : {}) });
    const podName = `api-${++seq}`;
    server.addPod({ namespace: 'payments', name: podName, labels: { app: 'api' } });
    const target: Target = { entity: `pod:payments/${podName}`, kind: 'pod', namespace: 'payments', name: podName };
    const contain = () => q.contain({ target, enforcer: 'kubernetes', labels: { [Q]: 'true' }, ttlMs: 60_000, incidentId: 'inc-1', actor: 'playbook:auto@1', reason: 'test' });
    const records = async (): Promise<LedgerRecord[]> => {
      await ledger.close();
      expect(await verifyLedger(kafka, config.kafka.topics.ledger)).toMatchObject({ ok: true });
      const out: LedgerRecord[] = [];
      await exportLedger(kafka, config.kafka.topics.ledger, (line) => void out.push(JSON.parse(line) as LedgerRecord));
      return out;
    };
    return { q, target, podName, contain, records };
  }

  it('a pod deleted while quarantined is released as gone, and the ledger says so', async () => {
    const { q, target, podName, contain, records } = await setup('rel-gone');
    await contain();
    server.deletePod('payments', podName);
    const ended = await q.release(target.entity, { incidentId: 'inc-1', actor: 'user:alice', reason: 'incident closed' });
    expect(ended).toMatchObject({ state: 'released', holders: [], outcome: 'gone' });
    const last = (await records()).at(-1)!;
    expect(last).toMatchObject({ action: 'quarantine_released', actor: 'user:alice', after: { state: 'released', outcome: 'gone' } });
    expect(last.reason).toMatch(/^incident closed; target gone, nothing to restore: kubernetes revert pod payments\/api-\d+: pods "api-\d+" not found$/);
  });

  it('a pod deleted while quarantined expires as gone', async () => {
    const { q, target, podName, records } = await setup('rel-gone-expiry');
    await q.contain({ target, enforcer: 'kubernetes', labels: { [Q]: 'true' }, ttlMs: 1, incidentId: 'inc-1', actor: 'playbook:auto@1', reason: 'test' });
    server.deletePod('payments', podName);
    await new Promise((r) => setTimeout(r, 5));
    const ended = await q.release(target.entity, { actor: 'service:cordon', reason: 'lease expired', expired: true });
    expect(ended).toMatchObject({ state: 'expired', outcome: 'gone' });
    expect((await records()).at(-1)).toMatchObject({ action: 'quarantine_expired', after: { outcome: 'gone' } });
  });

  it('a quarantine label changed outside Cordon still ends the release: outcome drifted, the change left as found', async () => {
    const { q, target, podName, contain, records } = await setup('rel-drift');
    await contain();
    server.update('payments', podName, (pod) => void (pod.metadata.labels = { ...pod.metadata.labels, [Q]: 'false', app: 'api-relabelled' }));
    const ended = await q.release(target.entity, { incidentId: 'inc-1', actor: 'user:alice', reason: 'incident closed' });
    expect(ended).toMatchObject({ state: 'released', outcome: 'drifted', drift: [{ key: Q, expected: 'true', actual: 'false', prior: null }] });
    expect(server.pod('payments', podName)?.metadata.labels).toEqual({ app: 'api-relabelled', [Q]: 'false' });
    expect(server.pod('payments', podName)?.metadata.annotations ?? {}).not.toHaveProperty('cordon.io/quarantine-state');
    const last = (await records()).at(-1)!;
    expect(last).toMatchObject({ action: 'quarantine_released', after: { outcome: 'drifted', drift: [{ key: Q, actual: 'false' }] } });
    expect(last.reason).toContain('incident closed; left as found: kubernetes revert pod');
  });

  it('a normal release is recorded as restored', async () => {
    const { q, target, podName, contain, records } = await setup('rel-restored');
    await contain();
    expect(await q.release(target.entity, { incidentId: 'inc-1', actor: 'user:alice', reason: 'done' })).toMatchObject({ outcome: 'restored' });
    expect(server.pod('payments', podName)?.metadata.labels).toEqual({ app: 'api' });
    expect((await records()).at(-1)).toMatchObject({ action: 'quarantine_released', reason: 'done', after: { outcome: 'restored' } });
  });

  describe('drift policy, while the lease lasts', () => {
    it('reapply (the default): the quarantine label someone removed is put back, recorded as drift and a re-apply', async () => {
      const { q, target, podName, contain, records } = await setup('drift-reapply');
      await contain();
      expect(await q.settleDrift(target.entity)).toBe('none');
      server.update('payments', podName, (pod) => void delete pod.metadata.labels?.[Q]);
      expect(await q.settleDrift(target.entity)).toBe('reapplied');
      expect(server.pod('payments', podName)?.metadata.labels).toEqual({ app: 'api', [Q]: 'true' });
      expect(await q.registry.get(target.entity)).toMatchObject({ state: 'applied' });
      const [drift, reapplied] = (await records()).slice(-2);
      expect(drift).toMatchObject({ action: 'drift_detected', actor: 'service:cordon', incidentId: 'inc-1', after: { app: 'api' }, reason: `quarantine labels changed outside Cordon: ${Q}=(absent) (held for inc-1)` });
      expect(reapplied).toMatchObject({ action: 'quarantine_applied', actor: 'service:cordon', incidentId: 'inc-1', after: { state: 'applied' } });
      expect(reapplied!.reason).toBe(`drift policy reapply: quarantine labels put back after a change outside Cordon (${Q}=(absent))`);
    });

    it('release: the lease ends at once, outcome drifted, the changed labels left as found', async () => {
      const { q, target, podName, contain, records } = await setup('drift-release', 'release');
      await contain();
      server.update('payments', podName, (pod) => void delete pod.metadata.labels?.[Q]);
      expect(await q.settleDrift(target.entity)).toBe('released');
      expect(await q.registry.get(target.entity)).toMatchObject({ state: 'released', outcome: 'drifted', drift: [{ key: Q, expected: 'true', actual: null, prior: null }] });
      expect(server.pod('payments', podName)?.metadata.labels).toEqual({ app: 'api' });
      const [drift, released] = (await records()).slice(-2);
      expect(drift).toMatchObject({ action: 'drift_detected' });
      expect(released).toMatchObject({ action: 'quarantine_released', actor: 'service:cordon', after: { state: 'released', outcome: 'drifted' } });
      expect(released!.reason).toMatch(/^drift policy release: quarantine labels changed outside Cordon/);
    });

    it('a release cut off between revert and record is finished, not taken for a drift and re-applied', async () => {
      const { q, target, podName, contain, records } = await setup('drift-interrupted');
      const lease = await contain();
      // What end() does before a crash at during-release: the intent, then the enforcer's revert.
      await q.registry.markReleasing(target.entity, { ledgerSeq: lease.ledgerSeq, actor: 'user:alice', reason: 'incident closed', expired: false, incidentId: 'inc-1' });
      server.update('payments', podName, (pod) => void delete pod.metadata.labels?.[Q]);
      expect(await q.settleDrift(target.entity)).toBe('released');
      expect(server.pod('payments', podName)?.metadata.labels).toEqual({ app: 'api' });
      expect(await q.registry.releasing(target.entity)).toBeUndefined();
      const all = await records();
      expect(all.filter((r) => r.action === 'quarantine_applied' && (r.after as { state?: string }).state === 'applied')).toHaveLength(1);
      expect(all.filter((r) => r.action === 'drift_detected')).toHaveLength(0);
      expect(all.at(-1)).toMatchObject({ action: 'quarantine_released', actor: 'user:alice', reason: 'incident closed (finished after an interruption)' });
    });

    it('a pod deleted during the lease ends it as gone at the next check, under either policy', async () => {
      for (const policy of ['reapply', 'release'] as const) {
        const { q, target, podName, contain, records } = await setup(`drift-gone-${policy}`, policy);
        await contain();
        server.deletePod('payments', podName);
        expect(await q.settleDrift(target.entity)).toBe('gone');
        expect(await q.registry.get(target.entity)).toMatchObject({ state: 'released', outcome: 'gone' });
        expect((await records()).at(-1)).toMatchObject({ action: 'quarantine_released', after: { outcome: 'gone' } });
      }
    });
  });
});
