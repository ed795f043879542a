import { existsSync, readFileSync } from 'node:fs';
import { ENV, loadConfig } from '../src/config';
import { FORMATS } from '../src/normalize/normalizer';
import { aliasName } from '../src/siem/ecs';

/** The README's "Connecting a SOC" commands and its list of formats agree with the code. */
const README = readFileSync('README.md', 'utf8');

function section(title: string): string {
  const start = README.indexOf(`## ${title}\n`);
  expect(start).toBeGreaterThanOrEqual(0);
  const end = README.indexOf('\n## ', start + 1);
  return README.slice(start, end < 0 ? undefined : end);
}

describe('README: connecting a SOC', () => {
  const soc = section('Connecting a SOC');

  it('names only environment variables Cordon reads, and they set the SIEM writers', () => {
    const names = [...new Set(soc.match(/\bCORDON_[A-Z_]+(?==)/g) ?? [])];
    expect(names.length).toBeGreaterThanOrEqual(5);
    expect(names.filter((n) => !Object.hasOwn(ENV, n))).toEqual([]);
    const env = Object.fromEntries(names.map((n) => [n, n === 'CORDON_SPLUNK_ENABLED' ? 'true' : n.endsWith('_URL') ? 'https://example.internal:8088' : 'secret-value']));
    const config = loadConfig({ env });
    expect(config.elasticsearch.url).toBe('https://example.internal:8088');
    expect(config.elasticsearch.auth).toEqual({ apiKey: 'secret-value' });
    expect(config.splunk).toMatchObject({ enabled: true, hecUrl: 'https://example.internal:8088', token: 'secret-value' });
  });

  it('names files and docs that exist (a glob: at least one file)', () => {
    const paths = [...new Set(soc.match(/\b(?:connectors|docs)\/[\w./*-]+[\w*]/g) ?? [])];
    expect(paths.length).toBeGreaterThanOrEqual(6);
    for (const p of paths) {
      if (p.endsWith('*.conf')) expect(['indexes', 'inputs', 'props', 'eventtypes', 'tags'].every((f) => existsSync(`${p.slice(0, -6)}${f}.conf`))).toBe(true);
      else expect([p, existsSync(p)]).toEqual([p, true]);
    }
  });

  it('the index it searches is the alias Cordon writes incidents under', () => {
    expect(soc).toContain(aliasName('incident'));
  });
});

describe('README and docs/input-formats.md list every format', () => {
  it.each(FORMATS)('%s', (format) => {
    expect(section('The `cordon` command')).toContain(`\`${format}\``);
    expect(readFileSync('docs/input-formats.md', 'utf8')).toContain(`| \`${format}\` |`);
  });
});
