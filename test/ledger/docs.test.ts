import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson } from '../../src/ledger/canonical';
import { hashRecord } from '../../src/ledger/chain';
import { chain, mixedEntries } from './fixtures';

/** docs/ledger.md's independent verifier (bash, jq, sha256sum) agrees with Cordon's. */

const hasTools = spawnSync('bash', ['-c', 'command -v jq && command -v sha256sum']).status === 0;

(hasTools ? describe : describe.skip)('the jq + sha256sum script in docs/ledger.md', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cordon-ledger-doc-'));
  const doc = readFileSync(join(__dirname, '../../docs/ledger.md'), 'utf8');
  const script = join(dir, 'verify-ledger.sh');
  writeFileSync(script, /```bash\n(#!\/usr\/bin\/env bash\n# verify-ledger\.sh[\s\S]*?)```/.exec(doc)![1]!);
  const records = chain(mixedEntries(16));
  const lines = records.map((r) => canonicalJson(r));

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function run(input: string[]) {
    const file = join(dir, 'ledger.jsonl');
    writeFileSync(file, input.map((l) => `${l}\n`).join(''));
    const r = spawnSync('bash', [script, file], { encoding: 'utf8' });
    return { status: r.status, stdout: r.stdout.trim() };
  }

  it('verifies an intact export', () => {
    expect(run(lines)).toEqual({ status: 0, stdout: `ok: 16 records, head ${records[15]!.hash}` });
  });

  it('names the first break', () => {
    const changed = lines.map((l, i) => (i === 4 ? l.replace(/"reason":"[^"]*"/, '"reason":"edited"') : l));
    expect(run(changed)).toEqual({ status: 1, stdout: 'FAILED at seq 5: hash mismatch' });
    expect(run(lines.filter((_, i) => i !== 9))).toEqual({ status: 1, stdout: 'FAILED at record 10: seq 11 (missing or duplicate record)' });
    const forged = [...lines];
    forged[6] = canonicalJson({ ...records[6], prevHash: 'b'.repeat(64), hash: undefined });
    const body = JSON.parse(forged[6]!);
    forged[6] = canonicalJson({ ...body, hash: hashRecord(body) });
    expect(run(forged)).toEqual({ status: 1, stdout: 'FAILED at seq 7: broken link' });
  });
});
