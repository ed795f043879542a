import Redis from 'ioredis';
import { ApprovalStore, type Approval } from '../../src/approvals/store';
import { REDIS_URL, uniq } from '../support/stack';

const NOW = 1_700_000_000_000;
const approval = (id: string, over: Partial<Approval> = {}): Approval => ({
  id,
  incidentId: 'inc-1',
  playbookId: 'pb@1',
  stepIndex: 0,
  question: 'Quarantine?',
  subject: 'step',
  targets: [{ key: 'ip:10.0.0.1' }],
  labels: {},
  approvers: ['soc-oncall'],
  deadline: NOW + 600_000,
  onTimeout: 'release',
  state: 'pending',
  createdAt: NOW,
  ...over,
});
const approve = (at: number, groups: string[]) => ({ state: 'approved' as const, by: 'user:alice', reason: 'looks bad', at, person: { groups } });

describe('approval decisions in Redis (the decide script checks groups and the deadline atomically)', () => {
  const redis = new Redis(REDIS_URL);
  const prefix = uniq('approvals');
  const store = new ApprovalStore(redis, prefix);

  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  it('a person outside the approval\'s groups is refused and the approval stays pending', async () => {
    await store.create(approval('a-groups'));
    expect(await store.decide('a-groups', approve(NOW, ['network']))).toMatchObject({ result: 'forbidden', approval: { state: 'pending' } });
    expect(await store.decide('a-groups', approve(NOW, []))).toMatchObject({ result: 'forbidden' });
    expect((await store.get('a-groups'))!.state).toBe('pending');
    expect((await store.pending()).map((a) => a.id)).toContain('a-groups');
    expect(await store.decide('a-groups', approve(NOW, ['network', 'soc-oncall']))).toMatchObject({ result: 'decided', approval: { state: 'approved', decidedBy: 'user:alice' } });
  });

  it('a person deciding at or after the deadline is refused; the deadline (no person) still decides', async () => {
    await store.create(approval('a-late'));
    expect(await store.decide('a-late', approve(NOW + 600_000, ['soc-oncall']))).toMatchObject({ result: 'late', approval: { state: 'pending' } });
    expect(await store.decide('a-late', approve(NOW + 700_000, ['soc-oncall']))).toMatchObject({ result: 'late' });
    expect((await store.get('a-late'))!.state).toBe('pending');
    const timedOut = await store.decide('a-late', { state: 'timed_out', by: 'service:cordon', reason: 'deadline passed', at: NOW + 700_000 });
    expect(timedOut).toMatchObject({ result: 'decided', approval: { state: 'timed_out' } });
  });

  it('after an escalation the new groups and the new deadline are the ones checked', async () => {
    await store.create(approval('a-esc'));
    await store.escalate('a-esc', ['security-leads'], NOW + 1_200_000);
    expect(await store.decide('a-esc', approve(NOW + 700_000, ['soc-oncall']))).toMatchObject({ result: 'forbidden' });
    expect(await store.decide('a-esc', approve(NOW + 700_000, ['security-leads']))).toMatchObject({ result: 'decided', approval: { approvers: ['security-leads'], state: 'approved' } });
  });

  it('a second decision finds the first; a missing approval is missing', async () => {
    await store.create(approval('a-twice'));
    expect(await store.decide('a-twice', approve(NOW, ['soc-oncall']))).toMatchObject({ result: 'decided' });
    expect(await store.decide('a-twice', { ...approve(NOW, ['soc-oncall']), state: 'denied' })).toMatchObject({ result: 'already', approval: { state: 'approved' } });
    expect(await store.decide('nope', approve(NOW, ['soc-oncall']))).toEqual({ result: 'missing' });
  });
});
