import { z } from 'zod';
import { WORKLOAD_KINDS } from '../events';
import { SERVICE_CLASSES } from './ports';
import { Selector } from './selectors';

/**
 * The scoring model, in one place. Each campaign (rooted at the entity that started it) has a
 * risk that decays with a half-life. Rules add weight to it:
 *
 * - admin_port   a first denied attempt on a (destination, port) of a remote-administration
 *                service: the service's weight times every matching pair rule (who talks to whom);
 * - rpc_chain    endpoint mapper (135) then a blocked call on the dynamic port it handed out;
 * - fan_out      `minTargets` new (destination, port) pairs within any `fanOutMs` (a sliding
 *                window over the entity's recent pairs): `base`, then `perTarget` for each further
 *                one while new pairs keep coming less than `fanOutMs` apart;
 * - propagation  a target of the campaign attacks onward: its attempts join the campaign, plus this;
 * - target_role  an attacked destination turns out to serve Kerberos/LDAP (a DC);
 * - anomaly      the anomaly kind's weight times the anomaly's score (corroboration).
 *
 * Repeats of a pair weigh nothing (that is what a misconfigured app does; it becomes a policy gap
 * after `minAttempts` over `minSpanMs`). An incident opens when the risk reaches
 * `thresholds.incident`, at least one movement rule (admin_port, rpc_chain, fan_out, propagation)
 * contributed, and the movement is corroborated (see `corroboration`): one lone refused
 * connection to a share, a remote desktop or a shell is what a typo looks like, however heavy the
 * pair rules make it. Severity follows the score bands.
 *
 * Propagation (A attacks B, then B attacks C: one campaign rooted at A) follows a link from B to A
 * only while A's campaign is an open incident and the link was made by that campaign: a denied
 * attempt from an entity that never became an incident, or whose incident went quiet, does not
 * make it the root of what its target does later, and a pair reported as a policy gap drops the
 * link. A target becomes linked by a denied attempt of the campaign (`thresholds.pullIn`), and
 * then B's moves join A's campaign for `windows.attemptedMs` (A was refused: it did not get in);
 * or by a permitted connection on a remote-administration service that the campaign's source was
 * being refused on elsewhere (a foothold, `windows.footholdMs`), and then for
 * `windows.propagationMs`. Chains are followed backwards in time only (B was A's target before C
 * was B's).
 */
const HOUR = 3_600_000;
const MINUTE = 60_000;

const weight = (value: number) => z.number().min(0).max(1000).default(value);
const duration = (value: number) => z.number().int().min(1).default(value);

/**
 * Base weight of ONE denied attempt on a new (destination, port) pair, by service. Repeats of a
 * pair weigh nothing: persistence against one service is a policy gap, not movement.
 */
export const ServiceWeights = z
  .object({
    smb: weight(4), // admin shares, PsExec, service creation: the workhorse of Windows lateral movement
    rpc: weight(4), // RPC endpoint mapper: DCOM, WMI, remote service control start here
    'rpc-dynamic': weight(4), // the RPC interface call itself, on the port the endpoint mapper handed out
    rdp: weight(3.5), // interactive remote desktop
    winrm: weight(4), // PowerShell remoting
    ssh: weight(2.5), // remote shell; common between admin hosts, so lower
    vnc: weight(3.5), // remote desktop, rarely legitimate east-west
    'k8s-api': weight(4), // the API server: discovery and control of the whole cluster
    kubelet: weight(5), // exec into any pod on the node, read its secrets
    etcd: weight(5), // the cluster's secrets at rest
    database: weight(2.5), // database admin ports: often app misconfiguration, sometimes theft
    other: weight(0), // any other denied port: by default it counts only through fan-out
  })
  .strict();

/** Multiplier for who talks to whom. Every matching rule applies (factors multiply). */
export const PairRule = z
  .object({
    srcRole: z.string().min(1).optional(),
    dstRole: z.string().min(1).optional(),
    srcKind: z.enum([...WORKLOAD_KINDS, 'ip']).optional(),
    dstKind: z.enum([...WORKLOAD_KINDS, 'ip']).optional(),
    services: z.array(z.enum(SERVICE_CLASSES)).min(1).optional(),
    factor: z.number().min(0).max(100),
    technique: z.string().regex(/^T\d{4}(\.\d{3})?$/).optional(),
    reason: z.string().min(1),
  })
  .strict();
export type PairRule = z.output<typeof PairRule>;

export const DEFAULT_PAIR_RULES: PairRule[] = [
  { srcRole: 'workstation', dstRole: 'workstation', factor: 2, reason: 'workstations do not administer each other' },
  { dstRole: 'domain-controller', factor: 2, technique: 'T1210', reason: 'the target is a domain controller (tier 0)' },
  {
    srcKind: 'pod',
    services: ['kubelet', 'etcd', 'k8s-api'],
    factor: 2,
    reason: 'a workload reaching for its node or the control plane',
  },
  { srcRole: 'scanner', factor: 0.25, reason: 'the source is a scanner (not allowlisted): scanning is its job' },
  { srcRole: 'monitoring', factor: 0.25, reason: 'the source is a monitoring system probing services' },
  {
    srcRole: 'server',
    services: ['ssh'],
    factor: 1.5,
    reason: 'a server opening remote shells: servers are administered from jump hosts, they do not administer',
  },
];

export const AnomalyWeights = z
  .object({
    credential_use: weight(4), // credentials used on or from the entity: the step after a foothold
    auth_burst: weight(3), // authentication burst: password spraying, ticket abuse
    new_edge: weight(1.5), // a conversation never seen before in the baseline
    rare_port: weight(1.5), // a port this entity has never used
    process_spawn: weight(3), // a remote process start (service, WMI, scheduled task)
    siem_alert: weight(4), // an alert from the SIEM about this entity
  })
  .strict();

/**
 * When one attempt is not enough. A denied connection attempt is one SYN and its retransmissions
 * (Windows resends for about 15 s, and every resend is a record); on a service people reach by
 * hand (a mistyped share path, a stale drive mapping, a remote desktop or shell opened to the
 * wrong host) one such attempt, alone, is a typo far more often than an attack, even between two
 * workstations, and two of them from one host in the same hour happen too in a large estate. So
 * a campaign whose only movement is lone attempts on the `services` below opens an incident only
 * once they show a tool at work rather than a person's slip:
 *
 * - a burst: attempts on two distinct (destination, port) pairs within `burstMs`;
 * - persistence: `attempts` connection attempts within `windowMs`, on at least two distinct pairs
 *   (a slow campaign, a few attempts an hour, cycling through its targets). A record of a pair
 *   more than `retransmitMs` after the previous one is a new attempt, not a retransmission (SYN
 *   retries last ~20 s on Windows, ~1-2 min on Linux); one pair alone, however often retried, is
 *   a policy gap;
 * - or anomalies on the campaign within `windowMs` of one of them that weigh at least
 *   `anomalyWeight` together (a detector's low-score guess is not enough: those are common).
 *
 * Everything else stands on its own:
 *
 * - an attempt on any other remote-administration service: the RPC endpoint mapper and the calls
 *   it hands out (DCOM, WMI, service control), WinRM, the kubelet, etcd, the Kubernetes API are
 *   reached by tools, not by someone typing a host name (the OTRF "DCOM blocked" recording is one
 *   refused endpoint-mapper connection, retransmitted, between two workstations: an attack);
 * - an attempt on a target whose role is listed in `targetRoles` (tier 0: a domain controller);
 * - fan-out, an RPC chain, propagation, a target found to be a domain controller.
 *
 * Repeats of one pair never corroborate it (that is how a policy gap looks); inside an open
 * incident every attempt is evidence, lone or not.
 */
export const Corroboration = z
  .object({
    services: z.array(z.enum(SERVICE_CLASSES)).default(['smb', 'rdp', 'ssh', 'vnc', 'database']),
    burstMs: duration(10 * MINUTE), // lone attempts on two pairs this close together are a burst
    attempts: z.number().int().min(2).default(3), // this many attempts on two or more pairs...
    windowMs: duration(2 * HOUR), // ...within this long are persistence; anomalies this close corroborate...
    anomalyWeight: weight(3), // ...when their weights add up to this (credential_use 4 x score 0.75)
    retransmitMs: duration(2 * MINUTE), // a record of a pair this long after the previous one is a new attempt
    targetRoles: z.array(z.string().min(1)).default(['domain-controller']),
  })
  .strict();

/**
 * Evidence from permitted connections (`admin_session`, `session_fan_out`): a remote-administration
 * or remote-execution session that got through, between peers that do not normally speak it. It
 * works on cold start (no history): who is a server comes from roles (inventory, trusted labels,
 * behaviour) and from the traffic itself (a destination many sources reach on one service serves
 * the fleet). A first session on a (destination, port) pair weighs `services[service]` times the
 * pair rules; repeats of the pair weigh nothing. Not evidence:
 *
 * - sessions to a destination whose role serves that service (`serverRoles`: members talk SMB and
 *   RPC to their domain controller and file servers all day);
 * - sessions from a source whose role administers (`adminRoles`) or is protected (`protectedRoles`:
 *   a spoofed address must never make a domain controller the root of an incident);
 * - sessions to a destination of unknown role that was never seen acting as a domain member (it
 *   asked a directory server for Kerberos/LDAP): it may be a server nobody described yet;
 * - sessions to a destination that `fleetSources` distinct sources reached on that service within
 *   `pairTtlMs`: a fleet-wide pattern is a service (or a policy gap), not an attack.
 *
 * `fanOutTargets` distinct destinations reached on such services within `windows.fanOutMs` add
 * `fanOut.base`, then `fanOut.perTarget` per further destination (an operator's sweep).
 */
export const AllowedFlows = z
  .object({
    enabled: z.boolean().default(true),
    services: z
      .object({
        smb: weight(3), // an admin share opened: PsExec, file drop, service creation
        rpc: weight(1.5), // the endpoint mapper answered: DCOM, WMI, remote services start here
        'rpc-dynamic': weight(2.5), // the interface call on the port it handed out
        rdp: weight(3),
        winrm: weight(5), // PowerShell remoting: a tool, not a person browsing
        ssh: weight(2),
        vnc: weight(3),
        'k8s-api': weight(1), // pods talk to the API server for a living; counts with the pod rule and more
        kubelet: weight(4), // exec and secrets of every pod on the node
        etcd: weight(4), // the cluster's secrets at rest
        database: weight(0), // applications connect to databases all day
        other: weight(0),
      })
      .strict()
      .prefault({}),
    serverRoles: z
      .array(z.object({ role: z.string().min(1), services: z.array(z.enum(SERVICE_CLASSES)).min(1) }).strict())
      .default([
        { role: 'domain-controller', services: ['smb', 'rpc', 'rpc-dynamic'] },
        { role: 'file-server', services: ['smb', 'rpc', 'rpc-dynamic'] },
        { role: 'dns', services: ['rpc', 'rpc-dynamic'] },
        { role: 'server', services: ['smb', 'rpc', 'rpc-dynamic', 'rdp', 'ssh', 'winrm', 'database'] }, // administered from desks
        { role: 'control-plane', services: ['k8s-api', 'etcd'] },
      ]),
    adminRoles: z.array(z.string().min(1)).default(['admin', 'jump-host', 'scanner', 'monitoring', 'backup']),
    protectedRoles: z.array(z.string().min(1)).default(['domain-controller']),
    unknownTargets: z.enum(['member', 'any', 'none']).default('member'),
    // observers that log on a host (its own firewall or sensor): only their record on the destination counts
    hostObservers: z.array(z.string().min(1)).default(['wfp', 'sysmon']),
    fleetSources: z.number().int().min(2).max(64).default(3),
    fanOutTargets: z.number().int().min(2).default(4),
    // a session the sensor confirms beyond its port: factors of at least 1 (a hint never excuses)
    confirmation: z
      .object({
        protocol: z.number().min(1).max(4).default(1.5), // Zeek recognised the service's protocol (service)
        process: z.number().min(1).max(4).default(2), // the destination's accepting process runs remote code
      })
      .strict()
      .prefault({}),
  })
  .strict();

export const RoleInventoryEntry = z.object({ selector: Selector, role: z.string().min(1) }).strict();

export const CorrelationConfig = z
  .object({
    /** Risk of a campaign halves every `halfLifeMs`: slow campaigns add up, one-off noise fades. */
    halfLifeMs: duration(4 * HOUR),
    thresholds: z
      .object({
        incident: weight(6), // decayed campaign risk at which an incident opens
        medium: weight(9), // severity bands on the incident score
        high: weight(16),
        critical: weight(30),
        scoreBand: z.number().min(1.05).max(10).default(Math.SQRT2), // an update is published when the score grows by this ratio
        pullIn: weight(4), // an attempt weighing this much (any, once the incident is open) makes its destination a target of the campaign (propagation)
      })
      .strict()
      .prefault({}),
    windows: z
      .object({
        fanOutMs: duration(10 * MINUTE), // distinct targets within this (sliding) window count toward fan-out
        rpcChainMs: duration(2 * MINUTE), // a dynamic-port call this soon after 135 is an RPC call
        // a target that moves on within this window extends the campaign, when the campaign got in
        // (a foothold: a permitted connection)...
        propagationMs: duration(24 * HOUR),
        // ...and when it was only refused there (a denied attempt does not give access: the target
        // extends the campaign only if it moves on soon after, else its activity is its own)
        attemptedMs: duration(2 * HOUR),
        pairTtlMs: duration(24 * HOUR), // a (destination, port) pair unseen this long is new again
        // a permitted remote-administration connection from a campaign's root or pivot, on a service
        // the source was already attempting in the campaign (or to a host it was already after),
        // makes the destination a foothold when the campaign had evidence this recently: the
        // destination's own attempts then join the campaign instead of opening one of their own
        footholdMs: duration(HOUR),
      })
      .strict()
      .prefault({}),
    weights: z
      .object({
        services: ServiceWeights.prefault({}),
        fanOut: z
          .object({
            minTargets: z.number().int().min(2).default(5), // new (destination, port) pairs within the window
            base: weight(3), // once, when the fan-out threshold is reached (discovery, T1046)
            perTarget: weight(1), // each further new pair while fanning out
          })
          .strict()
          .prefault({}),
        rpcChain: weight(2), // endpoint mapper then a blocked interface call: a deliberate remote RPC call
        propagation: weight(4), // a target of the campaign attacks onward (A to B, then B to C)
        targetRole: weight(4), // a target is learned to be a domain controller after it was attacked
        anomalies: AnomalyWeights.prefault({}), // multiplied by the anomaly's own score (0..1)
      })
      .strict()
      .prefault({}),
    pairRules: z.array(PairRule).default(DEFAULT_PAIR_RULES),
    allowedFlows: AllowedFlows.prefault({}),
    corroboration: Corroboration.prefault({}),
    roles: z
      .object({
        labelKey: z.string().min(1).default('cordon.io/role'), // a workload label naming its role wins
        // Observer types (flows) and detectors (anomalies) whose workload labels Cordon believes: only
        // their labels name a role or match the label selectors of the inventory and the allowlist.
        trustedLabelSources: z.array(z.string().min(1).max(128)).max(64).default([]),
        inventory: z.array(RoleInventoryEntry).default([]), // then the first matching inventory entry
        observe: z.boolean().default(true), // then observed behaviour (serving Kerberos/LDAP: a DC)
        directoryPorts: z.array(z.number().int().min(1).max(65535)).default([88, 389, 636, 3268, 3269]),
      })
      .strict()
      .prefault({}),
    /** Sources never scored: authorized scanners, monitoring, backup agents. */
    allowlist: z.array(Selector).default([]),
    incident: z
      .object({
        idleMs: duration(6 * HOUR), // an incident with no new evidence this long goes quiet
        retentionMs: duration(24 * HOUR), // a quiet incident is forgotten after this (statuses, explain)
        idBucketMs: duration(HOUR), // the campaign window start is rounded to this for the id
        maxEvidence: z.number().int().min(1).default(32),
        maxEdges: z.number().int().min(1).default(64),
        maxEntities: z.number().int().min(2).default(64),
      })
      .strict()
      .prefault({}),
    policyGap: z
      .object({
        minAttempts: z.number().int().min(2).default(6), // denied attempts on one (destination, port)...
        minSpanMs: duration(HOUR), // ...spread over at least this long...
        reemitMs: duration(24 * HOUR), // ...reported again at most this often
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        maxEntities: z.number().int().min(10).default(500_000), // tracked entities before eviction
        entityTtlMs: duration(24 * HOUR), // an entity idle this long is forgotten (minute resolution)
        maxLearnedRoles: z.number().int().min(0).default(4096), // entities learned to serve the directory (DCs), never forgotten
        descriptorRefreshMs: z.number().int().min(0).default(5 * MINUTE), // role labels and allowlist re-read at most this often
        pairsPerEntity: z.number().int().min(1).max(64).default(8), // recent (destination, port) pairs kept (>= fanOut.minTargets)
        sessionsPerEntity: z.number().int().min(1).max(64).default(16), // recent permitted admin sessions kept per source (>= allowedFlows.fanOutTargets)
        pendingPerEntity: z.number().int().min(1).default(12), // compact evidence records kept before an incident opens
        sweepEveryMs: duration(10 * MINUTE), // event-time interval between expiry sweeps (memory only)
        maxHandoffs: z.number().int().min(16).default(65_536), // links to campaigns rooted on other partitions, and applied forwards, kept each
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .refine((c) => c.limits.pairsPerEntity >= c.weights.fanOut.minTargets, {
    message: 'limits.pairsPerEntity must be at least weights.fanOut.minTargets (fan-out is counted over the recent pairs)',
    path: ['limits', 'pairsPerEntity'],
  });

export type CorrelationConfig = z.output<typeof CorrelationConfig>;
export type CorrelationConfigInput = z.input<typeof CorrelationConfig>;

export function parseCorrelationConfig(input: unknown = {}): CorrelationConfig {
  return CorrelationConfig.parse(input);
}
