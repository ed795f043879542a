import { canonicalJson, sha256Hex } from '../../src/ledger/canonical';
import { ChainVerifier, GENESIS_HASH, LedgerEntryError, hashRecord, nextRecord, verify } from '../../src/ledger/chain';
import { LEDGER_ACTIONS, LedgerRecord, type LedgerEntry } from '../../src/ledger/records';
import { T0, chain, lease, mixedEntries } from './fixtures';

/** Re-hashes a record after a change, as a forger who knows the hash rule would. */
function rehash<T extends object>(record: T): T {
  return { ...record, hash: hashRecord(record) };
}

describe('nextRecord', () => {
  it('starts at seq 1 with 64 zeros as prevHash, and hashes the canonical JSON without hash', () => {
    const r = nextRecord(undefined, { actor: 'service:cordon', action: 'dry_run', target: 'pod:a', reason: 'test' }, T0);
    expect(r.seq).toBe(1);
    expect(r.prevHash).toBe(GENESIS_HASH);
    expect(r.before).toBeNull();
    expect(r.after).toBeNull();
    const { hash, ...body } = r;
    expect(hash).toBe(sha256Hex(canonicalJson(body)));
    expect(canonicalJson(body)).toBe(
      `{"action":"dry_run","actor":"service:cordon","after":null,"at":${T0},"before":null,"prevHash":"${GENESIS_HASH}","reason":"test","seq":1,"target":"pod:a"}`,
    );
  });

  it('links each record to the one before', () => {
    const records = chain(mixedEntries(5));
    records.forEach((r, i) => {
      expect(r.seq).toBe(i + 1);
      expect(r.prevHash).toBe(i === 0 ? GENESIS_HASH : records[i - 1]!.hash);
    });
  });

  it('refuses invalid entries, naming the field', () => {
    const base: LedgerEntry = { actor: 'service:cordon', action: 'dry_run', target: 'pod:a', reason: 'x' };
    const bad: Array<[Partial<LedgerEntry> & Record<string, unknown>, RegExp]> = [
      [{ actor: 'root' }, /actor: expected service:<name>/],
      [{ actor: 'playbook:contain' }, /actor/],
      [{ action: 'nuke' as LedgerEntry['action'] }, /action/],
      [{ reason: '' }, /reason/],
      [{ target: 'pod:\u202ea' }, /target: contains control/],
      [{ extra: 1 }, /Unrecognized key/],
      [{ action: 'incident_raised' }, /incidentId: is required for incident_raised/],
      [{ action: 'approval_given' }, /approvalId: is required for approval_given/],
      [{ action: 'quarantine_applied', after: { nope: true } }, /after/],
      [{ action: 'quarantine_applied', after: lease('pod:other') }, /after\.target: must equal the record's target "pod:a"/],
      [{ action: 'quarantine_applied', after: lease('pod:a', { state: 'expired' }) }, /after\.state: quarantine_applied leaves a lease pending or applied, not expired/],
      [{ action: 'quarantine_applied', after: lease('pod:a', { holders: [] }) }, /holders: a pending or applied lease needs at least one holder/],
      [{ action: 'quarantine_applied', after: lease('pod:a', { holders: ['i', 'i'] }) }, /holders must be unique/],
      [{ action: 'quarantine_expired', after: lease('pod:a') }, /after\.state/],
      [{ action: 'rebuild', after: { records: 1 } }, /after/],
    ];
    for (const [change, message] of bad) {
      expect(() => nextRecord(undefined, { ...base, ...change } as LedgerEntry, T0)).toThrow(LedgerEntryError);
      expect(() => nextRecord(undefined, { ...base, ...change } as LedgerEntry, T0)).toThrow(message);
    }
  });

  it('accepts every action and every actor kind', () => {
    for (const action of LEDGER_ACTIONS) {
      const entry: LedgerEntry = { actor: 'user:alice@example.com', action, target: 'pod:a', reason: 'r', incidentId: 'inc-1', approvalId: 'ap-1' };
      if (action.startsWith('quarantine_')) {
        const state = action === 'quarantine_expired' ? 'expired' : action === 'quarantine_failed' ? 'failed' : 'applied';
        entry.after = lease('pod:a', { state });
      }
      if (action === 'rebuild') entry.after = { records: 0, leases: 0, reschedule: 0, byState: { pending: 0, applied: 0, failed: 0, released: 0, expired: 0 } };
      if (action === 'playbook_changed') entry.after = { from: 'a@1', to: 'b@2', generation: 1, severity: 'high', matched: [], steps: [], carried: [] };
      expect(nextRecord(undefined, entry, T0).action).toBe(action);
    }
    for (const actor of ['service:cordon', 'user:42', 'playbook:contain-lateral@1.2.0', 'playbook:p@3f9a2c1']) {
      expect(nextRecord(undefined, { actor, action: 'dry_run', target: 't', reason: 'r' }, T0).actor).toBe(actor);
    }
  });
});

describe('verify', () => {
  const records = chain(mixedEntries(30));

  it('accepts an intact chain and reports its head', () => {
    expect(verify(records)).toEqual({ ok: true, count: 30, head: records[29]!.hash, seq: 30 });
    expect(verify([])).toEqual({ ok: true, count: 0, head: GENESIS_HASH, seq: 0 });
  });

  it('accepts the stored JSON text of records', () => {
    expect(verify(records.map((r) => canonicalJson(r)))).toMatchObject({ ok: true, count: 30 });
    expect(verify(records.map((r) => Buffer.from(JSON.stringify(r))))).toMatchObject({ ok: true, count: 30 });
  });

  it('continues from a known head', () => {
    expect(verify(records.slice(10), { seq: 10, hash: records[9]!.hash })).toMatchObject({ ok: true, count: 20, seq: 30 });
    expect(verify(records.slice(10), { seq: 10, hash: records[8]!.hash })).toMatchObject({ ok: false, seq: 11, reason: 'broken link' });
  });

  it('a changed field: hash mismatch at that seq', () => {
    const tampered = records.map((r) => (r.seq === 7 ? { ...r, reason: 'nothing to see here' } : r));
    expect(verify(tampered)).toEqual({ ok: false, seq: 7, reason: 'hash mismatch', index: 6, count: 6 });
  });

  it('a changed nested payload: hash mismatch', () => {
    const tampered = records.map((r) => (r.seq === 4 ? { ...r, after: { ...(r.after as object), holders: ['someone-else'] } } : r));
    expect(verify(tampered)).toMatchObject({ ok: false, seq: 4, reason: 'hash mismatch' });
  });

  it('a changed record re-hashed by the forger: broken link at the next seq', () => {
    const tampered = records.map((r) => (r.seq === 7 ? rehash({ ...r, reason: 'forged' }) : r));
    expect(verify(tampered)).toMatchObject({ ok: false, seq: 8, reason: 'broken link' });
  });

  it('a bad prevHash: broken link at that seq (hash mismatch when not re-hashed)', () => {
    const forged = records.map((r) => (r.seq === 12 ? rehash({ ...r, prevHash: 'f'.repeat(64) }) : r));
    expect(verify(forged)).toMatchObject({ ok: false, seq: 12, reason: 'broken link' });
    const raw = records.map((r) => (r.seq === 12 ? { ...r, prevHash: 'f'.repeat(64) } : r));
    expect(verify(raw)).toMatchObject({ ok: false, seq: 12, reason: 'hash mismatch' });
  });

  it('a removed record: the gap is named', () => {
    expect(verify(records.filter((r) => r.seq !== 10))).toEqual({
      ok: false,
      seq: 10,
      reason: 'missing record (gap from 9 to 11)',
      index: 9,
      count: 9,
    });
    expect(verify(records.slice(1))).toMatchObject({ ok: false, seq: 1, reason: 'missing record (gap from 0 to 2)' });
  });

  it('a duplicated record: duplicate seq', () => {
    const dup = [...records.slice(0, 15), records[4]!, ...records.slice(15)];
    expect(verify(dup)).toEqual({ ok: false, seq: 5, reason: 'duplicate seq', index: 15, count: 15 });
  });

  it('two records swapped: the first out-of-place position is named', () => {
    const swapped = [...records];
    [swapped[13], swapped[14]] = [swapped[14]!, swapped[13]!];
    expect(verify(swapped)).toMatchObject({ ok: false, seq: 14, reason: 'missing record (gap from 13 to 15)', index: 13 });
  });

  it('an invalid record: the zod reason is given', () => {
    const broken = records.map((r) => (r.seq === 3 ? { ...r, action: 'format_disk' } : r));
    const result = verify(broken);
    expect(result).toMatchObject({ ok: false, seq: 3 });
    expect(!result.ok && result.reason).toMatch(/^invalid record: action: /);
    const extra = records.map((r) => (r.seq === 3 ? rehash({ ...r, smuggled: 1 }) : r));
    expect(verify(extra)).toMatchObject({ ok: false, seq: 3, reason: expect.stringMatching(/^invalid record: .*Unrecognized key.*smuggled/) });
    const text = records.map((r) => canonicalJson(r));
    text[5] = '{"seq": 6, "truncated';
    expect(verify(text)).toMatchObject({ ok: false, seq: 6, reason: expect.stringMatching(/^invalid record: malformed JSON/) });
    text[5] = '{"__proto__":{"polluted":1},"seq":6}';
    expect(verify(text)).toMatchObject({ ok: false, seq: 6, reason: expect.stringMatching(/prototype pollution/) });
  });

  it('names only the first break', () => {
    const many = records.filter((r) => r.seq !== 20).map((r) => (r.seq === 25 ? { ...r, reason: 'x' } : r));
    const v = new ChainVerifier();
    many.forEach((r) => v.push(r));
    expect(v.result()).toMatchObject({ ok: false, seq: 20 });
    expect(v.head.seq).toBe(19);
  });

  it('hashes what was stored, not what the schema made of it', () => {
    const r = records[0]!;
    expect(LedgerRecord.parse(r)).toEqual(r);
    // A key order change in the stored JSON does not matter: canonical JSON sorts keys.
    const reordered = JSON.stringify(Object.fromEntries(Object.entries(r).reverse()));
    expect(verify([reordered, ...records.slice(1)])).toMatchObject({ ok: true });
  });
});
