import { FencedCallError, type Fence, type Target } from '../../src/enforcer/enforcer';
import { KubernetesEnforcer } from '../../src/enforcer/kubernetes';
import { KubernetesContractServer } from '../contract/kubernetes-server';

/** The pod records the epoch of the last ledger writer that wrote it; an older writer is refused. */
const Q = 'cordon.io/quarantine';
const EPOCH = 'cordon.io/writer-epoch';

describe('KubernetesEnforcer fencing', () => {
  const server = new KubernetesContractServer({ 'cordon-token': { user: 'system:serviceaccount:cordon:cordon', verbs: ['get', 'patch'] } });
  let url: string;
  beforeAll(async () => {
    url = await server.start();
  });
  afterAll(() => server.stop());

  const enforcer = () => new KubernetesEnforcer({ connection: { mode: 'token', server: url, token: 'cordon-token', skipTLSVerify: true }, retry: { retries: 2, initialMs: 10, maxMs: 20 } });
  const fence = (epoch: number): Fence => ({ token: `replica-${epoch}#${epoch}`, epoch, lockKey: 'unused' });
  const target: Target = { entity: 'pod:payments/api-1', kind: 'pod', namespace: 'payments', name: 'api-1' };

  it('writes the epoch with the labels, refuses an older epoch, lets the same or a newer one through', async () => {
    server.addPod({ namespace: 'payments', name: 'api-1', labels: { app: 'api' } });
    const snapshot = await enforcer().apply({ target, labels: { [Q]: 'true' }, expiresAt: Date.now() + 60_000, leaseId: 'lease-1', fence: fence(5) });
    expect(server.pod('payments', 'api-1')?.metadata.annotations?.[EPOCH]).toBe('5');

    const patchesBefore = server.requests.filter((r) => r.method === 'PATCH').length;
    await expect(enforcer().revert(snapshot, 'lease-1', fence(4))).rejects.toThrow(FencedCallError);
    await expect(enforcer().apply({ target, labels: { [Q]: 'true', zone: 'x' }, expiresAt: Date.now() + 60_000, leaseId: 'lease-2', fence: fence(4) })).rejects.toMatchObject({ code: 'fenced', retriable: false });
    expect(server.requests.filter((r) => r.method === 'PATCH').length).toBe(patchesBefore);
    expect(server.pod('payments', 'api-1')?.metadata.labels).toEqual({ app: 'api', [Q]: 'true' });

    await enforcer().revert(snapshot, 'lease-1', fence(6));
    expect(server.pod('payments', 'api-1')?.metadata.labels).toEqual({ app: 'api' });
    expect(server.pod('payments', 'api-1')?.metadata.annotations?.[EPOCH]).toBe('6');
  });
});
