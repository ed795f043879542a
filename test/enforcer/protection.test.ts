import { EnforcerError, type ApplyRequest, type Target } from '../../src/enforcer/enforcer';
import { guardProtected, protectingSelector } from '../../src/enforcer/protection';
import { EntitySelector } from '../../src/playbook/selector';

const pod: Target = { entity: 'pod:payments/api-1', kind: 'pod', namespace: 'payments', name: 'api-1' };
const host: Target = { entity: 'ip:10.0.0.5', kind: 'ip', ip: '10.0.0.5' };
const request = (target: Target, extra: Partial<ApplyRequest> = {}): ApplyRequest => ({
  target,
  labels: { 'cordon.io/quarantine': 'true' },
  expiresAt: 0,
  leaseId: 'lease.x',
  ...extra,
});
const selectors = (...s: unknown[]) => s.map((x) => EntitySelector.parse(x));

describe('protection on the live workload', () => {
  it('the built-ins always hold: Cordon itself by label, a domain controller by its role label', () => {
    expect(protectingSelector(pod, { labels: { 'app.kubernetes.io/part-of': 'cordon' } })).toEqual({ labels: { 'app.kubernetes.io/part-of': 'cordon' } });
    expect(protectingSelector(pod, { labels: { 'cordon.io/role': 'domain-controller' } })).toEqual({ roles: ['domain-controller'] });
    expect(protectingSelector(pod, { labels: {}, roles: ['domain-controller'] })).toEqual({ roles: ['domain-controller'] });
    expect(protectingSelector(pod, { labels: { app: 'api' } })).toBeUndefined();
  });

  it("the playbook's selectors add to the built-ins (names, namespaces, labels, cidrs, kinds)", () => {
    const extra = selectors({ names: ['api-*'], namespaces: ['payments'] }, { cidrs: ['10.0.0.0/24'] }, { labels: { tier: 'db' } });
    expect(protectingSelector(pod, { labels: {} }, extra)).toBe(extra[0]);
    expect(protectingSelector(host, { labels: {} }, extra)).toBe(extra[1]);
    expect(protectingSelector({ ...pod, name: 'web-1', entity: 'pod:payments/web-1' }, { labels: { tier: 'db' } }, extra)).toBe(extra[2]);
    expect(protectingSelector({ ...pod, name: 'web-1', entity: 'pod:payments/web-1' }, { labels: { tier: 'web' } }, extra)).toBeUndefined();
    // The built-ins cannot be taken away by a playbook that lists none.
    expect(protectingSelector(pod, { labels: { 'app.kubernetes.io/part-of': 'cordon' } }, [])).toBeDefined();
  });

  it('labels only add protection: a name-protected workload stays protected whatever it is labelled', () => {
    const extra = selectors({ names: ['api-*'] });
    for (const labels of [{}, { 'cordon.io/role': 'workstation' }, { 'app.kubernetes.io/part-of': 'not-cordon' }] as Record<string, string>[]) {
      expect(protectingSelector(pod, { labels }, extra)).toBe(extra[0]);
    }
  });

  it('the live address counts, not only the one telemetry gave', () => {
    const extra = selectors({ cidrs: ['192.168.9.0/24'] });
    expect(protectingSelector(pod, { labels: {}, ip: '192.168.9.7' }, extra)).toBe(extra[0]);
    expect(protectingSelector(pod, { labels: {}, ip: '10.1.1.1' }, extra)).toBeUndefined();
  });

  it('guardProtected throws a non-retriable EnforcerError coded protected, unless a person approved', () => {
    const live = { labels: { 'app.kubernetes.io/part-of': 'cordon' } };
    let thrown: unknown;
    try {
      guardProtected('kubernetes', request(pod), live);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(EnforcerError);
    expect(thrown).toMatchObject({ retriable: false, code: 'protected' });
    expect((thrown as Error).message).toBe(
      "kubernetes: pod:payments/api-1 is protected as the layer shows it now (labels app.kubernetes.io/part-of=cordon): quarantining it needs a person's approval",
    );
    expect(() => guardProtected('kubernetes', request(pod, { approvedBy: 'user:alice' }), live)).not.toThrow();
    expect(() => guardProtected('kubernetes', request(pod), { labels: { app: 'api' } })).not.toThrow();
  });
});
