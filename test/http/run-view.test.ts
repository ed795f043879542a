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
