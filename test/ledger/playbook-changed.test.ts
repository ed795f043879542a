import { CARRIED_IN_RECORD, LedgerEntry } from '../../src/ledger/records';

/** The playbook_changed record: its incident and its payload are checked on append, like every record read back. */
describe('playbook_changed entries', () => {
  const after = {
    from: 'watch@0123456789ab',
    to: 'contain@ba9876543210',
    generation: 1,
    severity: 'critical',
    version: 2,
    matched: ['match.severity holds: critical is at least critical'],
    steps: ['inc-1.contain@ba9876543210.quarantine-root.g1'],
    carried: [{ step: 'notify-soc', identity: 'notify:notify-soc:splunk', why: 'already notified splunk for this incident' }],
  };
  const entry = { actor: 'playbook:contain@ba9876543210', action: 'playbook_changed', target: 'inc-1', before: { playbook: 'watch@0123456789ab' }, after, reason: 'incident version 2 chose contain', incidentId: 'inc-1' };
  const issues = (e: unknown) => {
    const r = LedgerEntry.safeParse(e);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('is accepted with its incident and a whole payload', () => {
    expect(issues(entry)).toEqual([]);
  });

  it('is refused without its incident, with a payload missing a field, or with one field too many', () => {
    const { incidentId: _id, ...noIncident } = entry;
    expect(issues(noIncident)).toEqual(['incidentId: is required for playbook_changed']);
    const { to: _to, ...noTo } = after;
    expect(issues({ ...entry, after: noTo })).toEqual([expect.stringMatching(/^after\.to: /)]);
    expect(issues({ ...entry, after: { ...after, generation: 0 } })).toEqual([expect.stringMatching(/^after\.generation: /)]);
    expect(issues({ ...entry, after: { ...after, carried: [{ step: 'x', identity: 'y' }] } })).toEqual([expect.stringMatching(/^after\.carried\.0\.why: /)]);
    expect(issues({ ...entry, after: { ...after, extra: true } })).toEqual([expect.stringMatching(/^after: /)]);
    const many = Array.from({ length: CARRIED_IN_RECORD + 1 }, (_, i) => ({ step: 'q', identity: `quarantine:ip:10.0.${i >> 8}.${i & 255}`, why: 'held' }));
    expect(issues({ ...entry, after: { ...after, carried: many } })).toEqual([expect.stringMatching(/^after\.carried: /)]);
    expect(issues({ ...entry, after: { ...after, carried: many.slice(0, CARRIED_IN_RECORD), carriedLeftOut: 1 } })).toEqual([]);
  });
});
