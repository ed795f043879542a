import { generateKeyPairSync, verify as edVerify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config';
import { canonicalJson } from '../../src/ledger/canonical';
import { signCheckpoint } from '../../src/ledger/checkpoint';
import { droppedLeases } from '../../src/ledger/rebuild';
import type { Lease } from '../../src/ledger/records';
import { lease } from './fixtures';

/** What docs/ledger.md says about checkpoints that no other test shows. */

const doc = readFileSync(join(__dirname, '../../docs/ledger.md'), 'utf8');
const tmp = mkdtempSync(join(tmpdir(), 'cordon-cp-docs-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('docs/ledger.md: checkpoints', () => {
  it('the config example loads, with each of its stores', () => {
    const yaml = /```yaml\n(ledger:\n  checkpoint:[\s\S]*?)```/.exec(doc)![1]!;
    const lines = yaml.split('\n');
    const storeAt = (n: number) => {
      const stores = lines.map((l, i) => (/^\s*#? ?store:/.test(l) ? i : -1)).filter((i) => i >= 0);
      return lines
        .filter((_, i) => !stores.includes(i) || i === stores[n])
        .map((l, i) => l.replace(/^(\s*)# (store:)/, '$1$2'))
        .join('\n');
    };
    const stores = [0, 1, 2].map((n) => {
      const file = join(tmp, `example-${n}.yaml`);
      writeFileSync(file, storeAt(n));
      return loadConfig({ file, env: {} }).ledger.checkpoint!;
    });
    expect(stores[0]).toEqual({
      privateKeyFile: '/etc/cordon/checkpoint.key',
      publicKeyFiles: ['/etc/cordon/checkpoint.pub'],
      intervalMs: 300_000,
      store: { kind: 'file', path: '/var/lib/cordon/checkpoints.jsonl' },
    });
    expect(stores[1]!.store).toEqual({ kind: 'elasticsearch', index: 'cordon-ledger-checkpoints' });
    expect(stores[2]!.store).toEqual({ kind: 'splunk', sourcetype: 'cordon:ledger:checkpoint' });
    expect(() => loadConfig({ env: {}, overrides: { ledger: { checkpoint: { ...stores[0], intervalMs: 999 } } } })).toThrow(/ledger\.checkpoint\.intervalMs/);
  });

  it('sig is Ed25519 over the canonical JSON of the other fields, in base64', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const body = { topic: 'cordon.ledger', partition: 0, offset: '15', seq: 16, head: 'a'.repeat(64), at: 1_700_000_000_000 };
    const { sig, ...rest } = signCheckpoint(body, privateKey);
    expect(rest).toEqual(body);
    expect(edVerify(null, Buffer.from(canonicalJson(body)), publicKey, Buffer.from(sig, 'base64'))).toBe(true);
  });

  it('a rebuild drops a live lease the ledger has no lease for, or has ended; not one it keeps live', () => {
    const live = (target: string, over: Partial<Lease> = {}): Lease => ({ ...lease(target), ledgerSeq: 3, ...over }) as Lease;
    const current = [live('pod:a'), live('pod:b'), live('pod:c'), live('pod:d', { state: 'released', holders: [] })];
    const rebuilt = new Map<string, Lease>([
      ['pod:a', live('pod:a', { state: 'pending' })],
      ['pod:b', live('pod:b', { state: 'released', holders: [], ledgerSeq: 9 })],
    ]);
    expect(droppedLeases(current, rebuilt).map((d) => [d.current.target, d.rebuilt?.state])).toEqual([
      ['pod:b', 'released'],
      ['pod:c', undefined],
    ]);
  });
});
