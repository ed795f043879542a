import { allows, authenticate, sha256Hex, type TokenConfig } from '../../src/http/auth';

const tokens: TokenConfig[] = [
  { name: 'viewer-bot', role: 'viewer', sha256: sha256Hex('viewer-token-0123456789') },
  { name: 'alice', role: 'approver', sha256: sha256Hex('approver-token-0123456789') },
];

describe('bearer tokens and roles', () => {
  it('finds the principal of a known token', () => {
    expect(authenticate('Bearer approver-token-0123456789', tokens)).toEqual({ name: 'alice', role: 'approver' });
    expect(authenticate('Bearer viewer-token-0123456789', tokens)).toEqual({ name: 'viewer-bot', role: 'viewer' });
  });

  it('refuses unknown, malformed and missing tokens', () => {
    expect(authenticate('Bearer unknown-token-0123456789', tokens)).toBeUndefined();
    expect(authenticate('Basic YWxpY2U6cHc=', tokens)).toBeUndefined();
    expect(authenticate('Bearer short', tokens)).toBeUndefined();
    expect(authenticate(undefined, tokens)).toBeUndefined();
  });

  it('orders roles: an approver may respond and view, a viewer may only view', () => {
    expect(allows({ name: 'a', role: 'approver' }, 'responder')).toBe(true);
    expect(allows({ name: 'r', role: 'responder' }, 'approver')).toBe(false);
    expect(allows({ name: 'v', role: 'viewer' }, 'responder')).toBe(false);
    expect(allows({ name: 'v', role: 'viewer' }, 'viewer')).toBe(true);
  });
});
