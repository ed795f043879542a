import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { inGroups } from '../http/auth';
import type { Approval, ApprovalStore } from './store';

/**
 * One-click approve/deny links: the approval id, the decision, the approver the link was sent to,
 * an expiry and a nonce, signed with HMAC-SHA256. An altered field breaks the signature; a link
 * past its expiry is refused; a used nonce is refused by the caller (links are single-use).
 */
export interface LinkClaims {
  approvalId: string;
  decision: 'approve' | 'deny';
  approver: string;
  /** The approver's groups the link was minted for; deciding checks them against the approval's. */
  groups: string[];
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
  const groups = Array.isArray(claims.groups) ? claims.groups.filter((g): g is string => typeof g === 'string') : [];
  return { ok: true, claims: { ...claims, groups } };
}

function mac(payload: string, secret: string): string {
  return createHmac('sha256', secret).update(payload).digest('base64url');
}

export interface LinkAuth {
  linkSecret?: string | undefined;
  /** Where links point, e.g. https://cordon.example.com. */
  publicUrl: string;
  linkTtlMs: number;
}

export interface MintedLinks {
  approve: string;
  deny: string;
  /** Epoch milliseconds: the approval's deadline or after `linkTtlMs`, whichever is first. */
  expiresAt: number;
}

export type LinkRefusal = 'not_configured' | 'missing' | 'not_pending' | 'not_member';

/** Why links were not minted; `code` says which rule refused them. */
export class LinkRefused extends Error {
  override name = 'LinkRefused';
  constructor(
    readonly code: LinkRefusal,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The one place links are minted: for an approval that exists and is pending before its deadline,
 * and for an approver in one of its groups. Anything else throws LinkRefused naming the rule.
 */
export function mintLinks(
  id: string,
  approval: Approval | undefined,
  approver: { name: string; groups: readonly string[] },
  auth: LinkAuth,
  now: number,
): MintedLinks {
  if (!auth.linkSecret) throw new LinkRefused('not_configured', 'one-click links are not configured: auth.linkSecret is not set');
  if (!approval) throw new LinkRefused('missing', `no approval ${id}`);
  if (approval.state !== 'pending') throw new LinkRefused('not_pending', `approval ${id} is already ${approval.state}`);
  if (approval.deadline <= now) throw new LinkRefused('not_pending', `approval ${id} is past its deadline (${new Date(approval.deadline).toISOString()})`);
  if (!inGroups(approver.groups, approval.approvers)) {
    throw new LinkRefused('not_member', `${approver.name} is in none of the groups approval ${id} asks (${approval.approvers.join(', ')})`);
  }
  const expMs = Math.min(now + auth.linkTtlMs, approval.deadline);
  const exp = Math.floor(expMs / 1000);
  const secret = auth.linkSecret;
  const link = (decision: 'approve' | 'deny') =>
    `${auth.publicUrl.replace(/\/+$/, '')}/a/${signLink({ approvalId: id, decision, approver: approver.name, groups: [...approver.groups], exp, nonce: `${id}.${decision}.${exp}.${randomUUID()}` }, secret)}`;
  return { approve: link('approve'), deny: link('deny'), expiresAt: expMs };
}

/** `mintLinks` for the approval stored under `id`. */
export async function mintLinksFor(
  approvals: Pick<ApprovalStore, 'get'>,
  id: string,
  approver: { name: string; groups: readonly string[] },
  auth: LinkAuth,
  now: number,
): Promise<MintedLinks> {
  return mintLinks(id, await approvals.get(id), approver, auth, now);
}
