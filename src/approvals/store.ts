import type Redis from 'ioredis';
import { z } from 'zod';

export const APPROVAL_STATES = ['pending', 'approved', 'denied', 'timed_out', 'escalated'] as const;
export type ApprovalState = (typeof APPROVAL_STATES)[number];

/** A human decision a playbook run waits for: what will be quarantined, for how long, who may decide. */
export const Approval = z.object({
  id: z.string().min(1),
  incidentId: z.string().min(1),
  playbookId: z.string().min(1),
  stepIndex: z.number().int().min(0),
  question: z.string(),
  /** What the decision is about: the whole step, or one protected target of a quarantine step. */
  subject: z.enum(['step', 'target']),
  targets: z.array(z.object({ key: z.string(), name: z.string().optional(), ip: z.string().optional() })),
  ttlMs: z.number().int().positive().optional(),
  labels: z.record(z.string(), z.string()).default({}),
  approvers: z.array(z.string()),
  deadline: z.number().int(),
  onTimeout: z.enum(['approve', 'release', 'escalate']),
  escalation: z.object({ approvers: z.array(z.string()), deadlineMs: z.number().int().positive() }).optional(),
  state: z.enum(APPROVAL_STATES),
  createdAt: z.number().int(),
  decidedBy: z.string().optional(),
  reason: z.string().optional(),
  decidedAt: z.number().int().optional(),
  /** An approver may approve for less than the requested TTL. */
  approvedTtlMs: z.number().int().positive().optional(),
});
export type Approval = z.infer<typeof Approval>;

/**
 * Moves a pending approval to its decision atomically; a second decision finds it decided. With a
 * guard (ARGV[3] now, ARGV[4] the decider's groups as JSON) a person's decision is refused at or
 * past the deadline (the deadline's own on_timeout decides then) and from outside the approval's
 * groups, checked against the stored approval. ARGV[5] is the JSON the decision was built from:
 * changed since (escalated), the caller builds it again.
 */
const DECIDE = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return {0, ''} end
local a = cjson.decode(current)
if a['state'] ~= 'pending' then return {1, current} end
if ARGV[3] ~= '' then
  if tonumber(ARGV[3]) >= tonumber(a['deadline']) then return {3, current} end
  local member = false
  for _, g in ipairs(cjson.decode(ARGV[4])) do
    for _, w in ipairs(a['approvers']) do if g == w then member = true end end
  end
  if not member then return {4, current} end
end
if current ~= ARGV[5] then return {5, current} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
return {2, ARGV[2]}
`;

export type Decision = {
  state: Exclude<ApprovalState, 'pending'>;
  by: string;
  reason: string;
  at: number;
  approvedTtlMs?: number;
  /** A person's decision: refused at or past the deadline (`at`), and unless `groups` shares one of the approval's. */
  person?: { groups: readonly string[] };
};

export type DecideResult =
  | { result: 'decided'; approval: Approval }
  | { result: 'already'; approval: Approval }
  /** The deadline passed: the approval's on_timeout decides. */
  | { result: 'late'; approval: Approval }
  /** The decider is in none of the approval's groups. */
  | { result: 'forbidden'; approval: Approval }
  | { result: 'missing' };

const CODES = { 1: 'already', 2: 'decided', 3: 'late', 4: 'forbidden' } as const;

/** Approvals in Redis: a hash by id and a sorted set of the pending ones by deadline. */
export class ApprovalStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private get keys() {
    return { all: `${this.prefix}:approvals`, pending: `${this.prefix}:approvals:pending`, nonces: `${this.prefix}:approvals:used-links` };
  }

  /** Creates the approval unless it exists (a retried step asks once). Returns the stored one. */
  async create(approval: Approval): Promise<{ approval: Approval; created: boolean }> {
    const created = await this.redis.hsetnx(this.keys.all, approval.id, JSON.stringify(approval));
    if (created === 1) await this.redis.zadd(this.keys.pending, approval.deadline, approval.id);
    return { approval: created === 1 ? approval : (await this.get(approval.id))!, created: created === 1 };
  }

  async get(id: string): Promise<Approval | undefined> {
    const json = await this.redis.hget(this.keys.all, id);
    return json ? Approval.parse(JSON.parse(json)) : undefined;
  }

  async pending(): Promise<Approval[]> {
    const ids = await this.redis.zrange(this.keys.pending, 0, -1);
    if (ids.length === 0) return [];
    const values = await this.redis.hmget(this.keys.all, ...ids);
    return values.filter((v): v is string => v !== null).map((v) => Approval.parse(JSON.parse(v)));
  }

  async forIncident(incidentId: string): Promise<Approval[]> {
    const all = await this.redis.hvals(this.keys.all);
    return all.map((v) => Approval.parse(JSON.parse(v))).filter((a) => a.incidentId === incidentId);
  }

  /** `already` holds the decision taken when another one got there first. */
  async decide(id: string, decision: Decision): Promise<DecideResult> {
    for (let attempt = 0; ; attempt++) {
      const raw = await this.redis.hget(this.keys.all, id);
      if (!raw) return { result: 'missing' };
      const current = Approval.parse(JSON.parse(raw));
      const next: Approval = {
        ...current,
        state: decision.state,
        decidedBy: decision.by,
        reason: decision.reason,
        decidedAt: decision.at,
        ...(decision.approvedTtlMs ? { approvedTtlMs: decision.approvedTtlMs } : {}),
      };
      const guard = decision.person ? [String(decision.at), JSON.stringify(decision.person.groups)] : ['', '[]'];
      const [code, json] = (await this.redis.eval(DECIDE, 2, this.keys.all, this.keys.pending, id, JSON.stringify(next), ...guard, raw)) as [number, string];
      if (code === 0) return { result: 'missing' };
      if (code === 5 && attempt < 5) continue;
      if (code === 5) throw new Error(`approval ${id} kept changing while it was being decided`);
      return { result: CODES[code as keyof typeof CODES], approval: Approval.parse(JSON.parse(json)) };
    }
  }

  /** Escalation re-opens the approval for the next group with a new deadline. */
  async escalate(id: string, approvers: string[], deadline: number): Promise<Approval | undefined> {
    const current = await this.get(id);
    if (!current || current.state !== 'pending') return undefined;
    const next: Approval = { ...current, approvers, deadline, escalation: undefined };
    await this.redis.hset(this.keys.all, id, JSON.stringify(next));
    await this.redis.zadd(this.keys.pending, deadline, id);
    return next;
  }

  /** Marks a signed link's nonce used; false when it was used before (a replayed link). */
  async useNonce(nonce: string, ttlSec: number): Promise<boolean> {
    return (await this.redis.set(`${this.keys.nonces}:${nonce}`, '1', 'EX', Math.max(1, ttlSec), 'NX')) === 'OK';
  }
}
