import { z } from 'zod';
import { SEVERITIES } from '../correlate/incident';
import { Duration, duration, durationMs, formatDuration } from './duration';
import { EntitySelector, IncidentSelector, LabelKey, LabelValue } from './selector';
import { Template } from './template';

/**
 * The playbook model (DESIGN.md section 3): what a playbook file may say, checked field by field
 * and then as a whole (the cross-field rules in `checkPlaybook`). The `.describe()` texts are the
 * documentation editors show from playbooks/playbook.schema.json.
 */

export const API_VERSION = 'cordon.io/v1';
export const KIND = 'Playbook';

export const MODES = ['approve-then-contain', 'contain-now-approve-to-keep', 'notify-only', 'auto'] as const;
export type Mode = (typeof MODES)[number];
export const STEP_TYPES = ['notify', 'enrich', 'approve', 'quarantine', 'wait', 'release'] as const;
export type StepType = (typeof STEP_TYPES)[number];
/** Enforcement layers: the first half of an actionner name, `<layer>:<action>`. */
export const ENFORCERS = ['nftables', 'kubernetes', 'illumio', 'webhook', 'labelstore'] as const;
export type Enforcer = (typeof ENFORCERS)[number];
/** Channels every deployment has: the notify record reaches them through the ledger (the SIEM stage). */
export const SIEM_CHANNELS = ['splunk', 'elasticsearch'] as const;
export const ENRICH_SOURCES = ['splunk'] as const;
export const QUARANTINE_TARGETS = ['root', 'pivots', 'targets', 'all'] as const;
export type QuarantineTarget = (typeof QUARANTINE_TARGETS)[number];
export const ON_TIMEOUT = ['approve', 'release', 'escalate'] as const;

export const DEFAULT_QUARANTINE_LABELS: Readonly<Record<string, string>> = { 'cordon.io/quarantine': 'true' };
/** A quarantine TTL above this needs `allow_long_ttl` with a reason. */
export const MAX_TTL_MS = 24 * 3_600_000;
/** No TTL above this, reason or not: longer than a week is an extension decision, made by a person. */
export const HARD_MAX_TTL_MS = 7 * 24 * 3_600_000;

/** Always protected, whatever a playbook says (a playbook can add, never remove). */
export const DEFAULT_PROTECTED: readonly EntitySelector[] = [
  { roles: ['domain-controller'] },
  { labels: { 'app.kubernetes.io/part-of': 'cordon' } },
];

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const Identifier = (what: string) =>
  z.string().regex(DNS_LABEL, { error: `expected a ${what}: lower-case letters, digits and '-', at most 63, alphanumeric at both ends` });

const Group = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._@/:-]*$/, { error: 'expected a group name such as soc-oncall' });
const Groups = z.array(Group).min(1).max(32);

const Technique = z
  .string()
  .regex(/^T\d{4}(\.\d{3})?$/, { error: 'expected an ATT&CK technique id such as T1021 or T1021.002' });

const stepBase = {
  id: Identifier('step id').describe(
    'unique within the playbook; part of the step\'s job id `<incident>.<playbook>@<version>.<step id>`, so keep it once the playbook is in use',
  ),
  description: z.string().min(1).max(500).optional().describe('what the step is for, for reviewers'),
};

const requiredFor = (what: string) => ({
  error: (iss: { input?: unknown }) => (iss.input === undefined ? `required for ${what}` : undefined),
});

export const NotifyStep = z
  .strictObject({
    ...stepBase,
    type: z.literal('notify'),
    channels: z
      .array(Identifier('channel name'), requiredFor('a notify step'))
      .min(1)
      .refine((c) => new Set(c).size === c.length, { error: 'names a channel twice' })
      .describe(
        `where to send the message (actionner <channel>:notify): ${SIEM_CHANNELS.join(', ')} (through the ledger), or the name of a webhook, Slack or Teams channel in the service config (notify.channels), checked when containment starts`,
      ),
    message: Template.describe(
      'the message text; {{ variable }} placeholders from a fixed list (incident.id, incident.severity, incident.summary, root.name, targets, playbook.id, ...)',
    ),
  })
  .describe('send a message (an event to Splunk HEC / an Elasticsearch document / a webhook POST)');

export const EnrichStep = z
  .strictObject({
    ...stepBase,
    type: z.literal('enrich'),
    source: z.enum(ENRICH_SOURCES, requiredFor('an enrich step')).describe('where to look up context: splunk (a search)'),
    query: Template.optional().describe(
      'search text; each {{ variable }} is inserted as a quoted, escaped SPL string. Without it, the built-in search for the incident entities runs',
    ),
  })
  .describe('attach context to the incident (a Splunk search over the incident entities); never blocks containment');

export const ApproveStep = z
  .strictObject({
    ...stepBase,
    type: z.literal('approve'),
    approvers: Groups.describe('groups whose members may approve or reject (any one decision settles it)'),
    deadline: Duration.describe('how long the inquiry stays open; then on_timeout applies'),
    on_timeout: z
      .enum(ON_TIMEOUT, requiredFor('an approve step (approve, release or escalate: say what silence means)'))
      .describe(
        'what silence means when the deadline passes: approve (proceed as if approved), release (as if rejected: nothing is contained, or what this run contained is released), escalate (ask escalate_to, with the same deadline again; silence then counts as release)',
      ),
    escalate_to: Groups.optional().describe('groups asked when the deadline passes; required when on_timeout is escalate, refused otherwise'),
    blocking: z
      .boolean()
      .default(true)
      .describe('true (default): the run waits here for the decision. false: the inquiry opens and the run goes on; a later `wait: {until: approval}` waits for it, and its decision still applies when it comes'),
  })
  .describe('an inquiry (human approval) as a step of its own');

export const QuarantineStep = z
  .strictObject({
    ...stepBase,
    type: z.literal('quarantine'),
    target: z
      .enum(QUARANTINE_TARGETS, requiredFor('a quarantine step (root, pivots, targets or all)'))
      .describe('which incident entities: root (the source), pivots (targets that attacked onward), targets (every non-root entity), all'),
    enforcer: z
      .enum(ENFORCERS, requiredFor('a quarantine step'))
      .describe(
        'the enforcement layer; the actionner is <enforcer>:quarantine (kubernetes: pods; illumio: hosts and VMs; nftables: anything with an address; webhook: anything; labelstore: labels kept in Redis only, for tests and benchmarks)',
      ),
    labels: z
      .record(LabelKey, LabelValue)
      .default({ ...DEFAULT_QUARANTINE_LABELS })
      .describe('labels the quarantine sets (Kubernetes, Illumio, webhook); default cordon.io/quarantine: "true". Recorded in the lease for nftables'),
    ttl: duration('required for a quarantine step').describe(`required: how long the quarantine holds before it expires on its own; at most ${formatDuration(MAX_TTL_MS)} unless allow_long_ttl`),
    allow_long_ttl: z
      .strictObject({
        reason: z.string().min(10).max(500).describe('why this playbook needs a longer TTL (written to the ledger with every such quarantine)'),
      })
      .optional()
      .describe(`permits a ttl above ${formatDuration(MAX_TTL_MS)} (never above ${formatDuration(HARD_MAX_TTL_MS)})`),
    cut_connections: z.boolean().default(true).describe('also cut established connections of the target (default true); false only blocks new ones'),
    max_extension: Duration.optional().describe(
      `the longest one extension of this quarantine may ask (POST /api/quarantines/:entity/extend); the lower of this and contain.maxExtensionMs applies; at most ${formatDuration(HARD_MAX_TTL_MS)}`,
    ),
    max_lifetime: Duration.optional().describe(
      'how long, from its first apply, extensions may keep this quarantine in place; the lower of this and contain.maxLifetimeMs applies; at least the ttl',
    ),
  })
  .describe('contain entities for a bounded time');

export const WaitStep = z
  .strictObject({
    ...stepBase,
    type: z.literal('wait'),
    duration: Duration.optional().describe('pause this long'),
    until: z.literal('approval').optional().describe('pause until the latest earlier non-blocking approve step is decided'),
  })
  .describe('pause the run: exactly one of duration, until');

export const ReleaseStep = z
  .strictObject({
    ...stepBase,
    type: z.literal('release'),
    target: z
      .enum(QUARANTINE_TARGETS, requiredFor('a release step (root, pivots, targets or all)'))
      .describe('which entities this run releases (its hold on their leases; another incident\'s hold stays)'),
    enforcer: z.enum(ENFORCERS).optional().describe('only the quarantines made with this enforcer (default: all of this run\'s)'),
  })
  .describe('release what earlier quarantine steps of this run contained, before their TTL');

export const Step = z.discriminatedUnion('type', [NotifyStep, EnrichStep, ApproveStep, QuarantineStep, WaitStep, ReleaseStep], {
  error: (iss) =>
    iss.code === 'invalid_union' ? `type must be one of ${STEP_TYPES.join(', ')}` : undefined,
});
export type Step = z.output<typeof Step>;
export type StepOf<T extends StepType> = Extract<Step, { type: T }>;

const SeverityLevel = z.enum(SEVERITIES);

export const Match = z
  .strictObject({
    severity: z
      .union([SeverityLevel, z.array(SeverityLevel).min(1)], {
        error: `expected a severity (${SEVERITIES.join(', ')}) or a list of them`,
      })
      .optional()
      .describe('a minimum (high: high or critical) or a list of exact severities ([low, medium])'),
    confidence: z.number().min(0).max(1).optional().describe('the minimum confidence, 0..1'),
    techniques: z
      .array(Technique)
      .min(1)
      .optional()
      .describe('any of these ATT&CK techniques; a technique also matches its sub-techniques (T1021 matches T1021.002, not the reverse)'),
    entities: z
      .array(IncidentSelector)
      .min(1)
      .optional()
      .describe('every one of these must hold (each: some entity named by `on` matches it)'),
    exclude: z
      .array(IncidentSelector)
      .min(1)
      .optional()
      .describe('if any one of these holds, the playbook does not match'),
  })
  .describe('when the playbook applies: every criterion given must hold; an empty match applies to every incident');
export type Match = z.output<typeof Match>;

export const Safety = z
  .strictObject({
    protected: z
      .array(EntitySelector)
      .default([])
      .describe(
        'entities never quarantined without a human approval, added to the built-in ones (role domain-controller; label app.kubernetes.io/part-of=cordon)',
      ),
    protected_approval: z
      .strictObject({
        approvers: Groups.describe('who approves quarantining a protected entity'),
        deadline: Duration.describe('how long they have; silence means the protected entity is not quarantined'),
      })
      .optional()
      .describe('the inquiry opened for a protected entity that a step would quarantine without approval; required in auto and contain-now-approve-to-keep modes'),
    max_concurrent_quarantines: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(20)
      .describe("at most this many live quarantines held by this playbook's runs, counted as each is applied; past it a new automatic one needs approval"),
    circuit_breaker: z
      .strictObject({
        max_new_quarantines: z.number().int().min(1).max(100_000).default(10).describe('new quarantines allowed per window'),
        per: Duration.default('10m').describe('the window'),
      })
      .prefault({})
      .describe("when this playbook made max_new_quarantines automatic ones within the window, a new automatic one needs approval until the window moves on (default 10 per 10m)"),
  })
  .prefault({})
  .describe('safety rails applied to every quarantine this playbook plans');
export type Safety = z.output<typeof Safety>;

export const PlaybookObject = z
  .strictObject({
    apiVersion: z.literal(API_VERSION, { error: `expected ${API_VERSION}` }).describe(`always ${API_VERSION}`),
    kind: z.literal(KIND, { error: `expected ${KIND}` }).describe(`always ${KIND}`),
    name: Identifier('playbook name').describe('unique among the loaded playbooks; with the content version it names the playbook in job ids and the ledger (name@version)'),
    description: z.string().min(1).max(2000).describe('what the playbook is for and when it applies'),
    priority: z
      .number()
      .int()
      .min(0)
      .max(10_000)
      .describe('when several playbooks match an incident, the highest priority runs (priorities are unique among loaded playbooks)'),
    mode: z
      .enum(MODES)
      .describe(
        'approve-then-contain: no quarantine before an approval; contain-now-approve-to-keep: quarantine at once, keep it only if approved; notify-only: never contain; auto: contain without asking (protected entities still need approval)',
      ),
    dry_run: z.boolean().default(false).describe('plan and log every step, touch nothing'),
    match: Match,
    steps: z.array(Step).min(1).max(32).describe('run in order; each is one job with a deterministic id'),
    safety: Safety,
  })
  .describe('A Cordon response playbook');

/** The whole model: the fields, then (only when every field is valid) the cross-field rules. */
export const PlaybookSchema = PlaybookObject.superRefine(
  (p, ctx) => {
    for (const issue of checkPlaybook(p)) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
  },
  { when: (payload) => payload.issues.length === 0 },
);
export type PlaybookSpec = z.output<typeof PlaybookSchema>;

export interface RuleIssue {
  path: (string | number)[];
  message: string;
}

/**
 * Whether a step at each index runs after an approval of this run was decided: a blocking approve,
 * or a wait until approval after a non-blocking one. Index i: the state before step i runs.
 */
export function approvalGates(steps: readonly Step[]): (string | undefined)[] {
  const gates: (string | undefined)[] = [];
  let gate: string | undefined;
  let pending: string | undefined;
  for (const s of steps) {
    gates.push(gate);
    if (s.type === 'approve') {
      if (s.blocking) gate = s.id;
      else pending = s.id;
    } else if (s.type === 'wait' && s.until === 'approval' && pending) {
      gate = pending;
      pending = undefined;
    }
  }
  return gates;
}

/** Longest time an approve step can stay undecided (an escalation asks again, with the same deadline). */
export function approvalSpanMs(s: StepOf<'approve'>): number {
  return durationMs(s.deadline) * (s.on_timeout === 'escalate' ? 2 : 1);
}

/** The cross-field rules. Each issue names the field it is about, for file:line:col reporting. */
export function checkPlaybook(p: z.output<typeof PlaybookObject>): RuleIssue[] {
  const issues: RuleIssue[] = [];
  const add = (path: (string | number)[], message: string) => issues.push({ path, message });
  const steps = p.steps;
  const at = (i: number, field?: string) => (field ? ['steps', i, field] : ['steps', i]);

  // Step ids are unique: they are job ids.
  const seen = new Map<string, number>();
  steps.forEach((s, i) => {
    const first = seen.get(s.id);
    if (first !== undefined) add(at(i, 'id'), `duplicate step id "${s.id}" (also steps.${first}.id); step ids are part of job ids`);
    else seen.set(s.id, i);
  });

  const quarantines = steps.flatMap((s, i) => (s.type === 'quarantine' ? [{ s, i }] : []));
  const approves = steps.flatMap((s, i) => (s.type === 'approve' ? [{ s, i }] : []));
  const gates = approvalGates(steps);

  // Per-step rules.
  let quarantinedBefore = false;
  let nonBlockingApproveBefore = false;
  steps.forEach((s, i) => {
    switch (s.type) {
      case 'quarantine': {
        const ttl = durationMs(s.ttl);
        if (ttl > HARD_MAX_TTL_MS) {
          add(at(i, 'ttl'), `${s.ttl} is above the hard limit of ${formatDuration(HARD_MAX_TTL_MS)}; longer containment is an audited extension, not a playbook`);
        } else if (ttl > MAX_TTL_MS && !s.allow_long_ttl) {
          add(at(i, 'ttl'), `${s.ttl} is above ${formatDuration(MAX_TTL_MS)}: shorten it, or add allow_long_ttl: {reason: ...}`);
        }
        if (s.allow_long_ttl && ttl <= MAX_TTL_MS) {
          add(at(i, 'allow_long_ttl'), `not needed: ttl ${s.ttl} is within ${formatDuration(MAX_TTL_MS)} (remove it so the exception stays rare)`);
        }
        if (s.max_extension !== undefined && durationMs(s.max_extension) > HARD_MAX_TTL_MS) {
          add(at(i, 'max_extension'), `${s.max_extension} is above the hard limit of ${formatDuration(HARD_MAX_TTL_MS)}`);
        }
        if (s.max_lifetime !== undefined && durationMs(s.max_lifetime) < ttl) {
          add(at(i, 'max_lifetime'), `${s.max_lifetime} is shorter than the ttl ${s.ttl}: the quarantine would outlive its own bound`);
        }
        quarantinedBefore = true;
        break;
      }
      case 'approve':
        if (s.on_timeout === 'escalate' && !s.escalate_to) add(at(i, 'escalate_to'), 'required when on_timeout is escalate');
        if (s.on_timeout !== 'escalate' && s.escalate_to) add(at(i, 'escalate_to'), `only used when on_timeout is escalate (it is ${s.on_timeout})`);
        if (!s.blocking) nonBlockingApproveBefore = true;
        break;
      case 'wait':
        if ((s.duration === undefined) === (s.until === undefined)) {
          add(at(i), 'a wait step needs exactly one of duration, until');
        } else if (s.until === 'approval' && !nonBlockingApproveBefore) {
          add(at(i, 'until'), 'nothing to wait for: no earlier approve step with blocking: false (a blocking approve already waits)');
        }
        break;
      case 'release':
        if (!quarantinedBefore) add(at(i), 'nothing to release: no earlier quarantine step');
        break;
      case 'notify':
      case 'enrich':
        break;
    }
  });

  // Mode rules.
  switch (p.mode) {
    case 'notify-only':
      steps.forEach((s, i) => {
        if (s.type === 'quarantine' || s.type === 'release' || s.type === 'approve') {
          add(at(i, 'type'), `a notify-only playbook has no ${s.type} step (use another mode to contain)`);
        }
      });
      break;
    case 'auto':
      if (quarantines.length === 0) add(['steps'], 'an auto playbook needs a quarantine step (or use mode notify-only)');
      for (const { i } of approves) {
        add(at(i, 'type'), 'an auto playbook does not ask for approval (use approve-then-contain or contain-now-approve-to-keep)');
      }
      break;
    case 'approve-then-contain':
      if (quarantines.length === 0) add(['steps'], 'an approve-then-contain playbook needs a quarantine step (or use mode notify-only)');
      for (const { s, i } of quarantines) {
        if (gates[i] === undefined) {
          add(
            at(i),
            `quarantine "${s.id}" runs before any approval is decided: approve-then-contain needs an approve step before it (or a wait: {until: approval} after a non-blocking one)`,
          );
        }
      }
      break;
    case 'contain-now-approve-to-keep': {
      const first = quarantines[0];
      if (!first) {
        add(['steps'], 'a contain-now-approve-to-keep playbook needs a quarantine step, then an approve step');
        break;
      }
      const keep = approves.find((a) => a.i > first.i);
      if (!keep) {
        add(['steps'], `contain-now-approve-to-keep needs an approve step after quarantine "${first.s.id}" (the decision to keep it)`);
        break;
      }
      if (gates[first.i] !== undefined) {
        add(at(first.i), `contain-now-approve-to-keep quarantines first: quarantine "${first.s.id}" comes after approval "${gates[first.i]}" (use approve-then-contain)`);
      }
      if (keep.s.on_timeout === 'approve') {
        add(
          at(keep.i, 'on_timeout'),
          'must be release or escalate in contain-now-approve-to-keep: containment is kept only by a decision (silence that keeps it is mode auto)',
        );
      }
      // From each quarantine before it to the latest decision: the waits in between, then the approval.
      for (const { s, i } of quarantines.filter((q) => q.i < keep.i)) {
        const waits = steps.slice(i + 1, keep.i).reduce((ms, w) => ms + (w.type === 'wait' && w.duration ? durationMs(w.duration) : 0), 0);
        const span = waits + approvalSpanMs(keep.s);
        if (span > durationMs(s.ttl)) {
          const why = [keep.s.on_timeout === 'escalate' && 'with the escalation', waits > 0 && `after ${formatDuration(waits)} of waits`].filter(Boolean);
          add(
            at(keep.i, 'deadline'),
            `the decision can take ${formatDuration(span)}${why.length ? ` (${why.join(', ')})` : ''}, longer than quarantine "${s.id}" holds (ttl ${s.ttl}): it would expire undecided`,
          );
        }
      }
      break;
    }
  }

  // Safety: a quarantine that can run without an approval needs someone to ask about protected entities.
  const ungated = quarantines.some(({ i }) => gates[i] === undefined);
  if (ungated && !p.safety.protected_approval) {
    add(['safety'], `protected_approval is required: quarantine steps of this ${p.mode} playbook run without an approval, and protected entities (domain controllers, Cordon itself, safety.protected) need one`);
  }
  return issues;
}
