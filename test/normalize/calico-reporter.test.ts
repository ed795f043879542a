import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Outcome, StreamContext } from '../../src/normalize/normalizer';
import { normalizeRecord } from '../../src/normalize/registry';

/**
 * Calico's `reporter`: `src`, `dst`, `fwd` (reported by a host endpoint that forwarded the flow,
 * applyOnForward policies) and, aggregated over reporters, lists such as `dst, fwd`. The records
 * are the observability clinic's real deny record (see calico.test.ts) with the reporter changed.
 */
const CLINIC_DENY = readFileSync(path.resolve(__dirname, '../fixtures/calico/flows-log-deny.jsonl'), 'utf8').trim();
const ctx = (): StreamContext => ({ state: new Map() });
const withReporter = (reporter: unknown): Outcome => {
  const r = JSON.parse(CLINIC_DENY) as Record<string, unknown>;
  r.reporter = reporter;
  return normalizeRecord(JSON.stringify(r), 'calico', ctx());
};

describe('calico: reporter values', () => {
  test.each(['src', 'dst', 'fwd', 'dst, fwd', 'src, fwd', 'src,dst'])('%j: the record is read, its action kept', (reporter) => {
    expect(withReporter(reporter)).toMatchObject({
      kind: 'events',
      events: [{ action: 'denied', dst: { ip: '10.48.127.224', port: 5050 } }],
    });
  });

  test.each([['fwd, fwd'], ['dst, fwd, src, dst'], ['forward'], [''], [7]])('%j is a reject naming reporter', (reporter) => {
    const o = withReporter(reporter);
    expect(o.kind === 'reject' && o.reason).toMatch(/^calico: reporter: /);
  });
});
