import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { problem } from './problem';

/** Roles, each allowed everything the ones before it are. */
export const ROLES = ['viewer', 'responder', 'approver'] as const;
export type Role = (typeof ROLES)[number];

export const TokenConfig = z.object({
  name: z.string().min(1).max(128),
  role: z.enum(ROLES),
  /** SHA-256 hex of the bearer token; the token itself is never stored. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected the SHA-256 hex of the token'),
  /** The approver groups the holder belongs to: an approval is decided only by a member of one of its groups. */
  groups: z.array(z.string().min(1).max(128)).max(64).default([]),
});
/** As written in config: `groups` may be left out (none). */
export type TokenConfig = z.input<typeof TokenConfig>;

export interface Principal {
  name: string;
  role: Role;
  groups: string[];
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Finds the principal a bearer token belongs to; compares digests in constant time. */
export function authenticate(header: string | undefined, tokens: readonly TokenConfig[]): Principal | undefined {
  const m = /^Bearer ([A-Za-z0-9._~+/=-]{16,512})$/.exec(header ?? '');
  if (!m) return undefined;
  const digest = Buffer.from(sha256Hex(m[1]!), 'hex');
  const match = tokens.find((t) => timingSafeEqual(Buffer.from(t.sha256, 'hex'), digest));
  return match ? { name: match.name, role: match.role, groups: [...(match.groups ?? [])] } : undefined;
}

/** Whether someone in `groups` may decide an approval that asks `approvers`. */
export function inGroups(groups: readonly string[], approvers: readonly string[]): boolean {
  return groups.some((g) => approvers.includes(g));
}

export function allows(principal: Principal, needed: Role): boolean {
  return ROLES.indexOf(principal.role) >= ROLES.indexOf(needed);
}

/** A Fastify preValidation hook (before the body is validated): 401 without a valid token, 403 when the role is not enough. */
export function requireRole(needed: Role, tokens: () => readonly TokenConfig[]) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const principal = authenticate(request.headers.authorization, tokens());
    if (!principal) {
      await problem(reply.header('www-authenticate', 'Bearer'), 401, 'a valid bearer token is required');
      return;
    }
    if (!allows(principal, needed)) {
      await problem(reply, 403, `role ${principal.role} may not do this; it needs ${needed}`);
      return;
    }
    request.principal = principal;
  };
}
