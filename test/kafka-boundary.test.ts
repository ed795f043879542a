import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const SRC = join(__dirname, '..', 'src');
/** The client library is chosen by measurement (docs/performance.md) and may change: only these modules may import it. */
const CLIENT_MODULES = ['assigner.ts', 'kafka.ts'];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

describe('the Kafka client stays behind src/kafka.ts', () => {
  it('no other module of src imports kafkajs', () => {
    const importers = sources(SRC)
      .filter((f) => /from 'kafkajs'|require\('kafkajs'\)/.test(readFileSync(f, 'utf8')))
      .map((f) => relative(SRC, f));
    expect(importers.sort()).toEqual(CLIENT_MODULES);
  });
});
