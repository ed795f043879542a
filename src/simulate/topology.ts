import type { ScenarioConfig } from './config';
import { Rng } from './random';

/**
 * The simulated enterprise: workstations, member servers (Windows and Linux), domain controllers,
 * jump hosts, authorised scanners and monitoring pollers, and two Kubernetes clusters (one on
 * Cilium, seen by Hubble; one on Calico, seen by its flow logs), with an address plan, names as the
 * products print them, and the services each entity listens on.
 */

export type Role =
  | 'workstation'
  | 'server'
  | 'dc'
  | 'jump'
  | 'scanner'
  | 'monitor'
  | 'pod'
  | 'node'
  | 'external'
  | 'broadcast';

/** Which product records a connection that terminates at (or, for pods, leaves) this entity. */
export type Observer = 'wfp' | 'zeek' | 'hubble' | 'calico' | 'none';

export type ServerKind = 'file' | 'web' | 'sql' | 'app' | 'linux-web' | 'linux-db' | 'linux-app';

export interface Service {
  port: number;
  proto: 'tcp' | 'udp';
  /** Windows image that owns the listening socket (WFP `Application`), or the daemon's name. */
  process: string;
}

export interface Subnet {
  cidr: string;
  broadcast: string;
  /** Hosts on this segment (the receivers of its broadcasts). */
  members: Entity[];
}

export interface Cluster {
  name: string;
  cni: 'hubble' | 'calico';
  nodes: Entity[];
  controlPlane: Entity[];
  namespaces: string[];
  apps: App[];
  dns?: App;
  prometheus?: App;
}

export interface App {
  name: string;
  namespace: string;
  cluster: Cluster;
  port: number;
  proto: 'tcp' | 'udp';
  /** Cilium security identity of the app's label set. */
  identity: number;
  /** Kubernetes labels as the API shows them. */
  labels: Record<string, string>;
  templateHash: string;
  serviceAccount: string;
  pods: Entity[];
  /** Apps this one is allowed to call (its egress policy / the callee's ingress policy). */
  calls: App[];
  /** Whether this app's namespace lets Prometheus scrape it (metrics port 9090). */
  scrapeAllowed: boolean;
  kind: 'Deployment' | 'StatefulSet' | 'DaemonSet';
}

export interface Entity {
  idx: number;
  /** Kafka key of records whose source is this entity (stable, unique). */
  key: string;
  role: Role;
  os: 'windows' | 'linux';
  observer: Observer;
  /** FQDN for hosts (`WS0012.corp.example`), pod name for pods, node name for nodes. */
  name: string;
  /** NetBIOS / short host name. */
  short: string;
  ip: string;
  mac: string;
  subnet?: Subnet;
  labels: Record<string, string>;
  services: Service[];
  serverKind?: ServerKind;
  /**
   * Admin ports a server leaves (mis)configured open to the workstation and server subnets
   * (`dyn` stands for the dynamic RPC range). Absent: admin only from jump hosts.
   */
  exposed?: ReadonlyArray<number | 'dyn'>;
  /** Linux host firewall answers with a reset (Zeek REJ) rather than dropping (Zeek S0). */
  rejects?: boolean;
  allowlisted?: boolean;
  cluster?: Cluster;
  namespace?: string;
  app?: App;
  /** The node a pod runs on. */
  node?: Entity;
  /** Cilium endpoint id of a pod. */
  endpointId?: number;
  controlPlane?: boolean;
}

export interface Enterprise {
  domain: string;
  entities: Entity[];
  workstations: Entity[];
  windowsServers: Entity[];
  linuxServers: Entity[];
  /** Every member server, Windows and Linux. */
  servers: Entity[];
  dcs: Entity[];
  jumps: Entity[];
  scanners: Entity[];
  monitors: Entity[];
  pods: Entity[];
  nodes: Entity[];
  clusters: Cluster[];
  subnets: Subnet[];
  byIp: Map<string, Entity>;
  /** The Windows event collector the NXLog records come through. */
  wec: { host: string; port: number };
  zeekSensor: string;
}

const SYS32 = '\\device\\harddiskvolume2\\windows\\system32\\';
export const WIN = {
  system: 'System',
  svchost: SYS32 + 'svchost.exe',
  services: SYS32 + 'services.exe',
  lsass: SYS32 + 'lsass.exe',
  dns: SYS32 + 'dns.exe',
  wmiprvse: SYS32 + 'wbem\\wmiprvse.exe',
  sqlservr: '\\device\\harddiskvolume2\\program files\\microsoft sql server\\mssql15.mssqlserver\\mssql\\binn\\sqlservr.exe',
  w3wp: SYS32 + 'inetsrv\\w3wp.exe',
  chrome: '\\device\\harddiskvolume2\\program files\\google\\chrome\\application\\chrome.exe',
  msedge: '\\device\\harddiskvolume2\\program files (x86)\\microsoft\\edge\\application\\msedge.exe',
  outlook: '\\device\\harddiskvolume2\\program files\\microsoft office\\root\\office16\\outlook.exe',
  teams: '\\device\\harddiskvolume2\\users\\public\\appdata\\local\\microsoft\\teams\\current\\teams.exe',
  mstsc: SYS32 + 'mstsc.exe',
  powershell: SYS32 + 'windowspowershell\\v1.0\\powershell.exe',
  wmic: SYS32 + 'wbem\\wmic.exe',
  ssh: SYS32 + 'openssh\\ssh.exe',
  backup: '\\device\\harddiskvolume2\\program files\\veritas\\netbackup\\bin\\bpcd.exe',
  inventory: '\\device\\harddiskvolume2\\program files\\lansweeper\\agent\\lsagent.exe',
} as const;

/** Dynamic RPC range (Windows Vista and later). */
export const DYN_RPC = { lo: 49152, hi: 65535 } as const;

const K8S_HASH = 'bcdfghjklmnpqrstvwxz2456789';

const APP_CATALOG: ReadonlyArray<readonly [string, number]> = [
  ['frontend', 8080],
  ['gateway', 8080],
  ['checkout', 5050],
  ['cart', 7070],
  ['payments', 50051],
  ['ledger', 8443],
  ['orders', 8080],
  ['inventory', 9000],
  ['catalog', 3550],
  ['search', 9200],
  ['auth', 8443],
  ['users', 8080],
  ['notifications', 8080],
  ['billing', 8080],
  ['reports', 8080],
  ['shipping', 50051],
  ['recommendations', 8080],
  ['pricing', 8080],
  ['redis', 6379],
  ['postgres', 5432],
];
const DATASTORES = new Set(['redis', 'postgres']);
const NAMESPACES = [
  'shop',
  'payments',
  'identity',
  'logistics',
  'analytics',
  'platform',
  'marketing',
  'support',
  'risk',
  'data',
  'media',
  'partners',
];

export function buildEnterprise(config: ScenarioConfig): Enterprise {
  const rng = Rng.derive(config.seed, 'topology');
  const topo = config.topology;
  const fmt = config.formats;
  const domain = topo.domain;
  const entities: Entity[] = [];
  const byIp = new Map<string, Entity>();
  const subnets = new Map<string, Subnet>();

  const subnetOf = (ip: string): Subnet => {
    const prefix = ip.slice(0, ip.lastIndexOf('.'));
    let s = subnets.get(prefix);
    if (!s) {
      s = { cidr: `${prefix}.0/24`, broadcast: `${prefix}.255`, members: [] };
      subnets.set(prefix, s);
    }
    return s;
  };
  const mac = (oui: string) =>
    `${oui}:${rng.hex(2)}:${rng.hex(2)}:${rng.hex(2)}`;
  const add = (e: Omit<Entity, 'idx'>, segment = true): Entity => {
    const ent = { ...e, idx: entities.length } as Entity;
    if (byIp.has(ent.ip)) throw new Error(`address plan collision on ${ent.ip}`);
    entities.push(ent);
    byIp.set(ent.ip, ent);
    if (segment) {
      ent.subnet = subnetOf(ent.ip);
      ent.subnet.members.push(ent);
    }
    return ent;
  };
  // 200 hosts a /24 from .20: 10.<block>.<segment>.<host>
  const plan = (b: number, i: number) => `10.${b}.${1 + Math.floor(i / 200)}.${20 + (i % 200)}`;
  const windowsObserver: Observer = fmt.wfp ? 'wfp' : fmt.zeek ? 'zeek' : 'none';
  const linuxObserver: Observer = fmt.zeek ? 'zeek' : 'none';
  const hostKey = (fqdn: string) => `host/${fqdn.toLowerCase()}`;

  const winHost = (role: Role, short: string, ip: string, labels: Record<string, string>, services: Service[]) => {
    const name = `${short}.${domain}`;
    return add({
      key: hostKey(name),
      role,
      os: 'windows',
      observer: windowsObserver,
      name,
      short,
      ip,
      mac: mac('00:0d:3a'),
      labels: { role, os: 'windows', ...labels },
      services,
    });
  };
  const linuxHost = (role: Role, short: string, ip: string, labels: Record<string, string>, services: Service[], observer = linuxObserver) => {
    const name = `${short}.${domain}`;
    return add({
      key: hostKey(name),
      role,
      os: 'linux',
      observer,
      name,
      short,
      ip,
      mac: mac('52:54:00'),
      labels: { role, os: 'linux', ...labels },
      services,
    });
  };

  const smb: Service = { port: 445, proto: 'tcp', process: WIN.system };
  const rpc: Service = { port: 135, proto: 'tcp', process: WIN.svchost };
  const winrm: Service = { port: 5985, proto: 'tcp', process: WIN.system };
  const rdp: Service = { port: 3389, proto: 'tcp', process: WIN.svchost };
  const ssh: Service = { port: 22, proto: 'tcp', process: 'sshd' };
  const zabbix = (os: 'windows' | 'linux'): Service => ({
    port: 10050,
    proto: 'tcp',
    process: os === 'windows' ? '\\device\\harddiskvolume2\\program files\\zabbix agent\\zabbix_agentd.exe' : 'zabbix_agentd',
  });

  // ---- domain controllers
  const dcs: Entity[] = [];
  for (let i = 0; i < topo.domainControllers; i++) {
    dcs.push(
      winHost('dc', `DC${pad(i + 1, 2)}`, `10.20.0.${10 + i}`, { tier: '0' }, [
        { port: 53, proto: 'udp', process: WIN.dns },
        { port: 53, proto: 'tcp', process: WIN.dns },
        { port: 88, proto: 'tcp', process: WIN.lsass },
        { port: 88, proto: 'udp', process: WIN.lsass },
        { port: 123, proto: 'udp', process: WIN.svchost },
        { port: 389, proto: 'tcp', process: WIN.lsass },
        { port: 389, proto: 'udp', process: WIN.lsass },
        { port: 464, proto: 'tcp', process: WIN.lsass },
        { port: 636, proto: 'tcp', process: WIN.lsass },
        { port: 3268, proto: 'tcp', process: WIN.lsass },
        smb,
        rpc,
        winrm,
        rdp,
        zabbix('windows'),
      ]),
    );
  }

  // ---- workstations
  const workstations: Entity[] = [];
  for (let i = 0; i < topo.workstations; i++) {
    workstations.push(
      winHost('workstation', `WS${pad(i + 1, 4)}`, plan(10, i), { site: i % 3 === 0 ? 'hq' : 'branch' }, [
        smb,
        rpc,
        rdp,
        winrm,
      ]),
    );
  }

  // ---- member servers
  const nLinux = fmt.zeek ? Math.round(topo.servers * fmt.linuxServerShare) : 0;
  const nWindows = topo.servers - nLinux;
  const windowsServers: Entity[] = [];
  const winKinds: ServerKind[] = ['file', 'web', 'app', 'sql'];
  const counters: Record<string, number> = {};
  const nextName = (prefix: string) => `${prefix}${pad((counters[prefix] = (counters[prefix] ?? 0) + 1), 2)}`;
  for (let i = 0; i < nWindows; i++) {
    const kind = winKinds[i % winKinds.length]!;
    const svc: Service[] =
      kind === 'file'
        ? []
        : kind === 'web'
          ? [
              { port: 443, proto: 'tcp', process: WIN.system },
              { port: 80, proto: 'tcp', process: WIN.system },
            ]
          : kind === 'app'
            ? [{ port: 443, proto: 'tcp', process: WIN.w3wp }]
            : [{ port: 1433, proto: 'tcp', process: WIN.sqlservr }];
    const prefix = { file: 'FS', web: 'WEB', app: 'APP', sql: 'SQL' }[kind as 'file' | 'web' | 'app' | 'sql'];
    const e = winHost('server', nextName(prefix), plan(20, i), { tier: '1', service: kind }, [
      ...svc,
      smb,
      rpc,
      winrm,
      rdp,
      zabbix('windows'),
    ]);
    e.serverKind = kind;
    // legacy application servers left open to remote administration from the user subnets,
    // and a web server whose RDP was opened for a vendor
    if (kind === 'app') e.exposed = [445, 135, 'dyn', 5985];
    else if (kind === 'web' && i % 8 === 1) e.exposed = [3389];
    windowsServers.push(e);
  }
  const linuxServers: Entity[] = [];
  const linKinds: ServerKind[] = ['linux-web', 'linux-db', 'linux-app'];
  for (let i = 0; i < nLinux; i++) {
    const kind = linKinds[i % linKinds.length]!;
    const svc: Service[] =
      kind === 'linux-web'
        ? [
            { port: 443, proto: 'tcp', process: 'nginx' },
            { port: 80, proto: 'tcp', process: 'nginx' },
          ]
        : kind === 'linux-db'
          ? [{ port: 5432, proto: 'tcp', process: 'postgres' }]
          : [{ port: 8080, proto: 'tcp', process: 'java' }];
    const prefix = { 'linux-web': 'lxweb', 'linux-db': 'lxdb', 'linux-app': 'lxapp' }[kind as 'linux-web' | 'linux-db' | 'linux-app'];
    const e = linuxHost('server', nextName(prefix), plan(21, i), { tier: '1', service: kind }, [...svc, ssh, zabbix('linux')]);
    e.serverKind = kind;
    e.rejects = i % 2 === 0;
    if (kind === 'linux-app') e.exposed = [22];
    linuxServers.push(e);
  }

  // ---- privileged access: Windows PAWs and (with Linux servers) a bastion
  const jumps: Entity[] = [];
  for (let i = 0; i < topo.jumpHosts; i++) {
    jumps.push(
      i % 2 === 1 && nLinux > 0
        ? linuxHost('jump', `bastion${pad(i + 1, 2)}`, `10.30.0.${10 + i}`, { tier: '0', purpose: 'bastion' }, [ssh])
        : winHost('jump', `PAW${pad(i + 1, 2)}`, `10.30.0.${10 + i}`, { tier: '0', purpose: 'paw' }, [rdp]),
    );
  }

  // ---- authorised scanners and monitoring pollers (allowlisted, inventoried)
  const scanners: Entity[] = [];
  for (let i = 0; i < topo.scanners; i++) {
    const e = linuxHost(
      'scanner',
      `vulnscan${pad(i + 1, 2)}`,
      `10.40.0.${10 + i}`,
      { 'cordon.io/allowlist': 'vulnerability-scanner', owner: 'secops', product: 'nessus' },
      [],
      'none',
    );
    e.allowlisted = true;
    scanners.push(e);
  }
  const monitors: Entity[] = [];
  for (let i = 0; i < topo.monitors; i++) {
    const e = linuxHost(
      'monitor',
      `mon${pad(i + 1, 2)}`,
      `10.40.1.${10 + i}`,
      { 'cordon.io/allowlist': 'monitoring', owner: 'it-ops', product: 'zabbix' },
      [],
      'none',
    );
    e.allowlisted = true;
    monitors.push(e);
  }

  // ---- Kubernetes
  const clusters: Cluster[] = [];
  const pods: Entity[] = [];
  const nodes: Entity[] = [];
  const wantHubble = fmt.hubble && topo.pods > 0 && topo.namespaces > 0;
  const wantCalico = fmt.calico && topo.pods > 0 && topo.namespaces > 0;
  let calicoNs = wantCalico ? Math.round(topo.namespaces * (wantHubble ? fmt.calicoNamespaceShare : 1)) : 0;
  if (wantCalico && wantHubble && calicoNs === 0 && topo.namespaces > 1) calicoNs = 1;
  const hubbleNs = wantHubble ? topo.namespaces - calicoNs : 0;
  const specs: Array<{ name: string; cni: 'hubble' | 'calico'; ns: number; nodeNet: number; podNet: number }> = [];
  if (hubbleNs > 0) specs.push({ name: 'prod', cni: 'hubble', ns: hubbleNs, nodeNet: 50, podNet: 244 });
  if (calicoNs > 0) specs.push({ name: 'apps', cni: 'calico', ns: calicoNs, nodeNet: 51, podNet: 48 });
  const identities = new Set<number>();
  let nsCursor = 0;
  let podsLeft = topo.pods;
  let nsLeft = topo.namespaces;
  for (const spec of specs) {
    const podsHere = Math.round((podsLeft * spec.ns) / nsLeft);
    podsLeft -= podsHere;
    nsLeft -= spec.ns;
    const cluster: Cluster = { name: spec.name, cni: spec.cni, nodes: [], controlPlane: [], namespaces: [], apps: [] };
    clusters.push(cluster);
    const nWorkers = topo.nodesPerCluster ?? Math.max(2, Math.ceil(podsHere / 30));
    const nodeEnt = (short: string, i: number, cp: boolean) => {
      const e = add({
        key: `node/${spec.name}/${short}`,
        role: 'node',
        os: 'linux',
        observer: spec.cni,
        name: short,
        short,
        ip: `10.${spec.nodeNet}.${Math.floor(i / 200)}.${20 + (i % 200)}`,
        mac: mac('52:54:00'),
        labels: {
          'kubernetes.io/hostname': short,
          'kubernetes.io/os': 'linux',
          ...(cp ? { 'node-role.kubernetes.io/control-plane': '' } : {}),
        },
        services: [
          { port: 10250, proto: 'tcp', process: 'kubelet' },
          ...(cp
            ? [
                { port: 6443, proto: 'tcp' as const, process: 'kube-apiserver' },
                { port: 2379, proto: 'tcp' as const, process: 'etcd' },
                { port: 2380, proto: 'tcp' as const, process: 'etcd' },
              ]
            : []),
        ],
        cluster,
        controlPlane: cp,
      });
      nodes.push(e);
      cluster.nodes.push(e);
      if (cp) cluster.controlPlane.push(e);
      return e;
    };
    nodeEnt(`${spec.name}-cp-01`, 0, true);
    for (let i = 0; i < nWorkers; i++) nodeEnt(`${spec.name}-worker-${pad(i + 1, 2)}`, i + 1, false);
    const workers = cluster.nodes.filter((n) => !n.controlPlane);

    let podCursor = 0;
    const podIp = () => {
      const i = podCursor++;
      return `10.${spec.podNet}.${Math.floor(i / 250)}.${2 + (i % 250)}`;
    };
    const identity = () => {
      let id: number;
      do id = rng.int(10_000, 65_000);
      while (identities.has(id));
      identities.add(id);
      return id;
    };
    const mkApp = (name: string, namespace: string, port: number, proto: 'tcp' | 'udp', replicas: number, extra: Record<string, string> = {}, kind: App['kind'] = 'Deployment'): App => {
      const app: App = {
        name,
        namespace,
        cluster,
        port,
        proto,
        identity: identity(),
        labels: { app: name, ...extra },
        templateHash: Array.from({ length: 10 }, () => K8S_HASH[rng.int(0, K8S_HASH.length - 1)]).join(''),
        serviceAccount: name,
        pods: [],
        calls: [],
        scrapeAllowed: true,
        kind,
      };
      for (let r = 0; r < replicas; r++) {
        const suffix = Array.from({ length: 5 }, () => K8S_HASH[rng.int(0, K8S_HASH.length - 1)]).join('');
        const podName = kind === 'StatefulSet' ? `${name}-${r}` : `${name}-${app.templateHash}-${suffix}`;
        const ip = podIp();
        const pod = add(
          {
            key: `pod/${namespace}/${podName}`,
            role: 'pod',
            os: 'linux',
            observer: spec.cni,
            name: podName,
            short: podName,
            ip,
            mac: mac('0a:58:0a'),
            labels: kind === 'Deployment' ? { ...app.labels, 'pod-template-hash': app.templateHash } : { ...app.labels },
            services: [{ port, proto, process: name }],
            cluster,
            namespace,
            app,
            node: workers[(pods.length + r) % workers.length]!,
            endpointId: rng.int(100, 4000),
          },
          false,
        );
        app.pods.push(pod);
        pods.push(pod);
      }
      cluster.apps.push(app);
      return app;
    };

    cluster.namespaces.push('kube-system');
    cluster.dns = mkApp('coredns', 'kube-system', 53, 'udp', 2, { 'k8s-app': 'kube-dns' });
    if (topo.monitors > 0) {
      cluster.namespaces.push('monitoring');
      cluster.prometheus = mkApp(
        'prometheus',
        'monitoring',
        9090,
        'tcp',
        1,
        { 'app.kubernetes.io/name': 'prometheus', 'cordon.io/allowlist': 'monitoring' },
        'StatefulSet',
      );
      for (const p of cluster.prometheus.pods) p.allowlisted = true;
    }

    // application namespaces, pods spread over them, 1-3 replicas an app
    const appNs: string[] = [];
    for (let n = 0; n < spec.ns; n++) {
      const base = NAMESPACES[nsCursor % NAMESPACES.length]!;
      const ns = nsCursor < NAMESPACES.length ? base : `${base}-${Math.floor(nsCursor / NAMESPACES.length) + 1}`;
      nsCursor++;
      appNs.push(ns);
      cluster.namespaces.push(ns);
    }
    const nsApps = new Map<string, App[]>();
    let left = podsHere;
    for (let n = 0; n < appNs.length; n++) {
      const ns = appNs[n]!;
      let budget = Math.round(left / (appNs.length - n));
      left -= budget;
      const list: App[] = [];
      const catalog = rng.sample(APP_CATALOG, APP_CATALOG.length);
      let c = 0;
      while (budget > 0) {
        const [name, port] = catalog[c % catalog.length]!;
        const nm = c < catalog.length ? name : `${name}-${Math.floor(c / catalog.length) + 1}`;
        c++;
        const replicas = Math.min(budget, DATASTORES.has(name) ? 1 : rng.int(1, 3));
        budget -= replicas;
        list.push(mkApp(nm, ns, port, 'tcp', replicas, { tier: DATASTORES.has(name) ? 'data' : 'service' }, DATASTORES.has(name) ? 'StatefulSet' : 'Deployment'));
      }
      nsApps.set(ns, list);
      // one namespace in four does not let the cluster Prometheus in: its scrapes are denied
      const closed = n % 4 === 3;
      for (const a of list) a.scrapeAllowed = !closed;
    }
    // service graph: a chain within each namespace plus a few shortcuts, datastores are sinks,
    // and a few calls across namespaces
    for (const list of nsApps.values()) {
      for (let i = 0; i < list.length; i++) {
        const a = list[i]!;
        if (DATASTORES.has(a.name.replace(/-\d+$/, ''))) continue;
        const later = list.slice(i + 1);
        if (later.length > 0) a.calls.push(later[0]!);
        for (const b of later.slice(1)) if (rng.chance(0.3)) a.calls.push(b);
      }
    }
    const allApps = [...nsApps.values()].flat();
    const services = allApps.filter((a) => !DATASTORES.has(a.name.replace(/-\d+$/, '')));
    for (const a of services) {
      if (!rng.chance(0.2)) continue;
      const other = services.filter((b) => b.namespace !== a.namespace);
      if (other.length > 0) a.calls.push(rng.pick(other));
    }
  }

  const servers = [...windowsServers, ...linuxServers];
  const subnetList = [...subnets.values()];
  return {
    domain,
    entities,
    workstations,
    windowsServers,
    linuxServers,
    servers,
    dcs,
    jumps,
    scanners,
    monitors,
    pods,
    nodes,
    clusters,
    subnets: subnetList,
    byIp,
    wec: { host: `wec01.${domain}`, port: rng.int(49152, 65535) },
    zeekSensor: `zeek-sensor-01.${domain}`,
  };
}

/** An address outside the inventory: the Internet, a broadcast or multicast group. */
export function pseudoEntity(role: 'external' | 'broadcast', ip: string): Entity {
  return {
    idx: -1,
    key: `ip/${ip}`,
    role,
    os: 'linux',
    observer: 'none',
    name: ip,
    short: ip,
    ip,
    mac: role === 'broadcast' ? 'ff:ff:ff:ff:ff:ff' : '12:34:56:78:9a:bc',
    labels: {},
    services: [],
  };
}

export function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** Is this an application pod an attacker might land in (not DNS, not the allowlisted Prometheus)? */
export function isAppPod(e: Entity): boolean {
  return e.role === 'pod' && !!e.app && e.app.namespace !== 'kube-system' && e.app.namespace !== 'monitoring';
}
