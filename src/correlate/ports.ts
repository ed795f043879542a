/**
 * The port catalogue: which destination ports are remote-administration or remote-execution
 * services, what ATT&CK technique an attempt on each implies, and which traffic is broadcast or
 * multicast noise that never counts as lateral movement.
 */

export const SERVICE_CLASSES = [
  'smb',
  'rpc',
  'rpc-dynamic',
  'rdp',
  'winrm',
  'ssh',
  'vnc',
  'k8s-api',
  'kubelet',
  'etcd',
  'database',
  'other',
] as const;
export type ServiceClass = (typeof SERVICE_CLASSES)[number];

/** Every class except `other` is a remote-administration or remote-execution service. */
export type LateralService = Exclude<ServiceClass, 'other'>;

const FIXED_PORTS: ReadonlyMap<number, LateralService> = new Map<number, LateralService>([
  [445, 'smb'],
  [139, 'smb'],
  [135, 'rpc'],
  [3389, 'rdp'],
  [5985, 'winrm'],
  [5986, 'winrm'],
  [22, 'ssh'],
  [5900, 'vnc'],
  [6443, 'k8s-api'],
  [10250, 'kubelet'],
  [10255, 'kubelet'],
  [2379, 'etcd'],
  [2380, 'etcd'],
  [1433, 'database'],
  [3306, 'database'],
  [5432, 'database'],
  [1521, 'database'],
  [27017, 'database'],
  [6379, 'database'],
]);

/** The RPC endpoint mapper; a call on the dynamic range right after it is an RPC interface call. */
export const RPC_ENDPOINT_MAPPER = 135;
export const DYNAMIC_RPC_LOW = 49152;
export const DYNAMIC_RPC_HIGH = 65535;

/**
 * Classify a destination port. A port in the dynamic RPC range is RPC only when the same source
 * asked the same destination's endpoint mapper (135) shortly before (`afterEndpointMapper`);
 * otherwise it is an ordinary ephemeral port.
 */
export function classifyPort(port: number, afterEndpointMapper: boolean): ServiceClass {
  const fixed = FIXED_PORTS.get(port);
  if (fixed) return fixed;
  if (afterEndpointMapper && port >= DYNAMIC_RPC_LOW && port <= DYNAMIC_RPC_HIGH) return 'rpc-dynamic';
  return 'other';
}

export function isDynamicRpcPort(port: number): boolean {
  return port >= DYNAMIC_RPC_LOW && port <= DYNAMIC_RPC_HIGH;
}

export function isLateral(service: ServiceClass): service is LateralService {
  return service !== 'other';
}

/**
 * MITRE ATT&CK techniques implied by an attempt on a service. `T1021` without a sub-technique
 * where the port alone cannot tell which remote service was used (dynamic RPC: service control,
 * WMI or DCOM; database admin ports).
 */
export const SERVICE_TECHNIQUES: Readonly<Record<ServiceClass, readonly string[]>> = {
  smb: ['T1021.002', 'T1570'], // SMB/Windows admin shares; lateral tool transfer over SMB
  rpc: ['T1021.003'], // DCOM via the RPC endpoint mapper
  'rpc-dynamic': ['T1021'], // an RPC interface call (svcctl, WMI, DCOM): remote services
  rdp: ['T1021.001'],
  winrm: ['T1021.006'],
  ssh: ['T1021.004'],
  vnc: ['T1021.005'],
  'k8s-api': ['T1613'], // container and resource discovery through the API server
  kubelet: ['T1609'], // container administration command through the kubelet
  etcd: ['T1552.007'], // unsecured credentials: container API (etcd holds the secrets)
  database: ['T1021'],
  other: [],
};

export const TECHNIQUE_DISCOVERY = 'T1046'; // network service discovery (fan-out)
export const TECHNIQUE_EXPLOIT_REMOTE = 'T1210'; // exploitation of remote services (tier-0 target)

/** Human names for summaries and evidence. */
export const SERVICE_LABELS: Readonly<Record<ServiceClass, string>> = {
  smb: 'SMB',
  rpc: 'RPC/DCOM',
  'rpc-dynamic': 'dynamic RPC',
  rdp: 'RDP',
  winrm: 'WinRM',
  ssh: 'SSH',
  vnc: 'VNC',
  'k8s-api': 'Kubernetes API',
  kubelet: 'kubelet',
  etcd: 'etcd',
  database: 'database admin',
  other: 'ordinary',
};

/** NetBIOS name/datagram, LLMNR, mDNS, SSDP: chatty discovery protocols, never an attack signal. */
export const NOISE_PORTS: ReadonlySet<number> = new Set([137, 138, 5355, 5353, 1900]);

/**
 * Broadcast and multicast destinations: 255.255.255.255, the .255 broadcast of a /24,
 * 224.0.0.0/4 (IPv4 multicast), ff00::/8 (IPv6 multicast).
 */
export function isBroadcastOrMulticast(ip: string | undefined): boolean {
  if (ip === undefined) return false;
  let first = 0; // the first octet, read without allocating (this runs on every flow)
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 58 /* : */) return /^ff[0-9a-f]{2}:/i.test(ip);
    if (c === 46 /* . */) break;
    first = first * 10 + (c - 48);
  }
  if (first >= 224 && first <= 239) return true;
  return ip.endsWith('.255');
}

export function isLoopback(ip: string | undefined): boolean {
  return ip !== undefined && (ip.startsWith('127.') || ip === '::1');
}

/** IPv4 169.254.0.0/16 and IPv6 fe80::/10: addresses a host has besides the one it is known by. */
export function isLinkLocal(ip: string): boolean {
  return ip.startsWith('169.254.') || /^fe[89ab][0-9a-f]:/i.test(ip);
}
