import type { FlowActivity } from '../activity';
import { Rng } from '../random';
import type { Entity } from '../topology';

/**
 * Cilium Hubble flows as `hubble observe -o json` prints them (the `{"flow":{...},"node_name",
 * "time"}` envelope of Hubble CLI 0.11+), with the fields of a real captured policy drop:
 * `verdict`, `drop_reason` / `drop_reason_desc` (133 POLICY_DENIED), `IP`, `l4`, `source` and
 * `destination` endpoints (ID, identity, namespace, `k8s:` labels, pod_name, workloads),
 * `Type`, `node_name`, `event_type`, `traffic_direction`, `Summary`.
 *
 * A drop is observed where the policy is enforced: ingress policy at the destination's node
 * (INGRESS), the host firewall towards nodes at the source's node (EGRESS). A SYN that is dropped
 * is retransmitted, and each retransmission is another DROPPED flow.
 */

const RESERVED_HOST = JSON.stringify({ identity: 1, labels: ['reserved:host'] });
const RESERVED_REMOTE_NODE = JSON.stringify({ identity: 6, labels: ['reserved:remote-node'] });
const RESERVED_APISERVER = JSON.stringify({ identity: 7, labels: ['reserved:kube-apiserver', 'reserved:remote-node'] });
const RESERVED_WORLD = JSON.stringify({ identity: 2, labels: ['reserved:world'] });

export class HubbleWriter {
  private readonly rng: Rng;

  constructor(seed: number) {
    this.rng = Rng.derive(seed, 'format:hubble');
  }

  record(f: FlowActivity, t: number, srcPort: number): string {
    const rng = this.rng;
    const stamp = new Date(t).toISOString().slice(0, 23) + String(rng.int(0, 999_999)).padStart(6, '0') + 'Z';
    const toNode = f.dst.role === 'node';
    const ingress = f.allowed ? !toNode && f.dst.role === 'pod' : !toNode;
    const observer = ingress ? (f.dst.node ?? f.src.node) : (f.src.node ?? f.dst.node);
    const nodeName = JSON.stringify(`${observer?.cluster?.name ?? 'k8s'}/${observer?.name ?? 'node'}`);
    const l4 =
      f.proto === 'udp'
        ? `{"UDP":{"source_port":${srcPort},"destination_port":${f.dstPort}}}`
        : `{"TCP":{"source_port":${srcPort},"destination_port":${f.dstPort},"flags":{"SYN":true}}}`;
    const summary = f.proto === 'udp' ? 'UDP' : 'TCP Flags: SYN';
    const head =
      `{"flow":{"time":"${stamp}","uuid":"${rng.uuid()}","verdict":"${f.allowed ? 'FORWARDED' : 'DROPPED'}",` +
      (f.allowed ? '' : '"drop_reason":133,') +
      `"ethernet":{"source":"${f.src.mac}","destination":"${f.dst.mac}"},` +
      `"IP":{"source":"${f.src.ip}","destination":"${f.dst.ip}","ipVersion":"IPv4"},"l4":${l4},` +
      `"source":${this.endpoint(f.src, observer)},"destination":${this.endpoint(f.dst, observer)},` +
      `"Type":"L3_L4","node_name":${nodeName},`;
    let tail: string;
    if (f.allowed) {
      const svc = f.dst.app && rng.chance(0.7) ? `"destination_service":{"name":"${f.dst.app.name}","namespace":"${f.dst.app.namespace}"},` : '';
      tail =
        `"event_type":{"type":4,"sub_type":${ingress ? 3 : 4}},"traffic_direction":"${ingress ? 'INGRESS' : 'EGRESS'}",` +
        `"trace_observation_point":"${ingress ? 'TO_ENDPOINT' : 'TO_STACK'}","trace_reason":"NEW","is_reply":false,${svc}"Summary":"${summary}"}`;
    } else {
      tail =
        `"event_type":{"type":1,"sub_type":133},"traffic_direction":"${ingress ? 'INGRESS' : 'EGRESS'}",` +
        `"drop_reason_desc":"POLICY_DENIED","Summary":"${summary}"}`;
    }
    return `${head}${tail},"node_name":${nodeName},"time":"${stamp}"}`;
  }

  private readonly endpoints = new Map<number, string>();

  /** An endpoint as JSON (pods cached: their identity does not change during a scenario). */
  private endpoint(e: Entity, observer: Entity | undefined): string {
    if (e.role === 'pod' && e.app) {
      let json = this.endpoints.get(e.idx);
      if (json === undefined) {
        json = JSON.stringify(podEndpoint(e));
        this.endpoints.set(e.idx, json);
      }
      return json;
    }
    if (e.role === 'node') {
      if (observer && observer === e) return RESERVED_HOST;
      return e.controlPlane ? RESERVED_APISERVER : RESERVED_REMOTE_NODE;
    }
    return RESERVED_WORLD;
  }
}

function podEndpoint(e: Entity): Record<string, unknown> {
  const app = e.app!;
  const ns = app.namespace;
  const labels = [
    ...Object.entries(app.labels).map(([k, v]) => `k8s:${k}=${v}`),
    `k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=${ns}`,
    `k8s:io.cilium.k8s.policy.cluster=${app.cluster.name}`,
    `k8s:io.cilium.k8s.policy.serviceaccount=${app.serviceAccount}`,
    `k8s:io.kubernetes.pod.namespace=${ns}`,
  ].sort();
  return {
    ID: e.endpointId,
    identity: app.identity,
    namespace: ns,
    labels,
    pod_name: e.name,
    workloads: [{ name: app.name, kind: app.kind }],
  };
}
