/**
 * Denied-flow records for the benchmarks, in Cilium Hubble's JSON (`hubble observe -o json`):
 * pod to pod across namespaces, with labels and workload identity, as a Hubble exporter writes them.
 */
export function hubbleDeniedFlow(i: number, startMs: number): string {
  const src = i % 5000;
  const dst = (i * 7919) % 5000;
  const time = new Date(startMs + Math.floor(i / 10)).toISOString();
  const port = [445, 22, 3389, 5432, 8080, 10250][i % 6]!;
  return JSON.stringify({
    flow: {
      time,
      uuid: `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
      verdict: 'DROPPED',
      drop_reason: 133,
      ethernet: { source: '2e:0b:4d:3a:11:0c', destination: '6a:2c:31:9e:0d:41' },
      IP: { source: ip(src), destination: ip(dst), ipVersion: 'IPv4' },
      l4: { TCP: { source_port: 30000 + (i % 30000), destination_port: port, flags: { SYN: true } } },
      source: {
        ID: 1000 + src,
        identity: 20000 + (src % 300),
        namespace: `team-${src % 40}`,
        labels: [`k8s:app=svc-${src % 300}`, `k8s:io.kubernetes.pod.namespace=team-${src % 40}`],
        pod_name: `svc-${src % 300}-7f9c8d-${src.toString(36)}`,
        workloads: [{ name: `svc-${src % 300}`, kind: 'Deployment' }],
      },
      destination: {
        ID: 1000 + dst,
        identity: 20000 + (dst % 300),
        namespace: `team-${dst % 40}`,
        labels: [`k8s:app=svc-${dst % 300}`, `k8s:io.kubernetes.pod.namespace=team-${dst % 40}`],
        pod_name: `svc-${dst % 300}-7f9c8d-${dst.toString(36)}`,
        workloads: [{ name: `svc-${dst % 300}`, kind: 'Deployment' }],
      },
      Type: 'L3_L4',
      node_name: `cluster-a/node-${i % 12}`,
      event_type: { type: 1, sub_type: 133 },
      traffic_direction: 'EGRESS',
      drop_reason_desc: 'POLICY_DENIED',
      Summary: `TCP Flags: SYN`,
    },
    node_name: `cluster-a/node-${i % 12}`,
    time,
  });
}

function ip(n: number): string {
  return `10.${100 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`;
}
