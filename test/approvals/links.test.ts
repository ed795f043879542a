import { signLink, verifyLink, type LinkClaims } from '../../src/approvals/links';

const SECRET = 'test-secret-of-enough-length-0123456789';
const claims: LinkClaims = { approvalId: 'apr-1', decision: 'approve', approver: 'alice', exp: 2_000, nonce: 'n1' };

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
