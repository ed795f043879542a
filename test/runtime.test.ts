import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import pkg from '../package.json';

const ROOT = join(__dirname, '..');
const SYSTEM_NODE = ['/usr/bin/node', '/usr/local/bin/node'].find(existsSync);

describe('runtime: the Node the project pins', () => {
  it('runs the tests on the pinned Node 24, matching engines', () => {
    expect(pkg.dependencies.node).toMatch(/^24\.\d+\.\d+$/);
    expect(process.version).toBe(`v${pkg.dependencies.node}`);
    expect(pkg.engines.node).toBe('>=24 <25');
  });

  it('allows the node package its install script, so npm ci on a clean clone fetches the binary', () => {
    expect(pkg.allowScripts).toMatchObject({ node: true });
  });

  (SYSTEM_NODE ? it : it.skip)('bin/cordon started by the system node hands over to the pinned one', () => {
    const out = execFileSync(SYSTEM_NODE!, [join(ROOT, 'bin/cordon'), '--version'], { encoding: 'utf8' });
    expect(out.trim()).toBe(`${pkg.version} (node v${pkg.dependencies.node})`);
  });

  (SYSTEM_NODE ? it : it.skip)('bin/cordon passes the exit code of the pinned node through', () => {
    let status: number | null = null;
    try {
      execFileSync(SYSTEM_NODE!, [join(ROOT, 'bin/cordon'), 'no-such-command'], { stdio: 'pipe' });
    } catch (err) {
      status = (err as { status: number | null }).status;
    }
    expect(status).toBe(1);
  });
});
