import type { FlowActivity, Tag } from '../activity';
import type { Entity } from '../topology';

/**
 * Calico flow logs as Felix writes them to `/var/log/calico/flowlogs/flows.log` (one JSON object
 * a line, the field set of a real deny record): aggregated over the flush interval (5 minutes by
 * default), one record per reporter. Denied flows use aggregation level 1 (source ports folded,
 * names and addresses kept: `flowLogsFileAggregationKindForDenied: 1`); allowed flows level 2
 * (pods folded by their ReplicaSet prefix, addresses null: `flowLogsFileAggregationKindForAllowed: 2`).
 */

export interface CalicoRecord {
  /** Epoch ms at which Felix writes the record (the end of its interval). */
  t: number;
  text: string;
  key: string;
  denied: boolean;
  tag: Tag;
  attackId?: string;
}

interface Aggregate {
  reporter: 'src' | 'dst';
  flow: FlowActivity;
  flows: number;
  packetsOut: number;
  packetsIn: number;
  bytesOut: number;
  bytesIn: number;
  tag: Tag;
  attackId?: string;
}

export class CalicoAggregator {
  private readonly buckets = new Map<number, Map<string, Aggregate>>();

  constructor(private readonly intervalMs = 300_000) {}

  add(f: FlowActivity, t: number): void {
    const bucket = Math.floor(t / this.intervalMs);
    let map = this.buckets.get(bucket);
    if (!map) {
      map = new Map();
      this.buckets.set(bucket, map);
    }
    // an ingress denial is reported by the destination's node; egress (to nodes) by the source's.
    // A permitted pod-to-pod flow is reported at both ends.
    const reporters: Array<'src' | 'dst'> = f.allowed
      ? f.dst.role === 'pod' && f.src.role === 'pod'
        ? ['src', 'dst']
        : ['src']
      : f.dst.role === 'pod'
        ? ['dst']
        : ['src'];
    for (const reporter of reporters) {
      const key = `${reporter}|${f.allowed ? 'a' : 'd'}|${f.allowed ? aggrName(f.src) : f.src.ip}|${f.allowed ? aggrName(f.dst) : f.dst.ip}|${f.dstPort}|${f.proto}`;
      let agg = map.get(key);
      if (!agg) {
        agg = { reporter, flow: f, flows: 0, packetsOut: 0, packetsIn: 0, bytesOut: 0, bytesIn: 0, tag: f.tag, attackId: f.attackId };
        map.set(key, agg);
      }
      agg.flows++;
      if (f.allowed) {
        const out = f.bytesOut ?? 600;
        const inn = f.bytesIn ?? 2400;
        agg.bytesOut += out;
        agg.bytesIn += inn;
        agg.packetsOut += Math.ceil(out / 1200) + 3;
        agg.packetsIn += Math.ceil(inn / 1400) + 2;
      } else {
        agg.packetsOut += Math.max(1, f.tries);
        agg.bytesOut += 60 * Math.max(1, f.tries);
      }
      if (f.tag === 'attack' && agg.tag !== 'attack') {
        agg.tag = 'attack';
        agg.attackId = f.attackId;
      }
    }
  }

  /** Records of every interval that has closed by `watermark` (ms), in write order. */
  flush(watermark: number): CalicoRecord[] {
    const out: CalicoRecord[] = [];
    for (const [bucket, map] of this.buckets) {
      const end = (bucket + 1) * this.intervalMs;
      if (end > watermark) break;
      this.buckets.delete(bucket);
      for (const agg of map.values()) out.push(this.render(agg, bucket * this.intervalMs, end));
    }
    return out;
  }

  private render(a: Aggregate, start: number, end: number): CalicoRecord {
    const f = a.flow;
    const denied = !f.allowed;
    const src = f.src;
    const dst = f.dst;
    // the reporter sees its own side as "out" for src, "in" for dst
    const [pin, pout, bin, bout] = a.reporter === 'src' ? [a.packetsIn, a.packetsOut, a.bytesIn, a.bytesOut] : [a.packetsOut, a.packetsIn, a.bytesOut, a.bytesIn];
    const ep = (e: Entity, side: 'source' | 'dest') => {
      const pod = e.role === 'pod' && e.app;
      return {
        [`${side}_ip`]: denied ? e.ip : null,
        [`${side}_name`]: pod && denied ? e.name : '-',
        [`${side}_name_aggr`]: pod ? aggrName(e) : 'pvt',
        [`${side}_namespace`]: pod ? e.namespace : '-',
      };
    };
    const labels = (e: Entity) => (e.role === 'pod' ? { labels: Object.entries(e.labels).map(([k, v]) => `${k}=${v}`) } : null);
    const policy = denied
      ? dst.role === 'pod'
        ? `0|default|${dst.namespace}/knp.default.default-deny-ingress|deny|-1`
        : `0|platform|platform.deny-workload-to-host|deny|0`
      : dst.role === 'pod'
        ? `0|default|${dst.namespace}/knp.default.allow-${dst.app?.name}|allow|0`
        : `0|__PROFILE__|__PROFILE__.kns.${src.namespace}|allow|0`;
    const reporterNode = (a.reporter === 'src' ? src.node : dst.node) ?? src.node;
    const svc = !denied && dst.role === 'pod' && dst.app;
    const rec = {
      start_time: start / 1000,
      end_time: end / 1000,
      ...ep(src, 'source'),
      nat_outgoing_ports: null,
      source_port: null,
      source_type: src.role === 'pod' ? 'wep' : 'net',
      source_labels: labels(src),
      ...ep(dst, 'dest'),
      dest_port: f.dstPort,
      dest_type: dst.role === 'pod' ? 'wep' : 'net',
      dest_labels: labels(dst),
      dest_service_namespace: svc ? dst.namespace : '-',
      dest_service_name: svc ? dst.app!.name : '-',
      dest_service_port: svc ? String(dst.app!.port) : '-',
      dest_service_port_num: svc ? dst.app!.port : null,
      proto: f.proto,
      action: denied ? 'deny' : 'allow',
      reporter: a.reporter,
      policies: { all_policies: [policy] },
      bytes_in: bin,
      bytes_out: bout,
      num_flows: a.flows,
      num_flows_started: a.flows,
      num_flows_completed: denied ? a.flows : Math.max(0, a.flows - 1),
      packets_in: pin,
      packets_out: pout,
      http_requests_allowed_in: 0,
      http_requests_denied_in: 0,
      process_name: '-',
      num_process_names: 0,
      process_id: '-',
      num_process_ids: 0,
      process_args: ['-'],
      num_process_args: 0,
      original_source_ips: null,
      num_original_source_ips: 0,
      tcp_mean_send_congestion_window: 0,
      tcp_min_send_congestion_window: 0,
      tcp_mean_smooth_rtt: 0,
      tcp_max_smooth_rtt: 0,
      tcp_mean_min_rtt: 0,
      tcp_max_min_rtt: 0,
      tcp_mean_mss: 0,
      tcp_min_mss: 0,
      tcp_total_retransmissions: 0,
      tcp_lost_packets: 0,
      tcp_unrecovered_to: 0,
      host: reporterNode?.name ?? '-',
    };
    return {
      t: end,
      text: JSON.stringify(rec),
      key: denied ? src.key : `pod/${src.namespace}/${aggrName(src)}`,
      denied,
      tag: a.tag,
      attackId: a.attackId,
    };
  }
}

/** The ReplicaSet prefix Calico aggregates pod names to: `frontend-755cdc7957-*`. */
export function aggrName(e: Entity): string {
  if (e.role !== 'pod' || !e.app) return 'pvt';
  const app = e.app;
  return app.kind === 'Deployment' ? `${app.name}-${app.templateHash}-*` : `${app.name}-*`;
}
