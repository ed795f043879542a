import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ANOMALY_KINDS, AllowedFlow, Anomaly, DeniedFlow, Ip, type CordonEvent } from '../events';
import { describeIssues, parseJson } from '../validation';
import { RULES } from './evidence';
import { SERVICE_CLASSES } from './ports';

/**
 * Hand-offs: how a campaign crosses partitions. Each partition's engine holds the entities that
 * partition owns; a campaign whose root lives on one partition reaches a host owned by another.
 *
 * - `reach`, keyed by the target: "B was reached by the campaign of root A at t". The engine that
 *   owns B remembers the link (bounded, expiring, in its snapshot), so B's own moves are A's.
 * - `forward`, keyed by the root: "B, linked to A's campaign, did this": the evidence, already
 *   weighed and described where B's state lives, with the hop and the two entities it names. The
 *   engine that owns A applies it to A's incident, once (its id is a hash of its content).
 * - `bind`, sent to every partition: "this address is held by workload W" (directory.ts), so a
 *   bare address means the same workload everywhere; `learned`, sent to every partition too: what
 *   an address was seen to do (domain member, directory server).
 * - `redirect`, keyed by the workload: an event whose subject is a bare address that a workload
 *   on another partition holds, so its evidence is gathered where that workload's state lives.
 *
 * The records are Cordon's own, but they cross Kafka: they are parsed with zod on the way in, and
 * a record whose key the partition it came on does not own is refused.
 */

/** A real contribution weighs at most a few dozen; the bound keeps a forged one from buying an incident outright. */
const MAX_WEIGHT = 100;

const Key = z.string().min(1).max(512);
const Time = z.number().int().min(0).max(8_640_000_000_000_000);

const ReachSchema = z.strictObject({
  type: z.literal('reach'),
  root: Key,
  target: Key,
  at: Time,
  foothold: z.boolean(),
});

const EntityNoteSchema = z.strictObject({
  key: Key,
  kind: z.string().min(1).max(32),
  role: z.string().min(1).max(64),
  roleSource: z.enum(['label', 'inventory', 'observed', 'kind', 'default']),
  name: z.string().max(512).optional(),
  ip: z.string().max(64).optional(),
});

const CarriedSchema = z.strictObject({
  rule: z.enum(RULES),
  weight: z.number().min(0).max(MAX_WEIGHT),
  at: Time,
  src: Key,
  dst: Key.optional(),
  port: z.number().int().min(0).max(65535).optional(),
  service: z.enum(SERVICE_CLASSES).optional(),
  anomaly: z.enum(ANOMALY_KINDS).optional(),
  detail: z.number().finite().optional(),
  count: z.number().int().min(1).max(1_000_000),
  reason: z.string().max(2_000),
  techniques: z.array(z.string().max(32)).max(16),
});

const ForwardSchema = z.strictObject({
  type: z.literal('forward'),
  id: z.string().regex(/^[0-9a-f]{32}$/),
  root: Key,
  pivot: Key,
  /** When the pivot's link to the root's campaign was made: the campaign must have started by then. */
  linkedAt: Time,
  at: Time,
  found: z.array(CarriedSchema).min(1).max(8),
  edge: z
    .strictObject({
      from: Key,
      to: Key,
      port: z.number().int().min(0).max(65535),
      service: z.enum(SERVICE_CLASSES),
      denied: z.boolean(),
    })
    .optional(),
  entities: z.array(z.strictObject({ entity: EntityNoteSchema, position: z.enum(['pivot', 'target']) })).max(2),
});

const BindSchema = z.strictObject({
  type: z.literal('bind'),
  ip: Ip,
  holder: Key,
  name: z.string().max(512).optional(),
  role: z.string().min(1).max(64),
  roleSource: z.enum(['label', 'inventory', 'observed', 'kind', 'default']),
  flags: z.number().int().min(0).max(1023),
  at: Time,
});

const LearnedSchema = z.strictObject({
  type: z.literal('learned'),
  ip: Ip,
  flags: z.number().int().min(1).max(255),
  at: Time,
});

const RedirectSchema = z.strictObject({
  type: z.literal('redirect'),
  to: Key,
  event: z.union([DeniedFlow, AllowedFlow, Anomaly]),
});

const HandoffSchema = z.discriminatedUnion('type', [ReachSchema, ForwardSchema, BindSchema, LearnedSchema, RedirectSchema]);

export type Reach = z.infer<typeof ReachSchema>;
export type Forward = z.infer<typeof ForwardSchema>;
export type Bind = z.infer<typeof BindSchema>;
export type Learned = z.infer<typeof LearnedSchema>;
export interface Redirect {
  type: 'redirect';
  to: string;
  event: CordonEvent;
}
export type Carried = z.infer<typeof CarriedSchema>;
export type EntityNote = z.infer<typeof EntityNoteSchema>;
export type Handoff = Reach | Forward | Bind | Learned | Redirect;

/** The entity whose partition a hand-off goes to (its Kafka key); a bind goes to every partition. */
export function handoffKey(h: Handoff): string {
  switch (h.type) {
    case 'reach':
      return h.target;
    case 'forward':
      return h.root;
    case 'bind':
      return h.holder;
    case 'learned':
      return 'ip:' + h.ip;
    case 'redirect':
      return h.to;
  }
}

/** A hand-off every partition takes, whatever its key. */
export const broadcast = (h: Handoff): boolean => h.type === 'bind' || h.type === 'learned';

export type Decoded = { ok: true; handoff: Handoff } | { ok: false; reason: string };

/** Parse one record's bytes; the reason names the fields that are wrong. */
export function decodeHandoff(bytes: Buffer | string | null): Decoded {
  if (bytes === null) return { ok: false, reason: 'empty record (tombstone)' };
  const json = parseJson(String(bytes));
  if (!json.ok) return json;
  const parsed = HandoffSchema.safeParse(json.value);
  return parsed.success ? { ok: true, handoff: parsed.data as Handoff } : { ok: false, reason: describeIssues(parsed.error) };
}

/** A forward's id: a hash of what it says, so an engine replaying the same events sends the same id. */
export function forwardId(f: Omit<Forward, 'id'>): string {
  return createHash('sha256').update(JSON.stringify(f)).digest('hex').slice(0, 32);
}

export interface Link {
  root: string;
  at: number;
  foothold: boolean;
}

export type EncodedLinks = { links: [target: string, root: string, at: number, foothold: 0 | 1][]; forwards: [id: string, root: string, at: number][] };

/**
 * What an engine keeps of hand-offs: links to remote campaigns by target, and the forwards it
 * applied by id (so a replayed one changes nothing). Both bounded (the oldest go first) and
 * expiring after `ttlMs` of event time.
 */
export class HandoffMemory {
  private readonly links = new Map<string, Link>();
  private readonly applied = new Map<string, { root: string; at: number }>();

  constructor(private readonly cap: number) {}

  get size(): { links: number; forwards: number } {
    return { links: this.links.size, forwards: this.applied.size };
  }

  /** Remember a link; an older one than what is known changes nothing. True when it changed. */
  link(target: string, l: Link): boolean {
    const known = this.links.get(target);
    if (known && (known.at > l.at || (known.at === l.at && known.root === l.root && known.foothold === l.foothold))) return false;
    this.links.delete(target);
    this.links.set(target, { ...l });
    if (this.links.size > this.cap) this.links.delete(this.links.keys().next().value as string);
    return true;
  }

  linkOf(target: string): Link | undefined {
    return this.links.get(target);
  }

  /** True the first time a forward id is seen. */
  firstTime(id: string, root: string, at: number): boolean {
    if (this.applied.has(id)) return false;
    this.applied.set(id, { root, at });
    if (this.applied.size > this.cap) this.applied.delete(this.applied.keys().next().value as string);
    return true;
  }

  expire(now: number, ttlMs: number): void {
    for (const [k, l] of this.links) if (now - l.at > ttlMs) this.links.delete(k);
    for (const [k, f] of this.applied) if (now - f.at > ttlMs) this.applied.delete(k);
  }

  /** Links by target, applied forwards by root: each goes with the partition that owns that key. */
  encode(pick: (key: string) => boolean): EncodedLinks {
    const links: EncodedLinks['links'] = [];
    for (const [k, l] of this.links) if (pick(k)) links.push([k, l.root, l.at, l.foothold ? 1 : 0]);
    const forwards: EncodedLinks['forwards'] = [];
    for (const [id, f] of this.applied) if (pick(f.root)) forwards.push([id, f.root, f.at]);
    return { links, forwards };
  }

  load(e: EncodedLinks): void {
    for (const [k, root, at, foothold] of e.links) this.link(k, { root, at, foothold: foothold === 1 });
    for (const [id, root, at] of e.forwards) this.firstTime(id, root, at);
  }

  forget(pick: (key: string) => boolean): void {
    for (const k of [...this.links.keys()]) if (pick(k)) this.links.delete(k);
    for (const [id, f] of [...this.applied]) if (pick(f.root)) this.applied.delete(id);
  }
}
