import type { Incident } from '../correlate/incident';
import type { PolicyGapFinding } from '../correlate/policy-gap';
import type { AttackTruth, EntityRef, GroundTruth } from './groundtruth';

/**
 * Detection quality of the correlation engine against a scenario's ground truth, at incident level:
 *
 * - recall: attacks matched by an incident rooted at the attack's root entity whose activity
 *   window overlaps the attack's;
 * - precision: incidents that match an attack (rooted at its root, or at a pivot it compromised,
 *   overlapping in time) over all incidents (every engine incident is a lateral-movement one).
 *
 * An incident rooted at a pivot is a true detection but a fragmented campaign (one campaign
 * should be one incident): it counts for precision, not for recall, and is listed. Misses and
 * false positives come with the reason, as far as the ground truth can tell it.
 */

export interface EvaluateOptions {
  /** Tolerance around the attack window when checking overlap (default 30 min). */
  slackMs?: number;
  /** The engine's policy-gap findings, to check the benign policy gaps were recognised as such. */
  policyGaps?: readonly PolicyGapFinding[];
}

export interface AttackOutcome {
  id: string;
  kind: AttackTruth['kind'];
  pace: AttackTruth['pace'];
  hops: number;
  anomalies: boolean;
  root: string;
  detected: boolean;
  /** Incidents rooted at the attack's root (recall) and at its pivots (fragments). */
  incidents: string[];
  fragments: string[];
  techniquesExpected: string[];
  techniquesFound: string[];
  /** Incident score and severity of the best match. */
  score?: number;
  severity?: string;
  reason?: string;
}

export interface IncidentOutcome {
  id: string;
  root: string;
  rootName: string;
  score: number;
  severity: string;
  firstSeen: number;
  lastSeen: number;
  match: 'root' | 'pivot' | 'none';
  attack?: string;
  reason?: string;
  summary: string;
}

export interface PolicyGapOutcome {
  src: string;
  dst: string;
  port: number;
  reported: boolean;
  /** Incidents rooted at the gap's source (they should not exist). */
  incidents: string[];
}

export interface Evaluation {
  attacks: number;
  detected: number;
  recall: number;
  incidents: number;
  truePositives: number;
  precision: number;
  misses: AttackOutcome[];
  falsePositives: IncidentOutcome[];
  fragments: IncidentOutcome[];
  perAttack: AttackOutcome[];
  perIncident: IncidentOutcome[];
  policyGaps: PolicyGapOutcome[];
}

const MIN = 60_000;

export function evaluate(truth: GroundTruth, incidents: readonly Incident[], options: EvaluateOptions = {}): Evaluation {
  const slack = options.slackMs ?? 30 * MIN;
  const overlaps = (inc: Incident, a: AttackTruth) => inc.firstSeen <= a.end + slack && inc.lastSeen >= a.start - slack;

  const perIncident: IncidentOutcome[] = incidents.map((inc) => {
    const root = rootEntity(inc);
    const base = {
      id: inc.id,
      root: inc.root,
      rootName: root.name ?? root.ip ?? inc.root,
      score: inc.score,
      severity: inc.severity,
      firstSeen: inc.firstSeen,
      lastSeen: inc.lastSeen,
      summary: inc.summary,
    };
    for (const a of truth.attacks) {
      if (sameEntity(root, a.root) && overlaps(inc, a)) return { ...base, match: 'root' as const, attack: a.id };
    }
    for (const a of truth.attacks) {
      if (a.compromised.some((c) => sameEntity(root, c)) && overlaps(inc, a)) {
        return { ...base, match: 'pivot' as const, attack: a.id, reason: `rooted at a pivot of ${a.id} (campaign split from ${a.root.short})` };
      }
    }
    return { ...base, match: 'none' as const, reason: falsePositiveReason(truth, inc, root, overlaps) };
  });

  const perAttack: AttackOutcome[] = truth.attacks.map((a) => {
    const rooted = incidents.filter((inc) => sameEntity(rootEntity(inc), a.root) && overlaps(inc, a));
    const fragments = perIncident.filter((o) => o.match === 'pivot' && o.attack === a.id).map((o) => o.id);
    const best = rooted.reduce<Incident | undefined>((b, inc) => (b === undefined || inc.score > b.score ? inc : b), undefined);
    const found = new Set(rooted.flatMap((inc) => inc.techniques));
    const outcome: AttackOutcome = {
      id: a.id,
      kind: a.kind,
      pace: a.pace,
      hops: a.hops,
      anomalies: a.anomalies,
      root: a.root.short,
      detected: rooted.length > 0,
      incidents: rooted.map((inc) => inc.id),
      fragments,
      techniquesExpected: a.techniques,
      techniquesFound: a.techniques.filter((t) => found.has(t) || [...found].some((f) => f.startsWith(t + '.') || t.startsWith(f + '.'))),
    };
    if (best) {
      outcome.score = best.score;
      outcome.severity = best.severity;
    } else {
      outcome.reason = missReason(a, incidents, overlaps);
    }
    return outcome;
  });

  const policyGaps: PolicyGapOutcome[] = truth.policyGaps.map((g) => ({
    src: g.src.short,
    dst: g.dst.short,
    port: g.port,
    reported: (options.policyGaps ?? []).some(
      (f) => f.port === g.port && sameParty(f.src, g.src) && sameParty(f.dst, g.dst),
    ),
    incidents: perIncident.filter((o) => o.match === 'none' && sameEntity(rootEntity(incidents.find((i) => i.id === o.id)!), g.src)).map((o) => o.id),
  }));

  const detected = perAttack.filter((o) => o.detected).length;
  const truePositives = perIncident.filter((o) => o.match !== 'none').length;
  return {
    attacks: perAttack.length,
    detected,
    recall: perAttack.length === 0 ? 1 : detected / perAttack.length,
    incidents: perIncident.length,
    truePositives,
    precision: perIncident.length === 0 ? 1 : truePositives / perIncident.length,
    misses: perAttack.filter((o) => !o.detected),
    falsePositives: perIncident.filter((o) => o.match === 'none'),
    fragments: perIncident.filter((o) => o.match === 'pivot'),
    perAttack,
    perIncident,
    policyGaps,
  };
}

/** A few lines for a test log or the CLI. */
export function formatEvaluation(e: Evaluation, label = ''): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const lines = [
    `${label ? label + ': ' : ''}recall ${pct(e.recall)} (${e.detected}/${e.attacks} attacks), precision ${pct(e.precision)} (${e.truePositives}/${e.incidents} incidents)`,
  ];
  for (const m of e.misses) lines.push(`  MISS ${m.id} (${m.pace}, ${m.hops} hop, anomalies ${m.anomalies ? 'yes' : 'no'}) root ${m.root}: ${m.reason}`);
  for (const f of e.falsePositives) lines.push(`  FALSE POSITIVE ${f.id} root ${f.rootName} score ${f.score}: ${f.reason}`);
  for (const f of e.fragments) lines.push(`  FRAGMENT ${f.id} root ${f.rootName}: ${f.reason}`);
  for (const g of e.policyGaps) {
    if (g.incidents.length) lines.push(`  POLICY GAP ${g.src} -> ${g.dst}:${g.port} raised ${g.incidents.join(', ')}`);
  }
  return lines.join('\n');
}

// ---- identity --------------------------------------------------------------------------------

interface RootView {
  key: string;
  name?: string;
  ip?: string;
}

function rootEntity(inc: Incident): RootView {
  const e = inc.entities.find((x) => x.key === inc.root);
  const out: RootView = { key: inc.root };
  if (e?.name) out.name = e.name;
  if (e?.ip) out.ip = e.ip;
  if (!out.ip && inc.root.startsWith('ip:')) out.ip = inc.root.slice(3);
  return out;
}

/** Whether an engine entity (key, name, address) is the ground-truth entity. */
export function sameEntity(e: RootView, ref: EntityRef): boolean {
  if (e.ip !== undefined && e.ip === ref.ip) return true;
  const key = e.key.toLowerCase();
  if (key === `ip:${ref.ip}` || key === `host:${ref.name.toLowerCase()}`) return true;
  if (ref.kind === 'pod' && key === `pod:${ref.namespace}/${ref.name}`.toLowerCase()) return true;
  if (ref.kind === 'node' && key.startsWith('node:') && key.endsWith(`/${ref.name.toLowerCase()}`)) return true;
  return false;
}

function sameParty(p: { key: string; name?: string; ip?: string }, ref: EntityRef): boolean {
  return sameEntity({ key: p.key, ...(p.name ? { name: p.name } : {}), ...(p.ip ? { ip: p.ip } : {}) }, ref);
}

// ---- reasons ---------------------------------------------------------------------------------

function falsePositiveReason(truth: GroundTruth, inc: Incident, root: RootView, overlaps: (i: Incident, a: AttackTruth) => boolean): string {
  const allow = truth.allowlisted.find((x) => sameEntity(root, x.entity));
  if (allow) return `allowlisted ${allow.purpose} ${allow.entity.short} raised an incident (allowlist not applied?)`;
  const gap = truth.policyGaps.find((g) => sameEntity(root, g.src));
  if (gap) return `policy-gap source ${gap.src.short} (retrying ${gap.dst.short}:${gap.port}: ${gap.why})`;
  for (const a of truth.attacks) {
    if (a.victims.some((v) => sameEntity(root, v)) && overlaps(inc, a)) return `rooted at a victim of ${a.id}, not at its attacker ${a.root.short}`;
    if (sameEntity(root, a.root)) return `rooted at the attacker of ${a.id} but outside its window (${iso(a.start)}..${iso(a.end)})`;
  }
  const edges = inc.path.edges.map((e) => `${shortKey(e.from)}->${shortKey(e.to)}:${e.ports.join('/')} (${e.denied} denied)`).slice(0, 4);
  const rules = Object.entries(inc.evidence.byRule).map(([r, t]) => `${r} x${t!.count} (${t!.weight})`);
  return `benign entity ${root.name ?? root.ip ?? root.key}: ${edges.join(', ') || 'no path'}; evidence ${rules.join(', ')}`;
}

function missReason(a: AttackTruth, incidents: readonly Incident[], overlaps: (i: Incident, a: AttackTruth) => boolean): string {
  const elsewhere = incidents.filter((inc) => overlaps(inc, a) && inc.entities.some((e) => sameEntity(e, a.root)));
  if (elsewhere.length) {
    const inc = elsewhere[0]!;
    return `the root appears in ${inc.id} rooted at ${rootEntity(inc).name ?? inc.root} (as ${inc.entities.find((e) => sameEntity(e, a.root))?.position})`;
  }
  const late = incidents.filter((inc) => sameEntity(rootEntity(inc), a.root));
  if (late.length) return `incidents rooted at ${a.root.short} exist but outside the attack window: ${late.map((i) => `${i.id} ${iso(i.firstSeen)}..${iso(i.lastSeen)}`).join(', ')}`;
  const deniedPairs = new Set<string>();
  for (const h of a.path) if (h.denied > 0) for (const p of h.ports) deniedPairs.add(`${h.to.short}:${p}`);
  return (
    `no incident involves ${a.root.short}; the attack made ${a.deniedAttempts} denied and ${a.allowedAttempts} permitted attempts ` +
    `over ${Math.round((a.end - a.start) / MIN)} min, ${deniedPairs.size} distinct destination/port pairs seen denied (${[...deniedPairs].slice(0, 6).join(', ')})` +
    `, formats ${a.formats.join('+')}`
  );
}

function shortKey(key: string): string {
  const slash = key.lastIndexOf('/');
  const colon = key.indexOf(':');
  return key.slice(Math.max(slash, colon) + 1).split('.')[0]!;
}

function iso(t: number): string {
  return new Date(t).toISOString().slice(0, 19) + 'Z';
}
