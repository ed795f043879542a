import type { Approval } from '../../src/approvals/store';
import { verifyLink } from '../../src/approvals/links';
import type { Incident } from '../../src/correlate/incident';
import { NotifyConfig } from '../../src/notify/config';
import { linkMinter, oncallDeliveries } from '../../src/notify/oncall';

const SECRET = 'oncall-link-secret-0123456789abcdef01234';
const NOW = 1_700_000_000_000;
const incident = { id: 'inc-1', severity: 'high', score: 1, confidence: 1, techniques: [], root: 'ip:10.0.0.1', entities: [] } as unknown as Incident;
const approval = (over: Partial<Approval> = {}): Approval =>
  ({ id: 'inc-1.pb@1.ask', incidentId: 'inc-1', playbookId: 'pb@1', stepIndex: 0, question: 'Quarantine?', subject: 'step', targets: [], labels: {}, approvers: ['soc-oncall'], deadline: NOW + 600_000, onTimeout: 'release', state: 'pending', createdAt: NOW, ...over }) as Approval;
const config = NotifyConfig.parse({
  channels: { a: { type: 'slack', url: 'https://hooks.example/a' }, b: { type: 'slack', url: 'https://hooks.example/b' } },
  oncall: [
    { approver: 'alice', groups: ['soc-oncall'], channel: 'a' },
    { approver: 'bob', groups: ['security-leads', 'soc-oncall'], channel: 'b' },
    { approver: 'carol', groups: ['network'], channel: 'a' },
  ],
});
const mint = linkMinter({ linkSecret: SECRET, publicUrl: 'https://cordon.example/', linkTtlMs: 3_600_000 }, () => NOW);

describe('on-call approval links', () => {
  it('each on-call approver in one of the approval\'s groups gets links minted for them, on their channel', () => {
    const out = oncallDeliveries({ incident, actor: 'playbook:pb@1' }, approval(), 'ask', config, mint);
    expect(out.map((d) => [d.notice.approval!.approver, d.channel, d.target, d.approvalId])).toEqual([
      ['alice', 'a', 'inc-1.pb@1.ask', 'inc-1.pb@1.ask'],
      ['bob', 'b', 'inc-1.pb@1.ask', 'inc-1.pb@1.ask'],
    ]);
    const link = out[0]!.notice.approval!.approve;
    expect(link.startsWith('https://cordon.example/a/')).toBe(true);
    const check = verifyLink(link.slice('https://cordon.example/a/'.length), SECRET, NOW / 1000);
    // a link never outlives the approval's deadline (here sooner than auth.linkTtlMs)
    expect(check).toMatchObject({ ok: true, claims: { approvalId: 'inc-1.pb@1.ask', decision: 'approve', approver: 'alice', exp: (NOW + 600_000) / 1000 } });
    expect(new Set(out.map((d) => d.id)).size).toBe(2);
  });

  it('no links for an approval that is no longer pending, or without a link secret', () => {
    expect(oncallDeliveries({ incident, actor: 'playbook:pb@1' }, approval({ state: 'approved' }), 'ask', config, mint)).toEqual([]);
    const noSecret = linkMinter({ publicUrl: 'https://cordon.example', linkTtlMs: 1 }, () => NOW);
    expect(oncallDeliveries({ incident, actor: 'playbook:pb@1' }, approval(), 'ask', config, noSecret)).toEqual([]);
  });

  it('an escalated approval (new groups, new deadline) is a new delivery for the escalation group', () => {
    const escalated = oncallDeliveries({ incident, actor: 'playbook:pb@1' }, approval({ approvers: ['security-leads'], deadline: NOW + 1_200_000 }), 'ask', config, mint);
    expect(escalated.map((d) => d.notice.approval!.approver)).toEqual(['bob']);
    const first = oncallDeliveries({ incident, actor: 'playbook:pb@1' }, approval(), 'ask', config, mint).find((d) => d.notice.approval!.approver === 'bob')!;
    expect(escalated[0]!.id).not.toBe(first.id);
  });

  it('the minter refuses an approver outside the approval\'s groups and an overdue approval', () => {
    expect(mint(approval(), { name: 'carol', groups: ['network'] })).toBeUndefined();
    expect(mint(approval({ deadline: NOW }), { name: 'alice', groups: ['soc-oncall'] })).toBeUndefined();
    expect(mint(approval(), { name: 'alice', groups: ['soc-oncall'] })).toMatchObject({ approve: expect.stringMatching(/^https:\/\/cordon\.example\/a\//) });
  });
});
