import { allows, authenticate, inGroups, TokenConfig as TokenSchema, sha256Hex, type TokenConfig } from '../../src/http/auth';

const tokens: TokenConfig[] = [
  { name: 'viewer-bot', role: 'viewer', sha256: sha256Hex('viewer-token-0123456789') },
  { name: 'alice', role: 'approver', sha256: sha256Hex('approver-token-0123456789'), groups: ['soc-oncall'] },
];

describe('bearer tokens and roles', () => {
  it('finds the principal of a known token', () => {
    expect(authenticate('Bearer approver-token-0123456789', tokens)).toEqual({ name: 'alice', role: 'approver', groups: ['soc-oncall'] });
    expect(authenticate('Bearer viewer-token-0123456789', tokens)).toEqual({ name: 'viewer-bot', role: 'viewer', groups: [] });
  });

  it('refuses unknown, malformed and missing tokens', () => {
    expect(authenticate('Bearer unknown-token-0123456789', tokens)).toBeUndefined();
    expect(authenticate('Basic YWxpY2U6cHc=', tokens)).toBeUndefined();
    expect(authenticate('Bearer short', tokens)).toBeUndefined();
    expect(authenticate(undefined, tokens)).toBeUndefined();
  });

  it('orders roles: an approver may respond and view, a viewer may only view', () => {
    expect(allows({ name: 'a', role: 'approver', groups: [] }, 'responder')).toBe(true);
    expect(allows({ name: 'r', role: 'responder', groups: [] }, 'approver')).toBe(false);
    expect(allows({ name: 'v', role: 'viewer', groups: [] }, 'responder')).toBe(false);
    expect(allows({ name: 'v', role: 'viewer', groups: [] }, 'viewer')).toBe(true);
  });

  it('a token carries its approver groups (none unless configured); membership is any shared group', () => {
    expect(TokenSchema.parse({ name: 'b', role: 'approver', sha256: sha256Hex('x') }).groups).toEqual([]);
    expect(TokenSchema.safeParse({ name: 'b', role: 'approver', sha256: sha256Hex('x'), groups: [''] }).success).toBe(false);
    expect(inGroups(['soc-oncall'], ['security-leads', 'soc-oncall'])).toBe(true);
    expect(inGroups(['network'], ['soc-oncall'])).toBe(false);
    expect(inGroups([], ['soc-oncall'])).toBe(false);
  });
});
