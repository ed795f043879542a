import type { Admin, Message } from '../../src/kafka';
import type { Config } from '../../src/config';
import type { Incident } from '../../src/correlate/incident';
import type { LedgerRecord } from '../../src/ledger/records';
import { presetConfig } from '../../src/simulate/presets';
import { Scenario } from '../../src/simulate/scenario';
import type { Attack } from '../attack';
import { writeRootQuarantinePlaybook } from './playbook';

/**
 * What every `npm run faults` row shares (bench/faults.ts with one Cordon, bench/faults-replicas.ts
 * with several): the workload's background and playbook, the leases as the ledger tells them, and
 * the shape of a row's result.
 */

/** One row of the table. */
export interface Result {
  fault: string;
  produced: number;
  incidents: number;
  applied: number;
  released: number;
  lost: number;
  duplicated: number;
  /** The slowest release (the target restored) after it was due (ms, 0 when early), or NaN without releases. */
  slowestMs: number;
  /** The longest the ledger's record of a release came after the release itself (ms), or NaN. */
  recordLagMs: number;
  ledger: string;
  /** Every invariant checked, held or not, with its figures. */
  checks: Check[];
  note: string;
  /** Replica rows: how long each fault left containment without a leader (ms), in the order they happened. */
  takeoversMs?: number[];
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface LeaseView {
  target: string;
  expiresAt: number;
  appliedCount: number;
  /** When the ledger recorded its end. */
  endedAt?: number;
  /** When the label store restored the target. */
  restoredAt?: number;
  /** How the ledger's end record says it ended (restored, gone, drifted), if it says. */
  outcome?: string;
  /** Records a lease has once that came again while it was open (a second `pending`). */
  extraRecords: number;
}

export type Expect = (name: string, ok: boolean, detail: string) => void;

const END_STATES = ['expired', 'released', 'failed'];

/** Each lease (a target's quarantine from pending to its end) as the ledger tells it. */
export function leases(records: LedgerRecord[]): LeaseView[] {
  const open = new Map<string, LeaseView>();
  const done: LeaseView[] = [];
  for (const r of records) {
    if (!r.action.startsWith('quarantine_')) continue;
    const after = r.after as { state?: string; expiresAt?: number; outcome?: string } | null;
    const before = r.before as { state?: string } | null;
    let lease = open.get(r.target);
    if (lease && after?.state === 'pending') lease.extraRecords++;
    if (!lease && after?.state === 'pending') open.set(r.target, (lease = { target: r.target, expiresAt: after.expiresAt!, appliedCount: 0, extraRecords: 0 }));
    if (!lease) continue;
    if (after?.expiresAt) lease.expiresAt = after.expiresAt;
    if (after?.state === 'applied' && before?.state !== 'applied') lease.appliedCount++;
    if (after?.state && END_STATES.includes(after.state)) {
      lease.endedAt = r.at;
      if (after.outcome) lease.outcome = after.outcome;
      open.delete(r.target);
      done.push(lease);
    }
  }
  return [...done, ...open.values()];
}

/** End records (expired, released, failed) of a target with no lease open: a release recorded twice. */
/**
 * The first two invariants of every row: each attack's denied records counted once by its
 * incidents (`lag`: input records never taken in, counted as lost), and one incident per attack.
 * Returns the events and incidents lost and duplicated.
 */
export function expectAttacksCounted(attacks: readonly Attack[], incidents: readonly Incident[], lag: number, expect: Expect): { lost: number; duplicated: number } {
  let lostEvents = lag;
  let dupEvents = 0;
  let lostIncidents = 0;
  let dupIncidents = 0;
  for (const a of attacks) {
    const mine = incidents.filter((i) => i.root === a.root);
    if (mine.length === 0) lostIncidents++;
    if (mine.length > 1) dupIncidents += mine.length - 1;
    const counted = mine.reduce((n, i) => n + i.counters.denied, 0);
    lostEvents += Math.max(0, a.records.length - counted);
    dupEvents += Math.max(0, counted - a.records.length);
  }
  expect('no event lost or counted twice', lostEvents + dupEvents === 0, `${lostEvents} lost, ${dupEvents} counted twice`);
  expect('one incident per attack', lostIncidents + dupIncidents === 0, `${lostIncidents} lost, ${dupIncidents} duplicated`);
  return { lost: lostEvents + lostIncidents, duplicated: dupEvents + dupIncidents };
}

export function orphanEnds(records: LedgerRecord[]): number {
  const open = new Set<string>();
  let orphans = 0;
  for (const r of records) {
    if (!r.action.startsWith('quarantine_')) continue;
    const state = (r.after as { state?: string } | null)?.state;
    if (state === 'pending') open.add(r.target);
    else if (state && END_STATES.includes(state) && !open.delete(r.target)) orphans++;
  }
  return orphans;
}

/** The status /readyz answers now, or 'no answer' within 3 s. */
export async function readyz(url: string): Promise<number | 'no answer'> {
  try {
    return (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(3_000) })).status;
  } catch {
    return 'no answer';
  }
}

/** e.g. `503 ×58, no answer ×2`. */
export function summarize(statuses: Array<number | string>): string {
  const counts = new Map<string, number>();
  for (const s of statuses) counts.set(String(s), (counts.get(String(s)) ?? 0) + 1);
  return [...counts].map(([s, n]) => `${s} ×${n}`).join(', ') || 'none';
}

/** The workload's producer rides out a broker restart: a failed send is tried again for up to 3 minutes. */
export async function sendRetrying(send: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      await send();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(1_000);
    }
  }
}

export function background(size: number): Message[] {
  if (size === 0) return [];
  const scenario = new Scenario(presetConfig('enterprise', { seed: 2, maxRecords: size }));
  const pool: Message[] = [];
  for (const r of scenario.records()) {
    // Anomalies go to the anomalies topic in production; here every record goes to the flows topic
    // (format auto detects them), which keeps the lag check to one place.
    // Sent now (no timestamp): the generator's 2024 event times would fall to the broker's retention.
    pool.push({ key: r.key, value: r.text });
    if (pool.length >= size) break;
  }
  return pool;
}

export function writePlaybook(id: string, ttlS: number, enforcer: 'labelstore' | 'kubernetes'): string {
  return writeRootQuarantinePlaybook(id, { name: 'faults-quarantine', description: `the fault table quarantines the root of every incident (${enforcer})`, enforcer, ttl: `${ttlS}s` });
}

/** Input records the correlator group has not committed: once settled and stopped, records never taken in. */
export async function inputLag(admin: Admin, config: Config): Promise<number> {
  let lag = 0;
  for (const input of config.kafka.inputs) {
    const ends = await admin.fetchTopicOffsets(input.topic);
    const [committed] = await admin.fetchOffsets({ groupId: config.kafka.groups.correlate, topics: [input.topic] });
    for (const p of ends) {
      const c = committed?.partitions.find((x) => x.partition === p.partition)?.offset ?? '-1';
      lag += Number(p.high) - Math.max(Number(c), Number(p.low));
    }
  }
  return lag;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
