import type { Run } from '../../src/contain/runner';
import { askedByRun, changeEntry, switchRun, switchTarget, type SwitchedRun } from '../../src/contain/switch-plan';
import { CARRIED_IN_RECORD, LedgerEntry } from '../../src/ledger/records';
import { select } from '../../src/playbook/match';
import { plan, type PlannedStep } from '../../src/playbook/plan';
import { BASE, incident, NOW, playbook } from '../playbook/helpers';

type Quarantine = Extract<PlannedStep, { type: 'quarantine' }>;
const first = playbook(BASE);
const wider = playbook(
  BASE.replace('name: auto', 'name: wider')
    .replace('priority: 10', 'priority: 20')
    .replace('channels: [splunk]', 'channels: [splunk, elasticsearch]')
    .replace('  - id: contain\n', '  - id: look\n    type: enrich\n    source: splunk\n  - id: contain\n')
    .replace('target: root', 'target: all'),
);
const runOf = (p = first): SwitchedRun => ({
  incidentId: incident().id,
  playbookId: p.id,
  actor: `playbook:${p.id}`,
  incident: incident(),
  steps: plan(p, incident(), { now: NOW }),
  startedAt: NOW,
  description: p.spec.description,
});
const ROOT = 'host:ws1.corp.local';

describe('switching a run to another playbook (pure)', () => {
  const done = { claimed: new Set(['notify:tell:splunk', 'enrich:look', 'job:whatever']), held: new Map([[ROOT, 'already quarantined for this incident (lease applied)']]) };
  const { run, carried } = switchRun(runOf(), wider, incident({ severity: 'critical', version: 4 }), { now: NOW + 60_000 }, done);

  it('chooses another playbook only when the selection names one the run does not follow', () => {
    expect(switchTarget(runOf(), select([first, wider], incident()))?.id).toBe(wider.id);
    expect(switchTarget(runOf(wider), select([first, wider], incident()))).toBeUndefined();
    expect(switchTarget(runOf(), select([playbook(BASE.replace('severity: high', 'severity: critical'))], incident()))).toBeUndefined();
  });

  it('leaves out what the incident already had: a notified channel, an enrich, a quarantined target', () => {
    expect(carried).toEqual([
      { step: 'tell', identity: 'notify:tell:splunk', why: 'already notified splunk for this incident' },
      { step: 'look', identity: 'enrich:look', why: 'already enriched for this incident' },
      { step: 'contain', identity: `quarantine:${ROOT}`, why: 'already quarantined for this incident (lease applied)' },
    ]);
    expect(run.steps.map((s) => [s.index, s.id, s.type])).toEqual([
      [0, 'tell', 'notify'],
      [1, 'contain', 'quarantine'],
    ]);
    expect(run.steps[0]).toMatchObject({ channels: ['elasticsearch'], actionners: ['elasticsearch:notify'] });
    const q = run.steps[1] as Quarantine;
    expect(q.targets.map((t) => [t.key, t.decision])).toEqual([
      [ROOT, 'skip'],
      ['host:ws2.corp.local', 'quarantine'],
      ['ip:10.0.9.5', 'requires-approval'],
    ]);
    expect(q.targets[0]!.reasons.at(-1)).toBe('not again: already quarantined for this incident (lease applied)');
    expect(q.targets[0]!.approval).toBeUndefined();
  });

  it('gives the new plan job ids of its generation, and keeps the playbooks followed before', () => {
    expect(run).toMatchObject({ generation: 1, playbookId: wider.id, actor: `playbook:${wider.id}`, incident: { severity: 'critical', version: 4 } });
    expect(run.followed).toEqual([{ playbookId: first.id, quarantines: [{ step: 'contain', targets: [ROOT] }] }]);
    const q = run.steps[1] as Quarantine;
    expect(q.jobId).toBe(`${incident().id}.${wider.id}.contain.g1`);
    expect(q.targets[2]!.approval!.jobId).toBe(`${q.jobId}.approve.ip_10.0.9.5`.replace('ip_', 'ip%3A'));
    // Back to the first playbook: a third generation, whose ids its first run never used.
    const back = switchRun(run, first, incident({ version: 5 }), { now: NOW + 120_000 }, { claimed: new Set(), held: new Map() }).run;
    expect(back.generation).toBe(2);
    expect(back.followed!.map((f) => f.playbookId)).toEqual([first.id, wider.id]);
    const original = runOf().steps.map((s) => s.jobId);
    expect(back.steps.map((s) => s.jobId)).toEqual(original.map((id) => `${id}.g2`));
  });

  it('knows which inquiries the current steps asked (a step\'s, a target\'s), and not the old playbook\'s', () => {
    const q = run.steps[1] as Quarantine;
    expect(askedByRun(run as Run, q.targets[2]!.approval!.jobId)).toBe(true);
    expect(askedByRun(run as Run, q.jobId)).toBe(true);
    const old = runOf().steps[1] as Quarantine;
    expect(askedByRun(run as Run, `${old.jobId}.approve.ip%3A10.0.9.5`)).toBe(false);
    expect(askedByRun(run as Run, `${q.jobId}x`)).toBe(false);
  });

  it('plans with the configured layers\' capabilities, as the runner does', () => {
    const q = (connectionCut?: Record<string, boolean>) =>
      switchRun(runOf(), wider, incident(), { now: NOW, ...(connectionCut && { connectionCut }) }, { claimed: new Set(), held: new Map() }).run.steps.find((s) => s.type === 'quarantine') as Quarantine;
    expect(q().cutsConnections).toBe(true);
    expect(q({ nftables: false }).cutsConnections).toBe(false);
  });

  it('records a switch within the record\'s bounds, however many targets were carried over', () => {
    const state = { generation: 1, phase: 'claimed' as const, from: first.id, matched: ['match.severity holds: critical is at least high'], carried };
    const entry = changeEntry(run, state);
    expect(LedgerEntry.safeParse(entry).success).toBe(true);
    expect(entry).toMatchObject({ action: 'playbook_changed', target: run.incidentId, incidentId: run.incidentId, after: { from: first.id, to: wider.id, carried } });
    const many = Array.from({ length: CARRIED_IN_RECORD + 3 }, (_, i) => ({ step: 'contain', identity: `quarantine:ip:10.1.${i >> 8}.${i & 255}`, why: 'held' }));
    const big = changeEntry(run, { ...state, carried: many });
    expect(LedgerEntry.safeParse(big).success).toBe(true);
    expect(big.after).toMatchObject({ carriedLeftOut: 3 });
    expect((big.after as { carried: unknown[] }).carried).toHaveLength(CARRIED_IN_RECORD);
    expect(big.reason).toContain(`${CARRIED_IN_RECORD + 3} step identities already done`);
  });
});
