import type { AnomalyKind } from '../events';
import type { Activity, AnomalyActivity, FlowActivity, Proto, Tag } from './activity';
import type { ScenarioConfig } from './config';
import { permits } from './policy';
import { Rng } from './random';
import { fromGenerator, type ActivitySource } from './source';
import { DYN_RPC, WIN, isAppPod, pseudoEntity, type App, type Cluster, type Enterprise, type Entity } from './topology';

/**
 * Benign background: the traffic an enterprise makes every minute, plus the patterns that must
 * NOT raise incidents: an application retrying one denied connection for hours (a policy gap),
 * broadcast and multicast announcements blocked by every receiver, authorised scanners and
 * monitoring sweeping many hosts and ports, stray single denials, and detector false positives.
 */

const INTERNET = ['13.107.42.14', '20.190.151.7', '52.96.165.18', '142.250.185.78', '151.101.1.140', '104.16.132.229', '40.126.32.74', '23.203.81.38'];

const ZEEK_SERVICE: Record<number, string> = { 443: 'ssl', 80: 'http', 8080: 'http', 53: 'dns', 445: 'krb,smb,gssapi', 88: 'krb_tcp', 22: 'ssh', 135: 'dce_rpc' };

/** A connection attempt from `src` to `dst`, its outcome decided by the enterprise policy. */
export function connect(
  rng: Rng,
  t: number,
  src: Entity,
  dst: Entity,
  dstPort: number,
  tag: Tag,
  opts: { proto?: Proto; image?: string; tries?: number; srcPort?: number; attackId?: string } = {},
): FlowActivity {
  const proto = opts.proto ?? 'tcp';
  const allowed = permits(src, dst, dstPort, proto);
  return {
    type: 'flow',
    t,
    src,
    dst,
    srcPort: opts.srcPort ?? rng.ephemeralPort(src.os),
    dstPort,
    proto,
    allowed,
    tries: allowed ? 1 : (opts.tries ?? (proto === 'udp' ? 1 : src.os === 'windows' ? 5 : rng.int(3, 5))),
    image: opts.image,
    service: allowed ? ZEEK_SERVICE[dstPort] : undefined,
    bytesOut: allowed ? rng.int(150, 6000) : undefined,
    bytesIn: allowed ? rng.int(200, 60_000) : undefined,
    tag,
    attackId: opts.attackId,
  };
}

export interface PolicyGap {
  src: Entity;
  dst: Entity;
  port: number;
  proto: 'tcp' | 'udp';
  image?: string;
  why: string;
}

/** Chooses the policy-gap pairs: each a source that will retry one denied service for the whole run. */
export function planPolicyGaps(config: ScenarioConfig, ent: Enterprise): PolicyGap[] {
  const rng = Rng.derive(config.seed, 'policy-gaps');
  const size = ent.entities.length;
  const n = config.background.policyGaps ?? Math.max(2, Math.min(50, Math.round(size / 25)));
  const gaps: PolicyGap[] = [];
  const used = new Set<Entity>();
  const makers: Array<() => PolicyGap | undefined> = [
    // a reporting job in one namespace reading a database in another, never allowed by policy
    () => {
      const apps = ent.clusters.flatMap((c) => c.apps).filter((a) => a.pods.length > 0 && a.namespace !== 'kube-system' && a.namespace !== 'monitoring');
      const dbs = apps.filter((a) => a.port === 5432 || a.port === 6379);
      for (let tries = 0; tries < 20 && dbs.length > 0; tries++) {
        const db = rng.pick(dbs);
        const callers = apps.filter((a) => a.cluster === db.cluster && a.namespace !== db.namespace && a !== db && !a.calls.includes(db));
        if (callers.length === 0) continue;
        const src = rng.pick(rng.pick(callers).pods);
        if (used.has(src)) continue;
        return { src, dst: db.pods[0]!, port: db.port, proto: 'tcp', why: `${src.app!.name} (${src.namespace}) has no egress rule to ${db.name} (${db.namespace})` };
      }
      return undefined;
    },
    // a scheduled PowerShell job on an application server polling another server over WinRM
    () => {
      const srcs = ent.windowsServers.filter((s) => !used.has(s));
      const dsts = ent.windowsServers.filter((s) => !s.exposed?.includes(5985));
      if (srcs.length === 0 || dsts.length === 0) return undefined;
      const src = rng.pick(srcs);
      const dst = rng.pick(dsts.filter((d) => d !== src).length ? dsts.filter((d) => d !== src) : dsts);
      if (dst === src) return undefined;
      return { src, dst, port: 5985, proto: 'tcp', image: WIN.powershell, why: 'a scheduled PowerShell job on a server that was never given a WinRM rule' };
    },
    // a backup agent on a workstation trying to reach the backup server's client daemon
    () => {
      const srcs = ent.workstations.filter((w) => !used.has(w));
      const dsts = ent.windowsServers.length ? ent.windowsServers : ent.linuxServers;
      if (srcs.length === 0 || dsts.length === 0) return undefined;
      return { src: rng.pick(srcs), dst: rng.pick(dsts), port: 13724, proto: 'tcp', image: WIN.backup, why: 'a backup agent pointed at a server that only accepts it from the backup VLAN' };
    },
    // an application pod calling a service it lost access to in a policy change
    () => {
      const apps = ent.clusters.flatMap((c) => c.apps).filter((a) => a.pods.length > 0 && a.namespace !== 'kube-system' && a.namespace !== 'monitoring');
      for (let tries = 0; tries < 20 && apps.length > 1; tries++) {
        const dst = rng.pick(apps);
        const callers = apps.filter((a) => a.cluster === dst.cluster && a !== dst && !a.calls.includes(dst));
        if (callers.length === 0) continue;
        const src = rng.pick(rng.pick(callers).pods);
        if (used.has(src)) continue;
        return { src, dst: dst.pods[0]!, port: dst.port, proto: 'tcp', why: `${src.app!.name} lost its allow rule to ${dst.name}` };
      }
      return undefined;
    },
    // a workstation's inventory agent trying a Linux server's database port
    () => {
      const srcs = ent.workstations.filter((w) => !used.has(w));
      const dsts = ent.linuxServers;
      if (srcs.length === 0 || dsts.length === 0) return undefined;
      const dst = rng.pick(dsts);
      return { src: rng.pick(srcs), dst, port: 5432, proto: 'tcp', image: WIN.inventory, why: 'an inventory agent with a stale database endpoint' };
    },
  ];
  for (let i = 0; gaps.length < n && i < n * 4; i++) {
    const g = makers[i % makers.length]!();
    if (!g || used.has(g.src) || permits(g.src, g.dst, g.port, g.proto)) continue;
    used.add(g.src);
    gaps.push(g);
  }
  return gaps;
}

/** Every benign source of the scenario. */
export function backgroundSources(config: ScenarioConfig, ent: Enterprise, gaps: readonly PolicyGap[]): ActivitySource[] {
  const { seed, start } = config;
  const end = start + config.duration;
  const bg = config.background;
  const out: ActivitySource[] = [];
  const hosts = [...ent.workstations, ...ent.servers, ...ent.dcs, ...ent.jumps];
  const podsTotal = ent.pods.length;
  const weightTotal = hosts.length + podsTotal;

  // ordinary traffic: hosts, then each cluster on its own (Calico's runs ahead)
  if (bg.rate > 0 && weightTotal > 0) {
    const hostRate = (bg.rate * hosts.length) / weightTotal;
    const pools = hostPools(ent);
    if (hostRate > 0) {
      out.push(fromGenerator('background:hosts', false, poisson(Rng.derive(seed, 'bg:hosts'), start, end, hostRate, (r, t) => hostFlow(r, pools, ent.linuxServers, t))));
    }
    for (const c of ent.clusters) {
      const rate = (bg.rate * c.apps.reduce((n, a) => n + a.pods.length, 0)) / weightTotal;
      const apps = appsOf(c);
      if (rate > 0) out.push(fromGenerator(`background:${c.name}`, c.cni === 'calico', poisson(Rng.derive(seed, `bg:${c.name}`), start, end, rate, (r, t) => podFlow(r, c, apps, t))));
    }
  }

  // policy gaps: one denied pair retried for hours
  gaps.forEach((g, i) => {
    const rng = Rng.derive(seed, `gap:${i}`);
    const calico = g.src.cluster?.cni === 'calico' || g.dst.cluster?.cni === 'calico';
    out.push(fromGenerator(`policy-gap:${i}`, calico, policyGap(rng, g, start + rng.int(0, 20 * 60_000), end, bg.policyGapRetry)));
  });

  // broadcast / multicast announcements
  const talkers = [...ent.workstations, ...ent.windowsServers, ...ent.dcs, ...ent.linuxServers].filter((e) => e.subnet && e.subnet.members.length > 1);
  if (bg.broadcastPerHostHour > 0 && talkers.length > 0) {
    const rate = (bg.broadcastPerHostHour * talkers.length) / 3600;
    out.push(fromGenerator('broadcast', false, poisson(Rng.derive(seed, 'broadcast'), start, end, rate, (r, t) => broadcast(r, talkers, t, bg.broadcastReceivers))));
  }

  // authorised vulnerability scanners
  ent.scanners.forEach((s, i) => out.push(fromGenerator(`scanner:${i}`, false, scannerSweeps(Rng.derive(seed, `scanner:${i}`), ent, s, start, end, config))));
  // monitoring pollers, and each cluster's Prometheus
  ent.monitors.forEach((m, i) => out.push(fromGenerator(`monitor:${i}`, false, monitorPolls(Rng.derive(seed, `monitor:${i}`), ent, m, start, end, config))));
  for (const c of ent.clusters) {
    if (c.prometheus) out.push(fromGenerator(`prometheus:${c.name}`, c.cni === 'calico', prometheusScrapes(Rng.derive(seed, `prom:${c.name}`), c, start, end, config.background.monitorEvery)));
  }

  // stray single denials: hosts, then each cluster
  if (bg.noisePerHour > 0) {
    const hostShare = hosts.length / Math.max(1, weightTotal);
    const pool = [...ent.workstations, ...ent.servers];
    out.push(fromGenerator('noise:hosts', false, poisson(Rng.derive(seed, 'noise:hosts'), start, end, (bg.noisePerHour * hostShare) / 3600, (r, t) => hostNoise(r, pool, t))));
    for (const c of ent.clusters) {
      const share = c.apps.reduce((n, a) => n + a.pods.length, 0) / Math.max(1, weightTotal);
      const pods = appsOf(c).flatMap((a) => a.pods);
      out.push(fromGenerator(`noise:${c.name}`, c.cni === 'calico', poisson(Rng.derive(seed, `noise:${c.name}`), start, end, (bg.noisePerHour * share) / 3600, (r, t) => podNoise(r, pods, t))));
    }
  }

  // detector false positives
  if (bg.benignAnomaliesPerHour > 0 && config.formats.cordon) {
    const subjects = [...ent.workstations, ...ent.servers, ...ent.pods.filter(isAppPod)];
    out.push(fromGenerator('benign-anomalies', false, poisson(Rng.derive(seed, 'benign-anomalies'), start, end, bg.benignAnomaliesPerHour / 3600, (r, t) => benignAnomaly(r, subjects, t))));
  }
  return out;
}

/** A Poisson process over [start, end): `make` may decline a slot by returning undefined. */
function* poisson(rng: Rng, start: number, end: number, perSecond: number, make: (rng: Rng, t: number) => Activity | undefined): Generator<Activity> {
  if (perSecond <= 0) return;
  const mean = 1000 / perSecond;
  for (let t = start + rng.exp(mean); t < end; t += rng.exp(mean)) {
    const a = make(rng, Math.floor(t));
    if (a) yield a;
  }
}

/** The destinations each kind of ordinary traffic goes to, computed once. */
interface HostPools {
  ws: Entity[];
  members: Entity[];
  servers: Entity[];
  dcs: Entity[];
  fileServers: Entity[];
  webs: Entity[];
  sql: Entity[];
  sqlClients: Entity[];
  linuxDb: Entity[];
  linuxApp: Entity[];
  linuxWeb: Entity[];
  jumps: Entity[];
  winAdminTargets: Entity[];
}

function hostPools(ent: Enterprise): HostPools {
  const ws = ent.workstations;
  return {
    ws,
    members: [...ws, ...ent.servers],
    servers: ent.servers,
    dcs: ent.dcs,
    fileServers: ent.windowsServers.filter((s) => s.serverKind === 'file'),
    webs: ent.servers.filter((s) => s.serverKind === 'web' || s.serverKind === 'app' || s.serverKind === 'linux-web'),
    sql: ent.windowsServers.filter((s) => s.serverKind === 'sql'),
    sqlClients: ent.windowsServers.filter((s) => s.serverKind === 'app' || s.serverKind === 'web'),
    linuxDb: ent.linuxServers.filter((s) => s.serverKind === 'linux-db'),
    linuxApp: ent.linuxServers.filter((s) => s.serverKind === 'linux-app'),
    linuxWeb: ent.linuxServers.filter((s) => s.serverKind === 'linux-web'),
    jumps: ent.jumps,
    winAdminTargets: [...ent.windowsServers, ...ent.dcs],
  };
}

function hostFlow(rng: Rng, p: HostPools, linuxServers: readonly Entity[], t: number): FlowActivity | undefined {
  const kind = rng.weighted(HOST_MIX);
  const dc = p.dcs.length ? rng.pick(p.dcs) : undefined;
  const member = () => rng.pick(p.members);
  switch (kind) {
    case 'file':
      return p.fileServers.length ? connect(rng, t, rng.pick(p.ws), rng.pick(p.fileServers), 445, 'background', { image: WIN.system }) : undefined;
    case 'web':
      return p.webs.length ? connect(rng, t, rng.pick(p.ws), rng.pick(p.webs), 443, 'background', { image: rng.pick([WIN.chrome, WIN.msedge, WIN.teams]) }) : undefined;
    case 'dns':
      return dc ? connect(rng, t, member(), dc, 53, 'background', { proto: 'udp', image: WIN.svchost }) : undefined;
    case 'kerberos':
      return dc ? connect(rng, t, member(), dc, 88, 'background', { image: WIN.lsass }) : undefined;
    case 'ldap':
      return dc ? connect(rng, t, member(), dc, 389, 'background', { proto: rng.chance(0.4) ? 'udp' : 'tcp', image: WIN.svchost }) : undefined;
    case 'sysvol':
      return dc ? connect(rng, t, member(), dc, 445, 'background', { image: WIN.system }) : undefined;
    case 'netlogon':
      return dc ? connect(rng, t, member(), dc, rng.chance(0.5) ? 135 : rng.int(DYN_RPC.lo, DYN_RPC.lo + 400), 'background', { image: WIN.lsass }) : undefined;
    case 'internet':
      return connect(rng, t, rng.pick(p.ws), pseudoEntity('external', rng.pick(INTERNET)), 443, 'background', { image: rng.pick([WIN.chrome, WIN.msedge, WIN.outlook, WIN.teams]) });
    case 'sql':
      return p.sql.length && p.sqlClients.length ? connect(rng, t, rng.pick(p.sqlClients), rng.pick(p.sql), 1433, 'background', { image: WIN.w3wp }) : undefined;
    case 'linux':
      if (p.linuxDb.length && p.linuxApp.length && rng.chance(0.5)) return connect(rng, t, rng.pick(p.linuxApp), rng.pick(p.linuxDb), 5432, 'background');
      if (p.linuxApp.length && p.linuxWeb.length) return connect(rng, t, rng.pick(p.linuxWeb), rng.pick(p.linuxApp), 8080, 'background');
      return undefined;
    case 'admin': {
      if (!p.jumps.length) return undefined;
      const jump = rng.pick(p.jumps);
      const targets = jump.os === 'linux' ? linuxServers : p.winAdminTargets;
      if (!targets.length) return undefined;
      const dst = rng.pick(targets);
      const port = dst.os === 'linux' ? 22 : rng.pick([3389, 5985, 5985, 445]);
      return connect(rng, t, jump, dst, port, 'admin', { image: port === 3389 ? WIN.mstsc : port === 5985 ? WIN.powershell : WIN.system });
    }
    case 'replication': {
      if (p.dcs.length < 2) return undefined;
      const a = rng.pick(p.dcs);
      const b = rng.pick(p.dcs.filter((d) => d !== a));
      return connect(rng, t, a, b, rng.pick([135, 389, rng.int(DYN_RPC.lo, DYN_RPC.lo + 400)]), 'background', { image: WIN.lsass });
    }
  }
}

const HOST_MIX: ReadonlyArray<readonly [string, number]> = [
  ['file', 3],
  ['web', 3],
  ['dns', 3],
  ['kerberos', 1.5],
  ['ldap', 1.5],
  ['sysvol', 0.5],
  ['netlogon', 0.4],
  ['internet', 2],
  ['sql', 0.8],
  ['linux', 1],
  ['admin', 0.25],
  ['replication', 0.2],
];

/** A cluster's application workloads (not DNS, not monitoring). */
function appsOf(c: Cluster): App[] {
  return c.apps.filter((a) => a.namespace !== 'kube-system' && a.namespace !== 'monitoring' && a.pods.length > 0);
}

function podFlow(rng: Rng, c: Cluster, apps: readonly App[], t: number): FlowActivity | undefined {
  if (!apps.length) return undefined;
  const r = rng.next();
  const app = rng.pick(apps);
  const src = rng.pick(app.pods);
  if (r < 0.6 && app.calls.length > 0) {
    const callee = rng.pick(app.calls);
    return connect(rng, t, src, rng.pick(callee.pods), callee.port, 'background');
  }
  if (r < 0.9 && c.dns) return connect(rng, t, src, rng.pick(c.dns.pods), 53, 'background', { proto: 'udp' });
  const cp = c.controlPlane[0];
  return cp ? connect(rng, t, src, cp, 6443, 'background') : undefined;
}

function* policyGap(rng: Rng, g: PolicyGap, start: number, end: number, retryMs: number): Generator<Activity> {
  // a client library with a fixed retry interval, a little jitter, and sometimes a back-off pause
  for (let t = start; t < end; t += retryMs * rng.real(0.8, 1.2) * (rng.chance(0.05) ? rng.real(2, 4) : 1)) {
    yield connect(rng, Math.floor(t), g.src, g.dst, g.port, 'policy_gap', { proto: g.proto, image: g.image, tries: g.src.os === 'windows' ? 5 : 3 });
  }
}

const BROADCASTS: ReadonlyArray<readonly [string, number]> = [
  ['netbios-ns', 3],
  ['netbios-dgm', 3],
  ['llmnr', 2],
  ['mdns', 1.5],
  ['ssdp', 1.5],
];

function broadcast(rng: Rng, talkers: readonly Entity[], t: number, receivers: number): FlowActivity {
  const src = rng.pick(talkers);
  const subnet = src.subnet!;
  const kind = rng.weighted(BROADCASTS);
  const [ip, port, srcPort] =
    kind === 'netbios-ns'
      ? [subnet.broadcast, 137, 137]
      : kind === 'netbios-dgm'
        ? [subnet.broadcast, 138, 138]
        : kind === 'llmnr'
          ? ['224.0.0.252', 5355, rng.ephemeralPort(src.os)]
          : kind === 'mdns'
            ? ['224.0.0.251', 5353, 5353]
            : ['239.255.255.250', 1900, rng.ephemeralPort(src.os)];
  const others = wfpMembers(subnet).filter((m) => m !== src);
  return {
    type: 'flow',
    t,
    src,
    dst: pseudoEntity('broadcast', ip),
    srcPort,
    dstPort: port,
    proto: 'udp',
    allowed: false,
    tries: 1,
    receivers: rng.sample(others, receivers),
    tag: 'broadcast',
  };
}

const wfpCache = new WeakMap<object, Entity[]>();
function wfpMembers(subnet: NonNullable<Entity['subnet']>): Entity[] {
  let list = wfpCache.get(subnet);
  if (!list) {
    list = subnet.members.filter((m) => m.observer === 'wfp');
    wfpCache.set(subnet, list);
  }
  return list;
}

const SCAN_PORTS = [445, 22, 3389, 135, 80, 443, 139, 5985, 1433, 3306, 5432, 8080, 21, 23, 25, 53, 111, 161, 389, 636, 5900, 8443, 9100, 10250];

function* scannerSweeps(rng: Rng, ent: Enterprise, scanner: Entity, start: number, end: number, config: ScenarioConfig): Generator<Activity> {
  const bg = config.background;
  const estate = [...ent.workstations, ...ent.servers, ...ent.dcs];
  if (estate.length === 0) return;
  const gap = 1000 / bg.scannerProbeRate;
  for (let sweep = start + rng.int(30, 90) * 60_000; sweep < end; sweep += bg.scannerSweepEvery) {
    const targets = rng.sample(estate, bg.scannerTargets);
    const ports = SCAN_PORTS.slice(0, bg.scannerPorts);
    let t = sweep;
    for (const dst of targets) {
      for (const port of ports) {
        if (t >= end) return;
        yield connect(rng, Math.floor(t), scanner, dst, port, 'scanner', { tries: rng.int(1, 2) });
        t += gap * rng.real(0.5, 1.5);
      }
    }
  }
}

function* monitorPolls(rng: Rng, ent: Enterprise, monitor: Entity, start: number, end: number, config: ScenarioConfig): Generator<Activity> {
  const bg = config.background;
  const estate = [...ent.servers, ...ent.dcs];
  // the monitoring template was also applied to a batch of workstations, whose firewalls refuse the agent port
  const ws = rng.sample(ent.workstations, Math.max(1, Math.floor(bg.monitorTargets / 3)));
  const targets = [...rng.sample(estate, bg.monitorTargets - ws.length), ...ws];
  if (targets.length === 0) return;
  const step = bg.monitorEvery / targets.length;
  for (let cycle = start + rng.int(0, 60_000); cycle < end; cycle += bg.monitorEvery) {
    for (let i = 0; i < targets.length; i++) {
      const t = cycle + i * step;
      if (t >= end) return;
      const dst = targets[i]!;
      yield connect(rng, Math.floor(t), monitor, dst, 10050, 'monitor', { tries: 2 });
    }
  }
}

function* prometheusScrapes(rng: Rng, c: Cluster, start: number, end: number, every: number): Generator<Activity> {
  const prom = c.prometheus!.pods[0]!;
  const targets = [...c.apps.filter((a) => a.namespace !== 'monitoring' && a.namespace !== 'kube-system').flatMap((a) => a.pods), ...c.nodes];
  if (targets.length === 0) return;
  const step = every / targets.length;
  for (let cycle = start + rng.int(0, 30_000); cycle < end; cycle += every) {
    for (let i = 0; i < targets.length; i++) {
      const t = cycle + i * step;
      if (t >= end) return;
      const dst = targets[i]!;
      yield connect(rng, Math.floor(t), prom, dst, dst.role === 'node' ? 10250 : 9090, 'monitor', { tries: 2 });
    }
  }
}

const NOISE_PORTS: ReadonlyArray<readonly [number, number]> = [
  [445, 3],
  [139, 1],
  [3389, 1],
  [80, 3],
  [443, 3],
  [8080, 2],
  [9100, 1], //  a print job sent to a workstation's address
  [5900, 0.5],
  [22, 1],
  [0, 3], //     a random high port
];

/** One stray denied connection between hosts (a mistyped share path, a stale shortcut, ...). */
function hostNoise(rng: Rng, pool: readonly Entity[], t: number): FlowActivity | undefined {
  if (pool.length < 2) return undefined;
  for (let i = 0; i < 8; i++) {
    const src = rng.pick(pool);
    const dst = rng.pick(pool);
    if (src === dst) continue;
    const p = rng.weighted(NOISE_PORTS);
    const port = p === 0 ? rng.int(1024, 49151) : p;
    if (permits(src, dst, port, 'tcp')) continue;
    return connect(rng, t, src, dst, port, 'noise', { image: src.os === 'windows' ? (port === 445 || port === 139 ? WIN.system : rng.pick([WIN.chrome, WIN.msedge])) : undefined });
  }
  return undefined;
}

function podNoise(rng: Rng, pods: readonly Entity[], t: number): FlowActivity | undefined {
  if (pods.length < 2) return undefined;
  for (let i = 0; i < 8; i++) {
    const src = rng.pick(pods);
    const dst = rng.pick(pods);
    if (src === dst) continue;
    const port = dst.app!.port;
    if (permits(src, dst, port, 'tcp')) continue;
    return connect(rng, t, src, dst, port, 'noise');
  }
  return undefined;
}

const BENIGN_ANOMALIES: ReadonlyArray<readonly [AnomalyKind, number]> = [
  ['new_edge', 5],
  ['rare_port', 3],
  ['credential_use', 1],
  ['auth_burst', 0.5],
];

function benignAnomaly(rng: Rng, subjects: readonly Entity[], t: number): AnomalyActivity | undefined {
  if (subjects.length === 0) return undefined;
  const entity = rng.pick(subjects);
  const kind = rng.weighted(BENIGN_ANOMALIES);
  return {
    type: 'anomaly',
    t,
    entity,
    kind,
    score: rng.real(0.2, 0.7),
    detector: kind === 'credential_use' || kind === 'auth_burst' ? 'idp:ad-logon' : 'flow-baseline',
    detail: kind === 'rare_port' ? { port: rng.pick([8443, 9443, 5671, 27017, 1883]) } : undefined,
    tag: 'benign_anomaly',
  };
}
