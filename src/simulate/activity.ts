import type { AnomalyKind } from '../events';
import type { Entity } from './topology';

/**
 * What happens in the simulated enterprise, before any product writes it down: one connection
 * attempt, or one detector firing. The format writers turn these into vendor records.
 */

/** Why an activity exists: ground truth for every record. */
export type Tag =
  | 'background' //  ordinary permitted traffic
  | 'admin' //       legitimate administration from a jump host
  | 'policy_gap' //  an application retrying one denied connection for hours
  | 'broadcast' //   NetBIOS / LLMNR / mDNS / SSDP announcements blocked by receivers
  | 'scanner' //     authorised vulnerability scanner sweep (allowlisted)
  | 'monitor' //     monitoring poller / Prometheus scrape (allowlisted)
  | 'noise' //       a single stray denied connection
  | 'benign_anomaly' // a detector false positive
  | 'attack';

export type Proto = 'tcp' | 'udp' | 'icmp';

export interface FlowActivity {
  type: 'flow';
  /** Epoch ms of the first packet. */
  t: number;
  src: Entity;
  dst: Entity;
  srcPort: number;
  dstPort: number;
  proto: Proto;
  allowed: boolean;
  /**
   * Packets a denied attempt sends before the client gives up (SYN and its retransmissions):
   * host firewalls and Hubble record one drop each.
   */
  tries: number;
  /** Windows image of the initiating process (WFP outbound `Application`). */
  image?: string;
  /** For a broadcast: the hosts on the segment that log the block. */
  receivers?: Entity[];
  /** Bytes for completed connections (Zeek, Calico). */
  bytesOut?: number;
  bytesIn?: number;
  /** Application protocol Zeek would name (`ssl`, `smb`, `dns`, ...). */
  service?: string;
  tag: Tag;
  attackId?: string;
}

export interface AnomalyActivity {
  type: 'anomaly';
  t: number;
  entity: Entity;
  kind: AnomalyKind;
  score: number;
  detector: string;
  detail?: Record<string, unknown>;
  tag: Tag;
  attackId?: string;
}

export type Activity = FlowActivity | AnomalyActivity;

/** The cluster CNI that records a flow: pod traffic, or a pod reaching for a node. */
export function flowCluster(f: FlowActivity): 'hubble' | 'calico' | undefined {
  const c = f.src.role === 'pod' ? f.src.cluster : f.dst.role === 'pod' ? f.dst.cluster : undefined;
  return c?.cni;
}
