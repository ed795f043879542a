import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OUTPUT_DIR } from '../../bench/support/cordon-process';
import { describeRebuild } from '../../src/cli/audit';
import { uniq } from '../support/stack';
import { cordonIn } from './support';

describe('cordon audit output: text by default, --json', () => {
  it('audit verify --file --json gives the result with its message; a broken export exits 1 either way', async () => {
    const file = join(OUTPUT_DIR, `${uniq('audit-json')}.jsonl`);
    writeFileSync(file, '');
    expect(await cordonIn(['audit', 'verify', '--file', file])).toMatchObject({ code: 0, out: expect.stringMatching(/^ok: 0 records, head /) });
    const ok = await cordonIn(['audit', 'verify', '--file', file, '--json']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out)).toMatchObject({ ok: true, count: 0, message: expect.stringMatching(/^ok: 0 records/) });

    writeFileSync(file, '{"seq":1,"not":"a record"}\n');
    const text = await cordonIn(['audit', 'verify', '--file', file]);
    expect(text.out).toMatch(/^FAILED at seq .* \(line 1\): /);
    const broken = await cordonIn(['audit', 'verify', '--file', file, '--json']);
    expect(text.code).toBe(1);
    expect(broken.code).toBe(1);
    expect(JSON.parse(broken.out)).toMatchObject({ ok: false, index: 0, message: text.out.trim() });
  });

  it('audit rebuild describes the rebuilt registry in words (--json keeps the counts)', () => {
    const summary = { records: 24, leases: 6, byState: { pending: 1, applied: 2, failed: 1, released: 1, expired: 1 }, reschedule: 2, unresolved: 1, head: { seq: 24, hash: 'h' }, recordedSeq: undefined };
    expect(describeRebuild(summary as Parameters<typeof describeRebuild>[0])).toBe(
      'rebuilt the quarantine registry from 24 ledger record(s), head seq 24: 6 lease(s) (pending 1, applied 2, failed 1, released 1, expired 1)\n' +
        '  expiry jobs to re-schedule: 2; pending leases left unresolved: 1\n' +
        '  not recorded in the ledger (--no-record)',
    );
    expect(describeRebuild({ ...summary, recordedSeq: 25 } as Parameters<typeof describeRebuild>[0]).split('\n')[2]).toBe('  recorded in the ledger as seq 25');
  });
});
