import type { Approval } from '../../src/approvals/store';
import type { Run } from '../../src/contain/runner';
import { runView } from '../../src/http/run-view';
import type { Lease, LedgerRecord } from '../../src/ledger/records';

const step = (index: number, id: string, type: string, extra: object = {}) => ({ index, id, type, jobId: `inc-1.pb.${id}`, summary: `${type} ${id}`, dryRun: false, ...extra });
const run = {
  incidentId: 'inc-1',
  playbookId: 'pb@1',
  startedAt: 1,
  steps: [
    step(0, 'notify', 'notify'),
    step(1, 'ask', 'approve'),
    step(2, 'contain', 'quarantine', { targets: [{ key: 'host:a', name: 'A', decision: 'quarantine' }, { key: 'host:b', decision: 'skip' }] }),
    step(3, 'pause', 'wait'),
  ],
} as unknown as Run;
const record = (seq: number, action: string, target: string, reason = 'r') => ({ seq, action, target, reason, at: 1000 + seq, incidentId: 'inc-1' }) as unknown as LedgerRecord;
const approval = (state: Approval['state']) => ({ id: 'inc-1.pb.ask', state, approvers: ['oncall'], deadline: 5000, createdAt: 10, decidedBy: 'user:al', reason: 'ok', subject: 'step', stepIndex: 1, targets: [] }) as unknown as Approval;

describe('playbook run view', () => {
  it('before a decision: notify done, the approval waiting, the rest not reached', () => {
    const v = runView(run, [record(1, 'playbook_step', 'inc-1.pb.notify')], [approval('pending')], []);
    expect(v.steps.map((s) => s.state)).toEqual(['done', 'waiting', 'not reached', 'not reached']);
    expect(v.steps[1]!.approvalId).toBe('inc-1.pb.ask');
  });

  it('after approval: the target takes its lease state, a skipped one says so, the wait step runs', () => {
    const lease = { target: 'host:a', state: 'applied', expiresAt: 9999, holders: ['inc-1'] } as unknown as Lease;
    const v = runView(run, [record(1, 'playbook_step', 'inc-1.pb.notify'), record(2, 'quarantine_applied', 'host:a')], [approval('approved')], [lease]);
    expect(v.steps.map((s) => s.state)).toEqual(['done', 'approved', 'done', 'waiting']);
    expect(v.steps[2]!.targets).toEqual([
      { key: 'host:a', name: 'A', decision: 'quarantine', state: 'applied', expiresAt: 9999 },
      { key: 'host:b', decision: 'skip', state: 'skipped' },
    ]);
  });

  it('a denied approval shows who denied and why', () => {
    const v = runView(run, [], [approval('denied')], []);
    expect(v.steps[1]).toMatchObject({ state: 'denied', detail: 'user:al: ok' });
  });
});

describe('notify and enrich in the run view', () => {
  const ne = {
    incidentId: 'inc-1',
    playbookId: 'pb@1',
    startedAt: 1,
    steps: [step(0, 'tell', 'notify'), step(1, 'look', 'enrich'), step(2, 'contain', 'quarantine', { targets: [{ key: 'host:a', decision: 'quarantine' }] })],
  } as unknown as Run;
  const withAfter = (r: LedgerRecord, after: object) => ({ ...r, after }) as LedgerRecord;

  it('each delivery shows under its notify step; one that failed marks the step failed', () => {
    const told = record(1, 'playbook_step', 'inc-1.pb.tell');
    const slack = withAfter(record(3, 'playbook_step', 'inc-1.pb.tell'), { delivery: 'd1', channel: 'soc-slack', outcome: 'delivered' });
    const pager = withAfter(record(4, 'playbook_step', 'inc-1.pb.tell'), { delivery: 'd2', channel: 'pager', outcome: 'failed', error: '404 no_service' });
    expect(runView(ne, [told, slack], [], []).steps[0]).toMatchObject({ state: 'done', detail: 'soc-slack: delivered', at: 1001 });
    expect(runView(ne, [told, slack, pager], [], []).steps[0]).toMatchObject({ state: 'failed', detail: 'soc-slack: delivered; pager: not delivered (404 no_service)' });
  });

  it('an enrich step is searching while later steps run, then done or failed with what it found', () => {
    const applied = record(2, 'quarantine_applied', 'host:a');
    const lease = { target: 'host:a', state: 'applied', expiresAt: 9999, holders: ['inc-1'] } as unknown as Lease;
    expect(runView(ne, [applied], [], [lease]).steps[1]).toMatchObject({ state: 'waiting', detail: 'searching' });
    const ok = { ...record(5, 'playbook_step', 'inc-1.pb.look', 'enrich: search splunk: q: 2 row(s)'), after: { search: { outcome: 'ok' } } } as LedgerRecord;
    expect(runView(ne, [applied, ok], [], [lease]).steps[1]).toMatchObject({ state: 'done', detail: 'search splunk: q: 2 row(s)' });
    const failed = { ...ok, reason: 'enrich: q: search failed: timeout', after: { search: { outcome: 'failed' } } } as LedgerRecord;
    expect(runView(ne, [applied, failed], [], [lease]).steps[1]).toMatchObject({ state: 'failed', detail: 'q: search failed: timeout' });
  });
});
