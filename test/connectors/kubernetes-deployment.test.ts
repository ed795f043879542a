import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { ConfigSchema } from '../../src/config';
import { DEFAULT_PROTECTED } from '../../src/playbook/model';
import { parsePlaybook } from '../../src/playbook/load';

/** connectors/kubernetes/deployment.yaml: replicas, rollout, PDB, probes and config agree with the service. */
describe('connectors/kubernetes/deployment.yaml', () => {
  const docs = YAML.parseAllDocuments(readFileSync('connectors/kubernetes/deployment.yaml', 'utf8')).map((d) => d.toJS());
  const byKind = (kind: string, name?: string) => docs.find((d) => d.kind === kind && (name === undefined || d.metadata.name === name));
  const deployment = byKind('Deployment');
  const container = deployment.spec.template.spec.containers[0];
  const config = ConfigSchema.parse(YAML.parse(byKind('ConfigMap', 'cordon').data['cordon.yaml']));

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
    expect(deployment.spec.template.metadata.labels).toMatchObject(pdb.spec.selector.matchLabels);
    expect(deployment.spec.template.metadata.labels).toMatchObject(deployment.spec.selector.matchLabels);
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

  it('has a Service that selects the pods and sends to their http port', () => {
    const service = byKind('Service');
    expect(service.metadata.namespace).toBe(deployment.metadata.namespace);
    expect(deployment.spec.template.metadata.labels).toMatchObject(service.spec.selector);
    expect(service.spec.ports).toEqual([{ name: 'http', port: 80, targetPort: 'http' }]);
  });

  it('runs non-root on a read-only root filesystem without capabilities, /tmp writable, its pods protected from itself', () => {
    const pod = deployment.spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } });
    expect(container.securityContext).toEqual({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    const tmp = container.volumeMounts.find((m: { mountPath: string }) => m.mountPath === '/tmp');
    expect(pod.volumes.find((v: { name: string }) => v.name === tmp.name)).toEqual({ name: tmp.name, emptyDir: {} });
    const labels = DEFAULT_PROTECTED.flatMap((s) => Object.entries(s.labels ?? {}));
    expect(labels.length).toBeGreaterThan(0);
    for (const [key, value] of labels) expect(deployment.spec.template.metadata.labels[key]).toBe(value);
  });

  it('defines every ConfigMap it mounts and runs as the ServiceAccount rbac.yaml creates, in one namespace', () => {
    const pod = deployment.spec.template.spec;
    const maps = docs.filter((d) => d.kind === 'ConfigMap');
    for (const v of pod.volumes.filter((v: { configMap?: unknown }) => v.configMap)) {
      expect(maps.map((m) => m.metadata.name)).toContain(v.configMap.name);
    }
    for (const d of docs) expect(d.metadata.namespace).toBe('cordon');
    const rbac = YAML.parseAllDocuments(readFileSync('connectors/kubernetes/rbac.yaml', 'utf8')).map((d) => d.toJS());
    const account = rbac.find((d) => d.kind === 'ServiceAccount');
    expect(account.metadata).toMatchObject({ name: pod.serviceAccountName, namespace: 'cordon' });
  });

  it('ships a playbook that parses and quarantines only through an enforcer the config configures', () => {
    const mount = container.volumeMounts.find((m: { name: string }) => m.name === 'playbooks');
    expect(mount.mountPath).toBe(config.contain.playbooks);
    const files = Object.entries(byKind('ConfigMap', 'cordon-playbooks').data as Record<string, string>);
    expect(files.length).toBeGreaterThan(0);
    for (const [file, text] of files) {
      expect(file).toMatch(/\.ya?ml$/);
      const parsed = parsePlaybook(text, file);
      if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
      const enforcers = parsed.playbook.spec.steps.flatMap((s) => (s.type === 'quarantine' ? [s.enforcer] : []));
      expect(enforcers.length).toBeGreaterThan(0);
      for (const e of enforcers) expect(Object.keys(config.contain.enforcers)).toContain(e);
    }
  });
});

