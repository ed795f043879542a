import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { ConfigSchema } from '../../src/config';

/** connectors/kubernetes/deployment.yaml: replicas, rollout, PDB, probes and config agree with the service. */
describe('connectors/kubernetes/deployment.yaml', () => {
  const docs = YAML.parseAllDocuments(readFileSync('connectors/kubernetes/deployment.yaml', 'utf8')).map((d) => d.toJS());
  const byKind = (kind: string) => docs.find((d) => d.kind === kind);
  const deployment = byKind('Deployment');
  const container = deployment.spec.template.spec.containers[0];
  const config = ConfigSchema.parse(YAML.parse(byKind('ConfigMap').data['cordon.yaml']));

  it('runs at least 2 replicas with containment on, and a rollout never goes below them', () => {
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
    expect(deployment.spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    expect(config.contain.enabled).toBe(true);
    expect(config.contain.lockWaitMs).toBe(0);
    expect(config.contain.lockTtlMs).toBeLessThanOrEqual(5_000);
    expect(container.args).toEqual(['run', '--config', '/etc/cordon/cordon.yaml']);
  });

  it('has a PodDisruptionBudget that keeps one replica and selects the pods', () => {
    const pdb = byKind('PodDisruptionBudget');
    expect(pdb.apiVersion).toBe('policy/v1');
    expect(pdb.spec.minAvailable).toBe(1);
    expect(pdb.spec.selector.matchLabels).toEqual(deployment.spec.template.metadata.labels);
    expect(deployment.spec.selector.matchLabels).toEqual(deployment.spec.template.metadata.labels);
  });

  it('probes /healthz (liveness, startup) and /readyz (readiness) on the port the service listens on', () => {
    const port = container.ports.find((p: { name: string }) => p.name === 'http');
    expect(port.containerPort).toBe(config.http.port);
    expect(config.http.host).toBe('0.0.0.0');
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(container.startupProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
  });

  it('advertises the pod IP so a standby can forward decisions to the leader', () => {
    const env = Object.fromEntries(container.env.map((e: { name: string; value?: string; valueFrom?: unknown }) => [e.name, e.value ?? e.valueFrom]));
    expect(env.POD_IP).toEqual({ fieldRef: { fieldPath: 'status.podIP' } });
    expect(env.CORDON_ADVERTISE_URL).toBe(`http://$(POD_IP):${config.http.port}`);
    expect(deployment.spec.template.spec.serviceAccountName).toBe('cordon');
  });
});
