import { Job } from 'bullmq';
import { isValidJobId, jobIdPart, plan, stepJobId, type PlannedStep } from '../../src/playbook/plan';
import { BASE, entity, incident, NOW, playbook } from './helpers';

type Of<T extends PlannedStep['type']> = Extract<PlannedStep, { type: T }>;
const step = <T extends PlannedStep['type']>(steps: PlannedStep[], type: T, n = 0): Of<T> =>
  steps.filter((s): s is Of<T> => s.type === type)[n] as Of<T>;
const at = (ms: number) => new Date(ms).toISOString();
const MIN = 60_000;

/** BullMQ's own check of a custom job id (Job#validateOptions), without Redis. */
function bullmqAccepts(jobId: string): boolean {
  const validate = (Job.prototype as unknown as { validateOptions(this: unknown, d: unknown): void }).validateOptions;
  try {
    validate.call({ opts: { jobId }, name: 'step' }, { data: '{}' });
    return true;
  } catch {
    return false;
  }
}

const auto = (target = 'root', extra = '') => playbook(BASE.replace('target: root', `target: ${target}`).replace('    ttl: 1h\n', `    ttl: 1h\n${extra}`));

describe('job ids', () => {
  it('are `${incidentId}.${playbook}@${version}.${stepId}`, the same on every plan', () => {
    const p = playbook(BASE);
    const a = plan(p, incident(), { now: NOW });
    const b = plan(p, incident(), { now: NOW + 3_600_000 });
    expect(a.map((s) => s.jobId)).toEqual([`inc-0123456789abcdef0123.auto@${p.version}.tell`, `inc-0123456789abcdef0123.auto@${p.version}.contain`]);
    expect(b.map((s) => s.jobId)).toEqual(a.map((s) => s.jobId));
    expect(plan(p, incident(), { now: NOW })).toEqual(a); // the whole plan is deterministic
  });

  it('change with the playbook version, so an edited playbook is a new run', () => {
    const v1 = plan(playbook(BASE), incident(), { now: NOW })[0]!.jobId;
    const v2 = plan(playbook(BASE.replace('ttl: 1h', 'ttl: 2h')), incident(), { now: NOW })[0]!.jobId;
    expect(v1).not.toBe(v2);
  });

  it('are accepted by BullMQ: no ":", never all digits, whatever the incident id', () => {
    expect(bullmqAccepts('123')).toBe(false); // the check is real
    expect(bullmqAccepts('a:b')).toBe(false);
    expect(isValidJobId('123')).toBe(false);
    expect(isValidJobId('a:b')).toBe(false);
    const p = playbook(BASE);
    for (const id of ['inc-0123456789abcdef0123', 'inc-0123456789abcdef0123-2']) {
      for (const s of plan(p, incident({ id }), { now: NOW })) {
        expect(isValidJobId(s.jobId)).toBe(true);
        expect(bullmqAccepts(s.jobId)).toBe(true);
        if (s.type === 'quarantine') for (const t of s.targets) if (t.approval) expect(bullmqAccepts(t.approval.jobId)).toBe(true);
      }
    }
    // ids from elsewhere are escaped, injectively
    expect(stepJobId('tenant:inc:7', 'auto@abc', 'x')).toBe('tenant%3Ainc%3A7.auto@abc.x');
    expect(bullmqAccepts(stepJobId('tenant:inc:7', 'auto@abc', 'x'))).toBe(true);
    expect(jobIdPart('a%3Ab')).not.toBe(jobIdPart('a:b'));
    expect(jobIdPart('ü')).toBe('%C3%BC');
  });
});

describe('quarantine targets and safety decisions', () => {
  it('auto: unprotected targets are quarantined now with an absolute expiry', () => {
    const s = step(plan(auto('all'), incident(), { now: NOW }), 'quarantine');
    expect(s.actionners).toEqual(['nftables:quarantine']);
    expect(s.labels).toEqual({ 'cordon.io/quarantine': 'true' });
    expect(s.cutConnections).toBe(true);
    const [root, pivot] = s.targets;
    expect(root).toMatchObject({ key: 'host:ws1.corp.local', decision: 'quarantine', expiresAt: { earliest: at(NOW + 60 * MIN), latest: at(NOW + 60 * MIN) } });
    expect(root!.reasons[0]).toBe('automatic (mode auto)');
    expect(pivot).toMatchObject({ key: 'host:ws2.corp.local', decision: 'quarantine' });
  });

  it('a protected target turns an automatic quarantine into "requires approval", with the reason', () => {
    const s = step(plan(auto('all'), incident(), { now: NOW }), 'quarantine');
    const dc = s.targets.find((t) => t.key === 'ip:10.0.9.5')!;
    expect(dc.decision).toBe('requires-approval');
    expect(dc.reasons).toEqual(['protected: built-in protected.0 (roles domain-controller); never quarantined without approval']);
    expect(dc.approval).toEqual({
      jobId: `${s.jobId}.approve.ip%3A10.0.9.5`,
      approvers: ['soc'],
      deadline: { earliest: at(NOW + 15 * MIN), latest: at(NOW + 15 * MIN) },
      onTimeout: 'not quarantined',
    });
    expect(dc.expiresAt).toEqual({ earliest: at(NOW + 60 * MIN), latest: at(NOW + 75 * MIN) });
  });

  it('a protected root, by the built-in list or by safety.protected', () => {
    const dcRoot = incident({
      root: 'ip:10.0.9.5',
      entities: [entity('ip:10.0.9.5', { ip: '10.0.9.5', role: 'domain-controller', position: 'root' })],
    });
    expect(step(plan(auto(), dcRoot, { now: NOW }), 'quarantine').targets[0]!.decision).toBe('requires-approval');
    const jump = playbook(BASE.replace('safety:\n', 'safety:\n  protected:\n    - names: ["ws1*"]\n'));
    const t = step(plan(jump, incident(), { now: NOW }), 'quarantine').targets[0]!;
    expect(t.decision).toBe('requires-approval');
    expect(t.reasons).toEqual(['protected: safety.protected.0 (names ws1*); never quarantined without approval']);
  });

  it('Cordon itself is protected by its label when the incident carries labels, and flagged for the enforcer when not', () => {
    const pod = (labels?: Record<string, string>) =>
      incident({
        root: 'pod:cordon/cordon-0',
        entities: [{ ...entity('pod:cordon/cordon-0', { name: 'cordon-0', ip: '10.1.0.4', position: 'root' }), ...(labels && { labels }) } as never],
      });
    const labelled = step(plan(auto(), pod({ 'app.kubernetes.io/part-of': 'cordon' }), { now: NOW }), 'quarantine').targets[0]!;
    expect(labelled.decision).toBe('requires-approval');
    expect(labelled.reasons[0]).toMatch(/^protected: built-in protected\.1 \(labels app\.kubernetes\.io\/part-of=cordon\)/);
    const unknown = step(plan(auto(), pod(), { now: NOW }), 'quarantine').targets[0]!;
    expect(unknown.decision).toBe('quarantine');
    expect(unknown.labelsKnown).toBe(false);
    expect(unknown.reasons[1]).toMatch(/^labels not in the incident: the enforcer checks built-in protected\.1/);
  });

  it('approve-then-contain: protected targets are covered by the approval; times follow the approval window', () => {
    const p = playbook(
      BASE.replace('mode: auto', 'mode: approve-then-contain')
        .replace('target: root', 'target: all')
        .replace('  - id: contain', '  - id: ask\n    type: approve\n    approvers: [soc]\n    deadline: 30m\n    on_timeout: escalate\n    escalate_to: [leads]\n  - id: contain'),
    );
    const steps = plan(p, incident(), { now: NOW });
    const ask = step(steps, 'approve');
    expect(ask).toMatchObject({
      question: 'quarantine WS1, WS2, 10.0.9.5 (step contain)?',
      deadline: { earliest: at(NOW + 30 * MIN), latest: at(NOW + 30 * MIN) },
      escalation: { approvers: ['leads'], deadline: { earliest: at(NOW + 60 * MIN), latest: at(NOW + 60 * MIN) } },
      blocking: true,
    });
    const q = step(steps, 'quarantine');
    expect(q.gatedBy).toBe('ask');
    expect(q.startsAt).toEqual({ earliest: at(NOW), latest: at(NOW + 60 * MIN) });
    expect(q.guards).toEqual([]);
    const dc = q.targets.find((t) => t.key === 'ip:10.0.9.5')!;
    expect(dc.decision).toBe('quarantine');
    expect(dc.reasons).toEqual(['approved by step "ask" (protected: built-in protected.0 (roles domain-controller); the approval covers it)']);
    expect(dc.expiresAt).toEqual({ earliest: at(NOW + 60 * MIN), latest: at(NOW + 120 * MIN) });
  });

  it('contain-now-approve-to-keep: contained at once, released by the decision deadline unless approved', () => {
    const p = playbook(
      BASE.replace('mode: auto', 'mode: contain-now-approve-to-keep').replace(
        '    ttl: 1h\n',
        '    ttl: 15m\n  - id: ask\n    type: approve\n    approvers: [oncall]\n    deadline: 5m\n    on_timeout: escalate\n    escalate_to: [leads]\n',
      ),
    );
    const steps = plan(p, incident(), { now: NOW });
    const t = step(steps, 'quarantine').targets[0]!;
    expect(t.reasons[0]).toBe('at once (mode contain-now-approve-to-keep)');
    expect(t).toMatchObject({
      decision: 'quarantine',
      expiresAt: { earliest: at(NOW + 15 * MIN), latest: at(NOW + 15 * MIN) },
      provisional: { approval: 'ask', releasedBy: at(NOW + 10 * MIN) },
    });
    expect(step(steps, 'approve').question).toBe('keep the quarantine of WS1 (step contain)?');
    expect(step(steps, 'approve').summary).toMatch(/then leads are asked with the same deadline; silence after that releases the quarantine/);
  });

  it('targets a layer cannot reach are skipped, with the reason', () => {
    const k8s = playbook(BASE.replace('enforcer: nftables', 'enforcer: kubernetes').replace('target: root', 'target: all'));
    const inc = incident({
      entities: [...incident().entities, entity('pod:shop/web-1', { name: 'web-1' }), entity('external:8.8.8.8', { ip: '8.8.8.8' })],
    });
    const targets = step(plan(k8s, inc, { now: NOW }), 'quarantine').targets;
    expect(targets.map((t) => [t.key, t.decision, t.reasons[0]])).toEqual([
      ['host:ws1.corp.local', 'skip', 'kubernetes labels pods; this is a host'],
      ['host:ws2.corp.local', 'skip', 'kubernetes labels pods; this is a host'],
      ['ip:10.0.9.5', 'skip', 'kubernetes labels pods; this is a ip'],
      ['pod:shop/web-1', 'quarantine', 'automatic (mode auto)'],
      ['external:8.8.8.8', 'skip', 'an external entity is not ours to contain'],
    ]);
    const noIp = incident({ entities: [entity('host:ws1.corp.local', { name: 'WS1', position: 'root' })] });
    expect(step(plan(auto(), noIp, { now: NOW }), 'quarantine').targets[0]!.reasons).toEqual(['nftables drops by address; no address is known for it']);
  });

  it('limits: applied from counters when given, listed as guards for the executor when not', () => {
    const p = auto('all');
    expect(step(plan(p, incident(), { now: NOW }), 'quarantine').guards).toEqual([
      'max_concurrent_quarantines 20: past it an automatic quarantine needs approval',
      'circuit_breaker 10 per 10m: past it an automatic quarantine needs approval',
    ]);
    const full = step(plan(p, incident(), { now: NOW, state: { activeQuarantines: 19, recentQuarantines: 0 } }), 'quarantine');
    expect(full.guards).toEqual([]);
    expect(full.targets.map((t) => t.decision)).toEqual(['quarantine', 'requires-approval', 'requires-approval']);
    expect(full.targets[1]!.reasons).toEqual(['max_concurrent_quarantines: 19 active + 2 would exceed 20']);
    const tripped = step(plan(p, incident(), { now: NOW, state: { activeQuarantines: 0, recentQuarantines: 10 } }), 'quarantine');
    expect(tripped.targets[0]!.reasons).toEqual(['circuit breaker open: 10 new quarantines in the last 10m + 1 would exceed 10']);
  });
});

describe('other steps', () => {
  it('notify renders the message; enrich quotes every value as an SPL string', () => {
    const p = playbook(
      BASE.replace('message: hi {{ incident.id }}', 'message: "{{ incident.severity }} from {{ root.name }} by {{ playbook.id }}"').replace(
        '  - id: contain',
        '  - id: look\n    type: enrich\n    source: splunk\n    query: search host={{ root.name }} earliest=-1h\n  - id: contain',
      ),
    );
    const hostile = incident({ entities: incident().entities.map((e) => (e.position === 'root' ? { ...e, name: 'WS1" | delete' } : e)) });
    const steps = plan(p, hostile, { now: NOW });
    expect(step(steps, 'notify')).toMatchObject({ actionners: ['splunk:notify'], message: `high from WS1" | delete by ${p.id}` });
    expect(step(steps, 'enrich')).toMatchObject({ actionners: ['splunk:enrich'], query: 'search host="WS1\\" | delete" earliest=-1h' });
  });

  it('wait: a duration moves every later step; until approval waits for a non-blocking approve', () => {
    const p = playbook(
      BASE.replace('mode: auto', 'mode: approve-then-contain').replace(
        '  - id: contain',
        '  - id: ask\n    type: approve\n    approvers: [soc]\n    deadline: 20m\n    on_timeout: release\n    blocking: false\n' +
          '  - id: pause\n    type: wait\n    duration: 5m\n  - id: hold\n    type: wait\n    until: approval\n  - id: contain',
      ),
    );
    const steps = plan(p, incident(), { now: NOW });
    expect(step(steps, 'wait', 0).endsAt).toEqual({ earliest: at(NOW + 5 * MIN), latest: at(NOW + 5 * MIN) });
    expect(step(steps, 'wait', 1).endsAt).toEqual({ earliest: at(NOW + 5 * MIN), latest: at(NOW + 20 * MIN) });
    const q = step(steps, 'quarantine');
    expect(q.gatedBy).toBe('ask');
    expect(q.targets[0]!.expiresAt).toEqual({ earliest: at(NOW + 65 * MIN), latest: at(NOW + 80 * MIN) });
  });

  it('release: what this run quarantined, by step; the rest is skipped', () => {
    const p = playbook(BASE.replace('    ttl: 1h\n', '    ttl: 1h\n  - id: pause\n    type: wait\n    duration: 10m\n  - id: undo\n    type: release\n    target: all\n'));
    const r = step(plan(p, incident(), { now: NOW }), 'release');
    expect(r.actionners).toEqual(['nftables:release']);
    expect(r.startsAt.earliest).toBe(at(NOW + 10 * MIN));
    expect(r.targets.map((t) => [t.key, t.decision])).toEqual([
      ['host:ws1.corp.local', 'release'],
      ['host:ws2.corp.local', 'skip'],
      ['ip:10.0.9.5', 'skip'],
    ]);
  });

  it('dry_run marks every step', () => {
    const steps = plan(playbook(BASE.replace('mode: auto', 'mode: auto\ndry_run: true')), incident(), { now: NOW });
    for (const s of steps) {
      expect(s.dryRun).toBe(true);
      expect(s.notes).toContain('dry run: logged and recorded, nothing is sent or changed');
    }
  });
});
