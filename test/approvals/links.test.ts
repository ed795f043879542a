import { LinkRefused, mintLinks, mintLinksFor, signLink, verifyLink, type LinkClaims } from '../../src/approvals/links';
import type { Approval } from '../../src/approvals/store';

const SECRET = 'test-secret-of-enough-length-0123456789';
const claims: LinkClaims = { approvalId: 'apr-1', decision: 'approve', approver: 'alice', groups: ['soc-oncall'], exp: 2_000, nonce: 'n1' };

describe('signed approval links', () => {
  it('verifies an untouched link before its expiry', () => {
    expect(verifyLink(signLink(claims, SECRET), SECRET, 1_999)).toEqual({ ok: true, claims });
  });

  it('refuses a link past its expiry', () => {
    expect(verifyLink(signLink(claims, SECRET), SECRET, 2_001)).toEqual({ ok: false, reason: 'link expired' });
  });

  it('refuses an altered link: another decision, approval or expiry', () => {
    const [, sig] = signLink(claims, SECRET).split('.');
    for (const altered of [{ ...claims, decision: 'deny' }, { ...claims, approvalId: 'apr-2' }, { ...claims, exp: 9_999 }]) {
      const forged = `${Buffer.from(JSON.stringify(altered)).toString('base64url')}.${sig}`;
      expect(verifyLink(forged, SECRET, 1_000)).toEqual({ ok: false, reason: 'bad signature' });
    }
  });

  it('refuses a link signed with another secret, and garbage', () => {
    expect(verifyLink(signLink(claims, 'another-secret-0123456789abcdef'), SECRET, 1_000)).toEqual({ ok: false, reason: 'bad signature' });
    expect(verifyLink('garbage', SECRET, 1_000)).toEqual({ ok: false, reason: 'malformed link' });
    expect(verifyLink('a.b.c', SECRET, 1_000)).toEqual({ ok: false, reason: 'malformed link' });
  });
});

describe('minting links', () => {
  const NOW = 1_700_000_000_000;
  const auth = { linkSecret: SECRET, publicUrl: 'https://cordon.example/', linkTtlMs: 3_600_000 };
  const pending: Approval = { id: 'apr-1', incidentId: 'inc-1', playbookId: 'pb@1', stepIndex: 0, question: 'Quarantine?', subject: 'step', targets: [], labels: {}, approvers: ['soc-oncall'], deadline: NOW + 600_000, onTimeout: 'release', state: 'pending', createdAt: NOW };
  const alice = { name: 'alice', groups: ['soc-oncall'] };
  const refusal = (f: () => unknown) => {
    try {
      f();
    } catch (err) {
      return err instanceof LinkRefused ? [err.code, err.message] : err;
    }
    return undefined;
  };

  it('mints for a member of a pending approval\'s groups, expiring at the deadline at the latest', () => {
    const links = mintLinks('apr-1', pending, alice, auth, NOW);
    expect(links.expiresAt).toBe(NOW + 600_000);
    expect(links.approve.startsWith('https://cordon.example/a/')).toBe(true);
    const check = verifyLink(links.deny.slice('https://cordon.example/a/'.length), SECRET, NOW / 1000);
    expect(check).toMatchObject({ ok: true, claims: { approvalId: 'apr-1', decision: 'deny', approver: 'alice', groups: ['soc-oncall'] } });
    expect(mintLinks('apr-1', pending, alice, { ...auth, linkTtlMs: 60_000 }, NOW).expiresAt).toBe(NOW + 60_000);
  });

  it('refuses a missing approval, a decided or overdue one, a non-member and a missing secret, saying which', () => {
    expect(refusal(() => mintLinks('nope', undefined, alice, auth, NOW))).toEqual(['missing', 'no approval nope']);
    expect(refusal(() => mintLinks('apr-1', { ...pending, state: 'denied' }, alice, auth, NOW))).toEqual(['not_pending', 'approval apr-1 is already denied']);
    expect(refusal(() => mintLinks('apr-1', pending, alice, auth, NOW + 600_000))).toEqual(['not_pending', `approval apr-1 is past its deadline (${new Date(NOW + 600_000).toISOString()})`]);
    expect(refusal(() => mintLinks('apr-1', pending, { name: 'carol', groups: ['network'] }, auth, NOW))).toEqual(['not_member', 'carol is in none of the groups approval apr-1 asks (soc-oncall)']);
    expect(refusal(() => mintLinks('apr-1', pending, alice, { ...auth, linkSecret: undefined }, NOW))).toEqual(['not_configured', 'one-click links are not configured: auth.linkSecret is not set']);
  });

  it('mintLinksFor reads the approval from the store it is given', async () => {
    const store = { get: async (id: string) => (id === 'apr-1' ? pending : undefined) };
    await expect(mintLinksFor(store, 'apr-1', alice, auth, NOW)).resolves.toMatchObject({ expiresAt: NOW + 600_000 });
    await expect(mintLinksFor(store, 'apr-2', alice, auth, NOW)).rejects.toThrow('no approval apr-2');
  });
});
