import { z } from 'zod';

/**
 * What a simulated scenario looks like: the enterprise, its background, the attacks injected into
 * it and the formats its telemetry is written in. Every field has a default; a scenario is a pure
 * function of this config (the seed included).
 */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration: milliseconds, or a string such as `90s`, `15m`, `6h`, `2d`. */
export const DurationMs = z
  .union([
    z.number().int().nonnegative(),
    z.string().regex(/^\d+(\.\d+)?(ms|s|m|h|d)$/, 'expected a duration such as 90s, 15m, 6h or 2d'),
  ])
  .transform((v) => (typeof v === 'number' ? v : Math.round(parseFloat(v) * UNIT_MS[v.replace(/^[\d.]+/, '')]!)));

/** An instant: epoch milliseconds or an ISO-8601 date-time with a zone. */
export const InstantMs = z
  .union([z.number().int().min(946684800000).max(4102444800000), z.iso.datetime({ offset: true })])
  .transform((v) => (typeof v === 'number' ? v : Date.parse(v)));

export const ATTACK_KINDS = [
  'smb', //       PsExec-style: SMB admin share + service control over RPC (445, 135, dynamic RPC)
  'wmi', //       WMI / DCOM remote execution (135 + dynamic RPC)
  'winrm', //     PowerShell remoting (5985/5986)
  'rdp', //       Remote Desktop (3389)
  'ssh', //       SSH between Linux servers (22)
  'kubelet', //   a compromised pod calling the kubelet API on the nodes (10250, 10255)
  'etcd', //      a compromised pod reaching for etcd on the control plane (2379/2380)
  'pod_pivot', // a compromised pod probing services in other namespaces
  'discovery', // T1046 port / host sweep from a compromised workstation
  'dc', //        remote administration of a domain controller from a workstation
] as const;
export type AttackKind = (typeof ATTACK_KINDS)[number];

export const AttackPace = z.enum(['fast', 'slow']);
export type AttackPace = z.infer<typeof AttackPace>;

export const AttackSpec = z.object({
  kind: z.enum(ATTACK_KINDS),
  /** fast: minutes; slow: a few attempts an hour over many hours. Drawn from the seed when absent. */
  pace: AttackPace.optional(),
  /** 1 = single hop; 2-3 = A→B then B→C (propagation). Only kinds that can propagate honour it. */
  hops: z.number().int().min(1).max(3).default(1),
  /** Emit corroborating anomalies (credential_use, new_edge, rare_port) on the attacker. Drawn when absent. */
  anomalies: z.boolean().optional(),
  /** Offset of the first attempt from the scenario start. Drawn (after the warm-up) when absent. */
  at: DurationMs.optional(),
  /**
   * probing: the attacker's tool tries its whole sequence and meets the policy. credentialed: it
   * holds valid credentials and touches only what the policy lets its host reach, so every flow
   * it makes is permitted (Windows kinds, ssh and dc; the other kinds stay probing).
   */
  access: z.enum(['probing', 'credentialed']).default('probing'),
});
export type AttackSpec = z.input<typeof AttackSpec>;
export type ResolvedAttackSpec = z.output<typeof AttackSpec>;

export const Topology = z.object({
  workstations: z.number().int().min(2).max(200_000).default(24),
  /** Member servers; `formats.linuxServerShare` of them are Linux boxes behind a Zeek sensor. */
  servers: z.number().int().min(0).max(50_000).default(8),
  domainControllers: z.number().int().min(1).max(64).default(2),
  /** Privileged-access workstations / bastions that legitimately administer servers. */
  jumpHosts: z.number().int().min(0).max(64).default(1),
  /** Authorised vulnerability scanners (allowlisted). */
  scanners: z.number().int().min(0).max(64).default(1),
  /** Monitoring pollers (allowlisted). */
  monitors: z.number().int().min(0).max(64).default(1),
  /** Application namespaces (kube-system and monitoring come on top). */
  namespaces: z.number().int().min(0).max(2_000).default(3),
  /** Application pods, spread over the namespaces. */
  pods: z.number().int().min(0).max(200_000).default(14),
  /** Kubernetes nodes per cluster; derived from the pod count when absent. */
  nodesPerCluster: z.number().int().min(1).max(5_000).optional(),
  domain: z.string().regex(/^[a-z0-9-]+(\.[a-z0-9-]+)+$/).default('corp.example'),
});
export type Topology = z.output<typeof Topology>;

export const Formats = z.object({
  wfp: z.boolean().default(true),
  hubble: z.boolean().default(true),
  calico: z.boolean().default(true),
  zeek: z.boolean().default(true),
  /** Canonical Cordon JSON: anomalies. */
  cordon: z.boolean().default(true),
  /** Share of member servers that are Linux, seen by a Zeek sensor on their segment. */
  linuxServerShare: z.number().min(0).max(1).default(0.4),
  /** Share of application namespaces that live in the Calico cluster (the rest in the Cilium one). */
  calicoNamespaceShare: z.number().min(0).max(1).default(0.34),
  /** Emit permitted flows (WFP 5156, Hubble FORWARDED, Calico allow, Zeek SF) as background. */
  allowedFlows: z.boolean().default(true),
  /** Calico flow-log flush interval (Felix `flowLogsFlushInterval`): one aggregate record per interval. */
  calicoInterval: DurationMs.prefault('5m'),
  /** Windows hosts stamp EventTime in local time; this is their offset from UTC. */
  windowsUtcOffsetMinutes: z.number().int().min(-720).max(840).default(0),
});
export type Formats = z.output<typeof Formats>;

export const Background = z.object({
  /** Ordinary background connections per second over the whole enterprise (one connection is 1-3 records). */
  rate: z.number().min(0).max(1_000_000).default(0.2),
  /** Applications retrying one denied connection for hours (policy gaps); scaled with size when absent. */
  policyGaps: z.number().int().min(0).max(10_000).optional(),
  /** Mean interval between two retries of one policy-gap pair. */
  policyGapRetry: DurationMs.prefault('4m'),
  /** Broadcast / multicast announcements per Windows host per hour (NetBIOS, LLMNR, mDNS, SSDP). */
  broadcastPerHostHour: z.number().min(0).max(3_600).default(0.5),
  /** Receivers that log one broadcast (each logs its own WFP block). */
  broadcastReceivers: z.number().int().min(1).max(50).default(3),
  /** Single random denied connections (noise) per hour over the whole enterprise. */
  noisePerHour: z.number().min(0).max(1_000_000).default(2),
  /** Benign anomalies (detector false positives, no denials around them) per hour. */
  benignAnomaliesPerHour: z.number().min(0).max(1_000_000).default(0.5),
  /** Interval between two sweeps of each authorised vulnerability scanner. */
  scannerSweepEvery: DurationMs.prefault('8h'),
  /** Hosts and ports one scanner sweep covers (capped by the inventory). */
  scannerTargets: z.number().int().min(1).max(1_000_000).default(40),
  scannerPorts: z.number().int().min(1).max(64).default(12),
  /** Probes per second of a scanner sweep. */
  scannerProbeRate: z.number().min(0.01).max(100_000).default(4),
  /** Polling cycle of each monitoring host over its monitored estate. */
  monitorEvery: DurationMs.prefault('15m'),
  monitorTargets: z.number().int().min(1).max(1_000_000).default(20),
});
export type Background = z.output<typeof Background>;

export const ScenarioConfig = z
  .object({
    name: z.string().min(1).max(64).default('custom'),
    seed: z.number().int().min(0).max(0xffffffff).default(1),
    start: InstantMs.prefault('2024-05-06T00:00:00Z'),
    duration: DurationMs.prefault('24h'),
    /** Quiet period before the first attack, so baselines have something to learn. */
    warmup: DurationMs.prefault('2h'),
    /** Stop after this many records (the scenario's ground truth still covers the whole duration). */
    maxRecords: z.number().int().positive().optional(),
    topology: Topology.prefault({}),
    formats: Formats.prefault({}),
    background: Background.prefault({}),
    attacks: z.array(AttackSpec).default([]),
    /** Attacks to add by kind; pace, hops and anomalies are drawn from the seed. */
    attackCounts: z.partialRecord(z.enum(ATTACK_KINDS), z.number().int().min(0).max(10_000)).default({}),
  })
  .refine((c) => c.warmup < c.duration, { message: 'warmup must be shorter than duration', path: ['warmup'] })
  .refine((c) => c.formats.wfp || c.formats.zeek || c.formats.hubble || c.formats.calico, {
    message: 'at least one flow format must be enabled',
    path: ['formats'],
  });
export type ScenarioConfigInput = z.input<typeof ScenarioConfig>;
export type ScenarioConfig = z.output<typeof ScenarioConfig>;

export function parseScenarioConfig(input: unknown): ScenarioConfig {
  return ScenarioConfig.parse(input);
}
