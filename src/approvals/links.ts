import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * One-click approve/deny links: the approval id, the decision, the approver the link was sent to,
 * an expiry and a nonce, signed with HMAC-SHA256. An altered field breaks the signature; a link
 * past its expiry is refused; a used nonce is refused by the caller (links are single-use).
 */
export interface LinkClaims {
  approvalId: string;
  decision: 'approve' | 'deny';
  approver: string;
  /** Epoch seconds. */
  exp: number;
  nonce: string;
}

export function signLink(claims: LinkClaims, secret: string): string {
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
  return `${payload}.${mac(payload, secret)}`;
}

export type LinkCheck = { ok: true; claims: LinkClaims } | { ok: false; reason: string };

export function verifyLink(token: string, secret: string, nowSec: number): LinkCheck {
  const [payload, signature, ...rest] = token.split('.');
  if (!payload || !signature || rest.length > 0) return { ok: false, reason: 'malformed link' };
  const expected = Buffer.from(mac(payload, secret), 'base64url');
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad signature' };
  let claims: LinkClaims;
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as LinkClaims;
  } catch {
    return { ok: false, reason: 'malformed link' };
  }
  if (typeof claims.exp !== 'number' || claims.exp < nowSec) return { ok: false, reason: 'link expired' };
  return { ok: true, claims };
}

function mac(payload: string, secret: string): string {
  return createHmac('sha256', secret).update(payload).digest('base64url');
}
