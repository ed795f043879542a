import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';

const REPO = resolve(__dirname, '../..');
const CORDON = resolve(REPO, 'bin/cordon');
const RECORDING = resolve(REPO, '../shared/datasets/otrf-lateral-movement/covenant_sharpsc_create_dcerpc_smb_svcctl.jsonl.gz');

/** Runs the built `cordon` (scripts/test.sh builds before jest) and returns what it printed and its exit code. */
async function cordon(...args: string[]): Promise<{ out: string; err: string; code: number }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(CORDON, args, { cwd: REPO, env: { ...process.env, CORDON_LOG_LEVEL: 'error' } });
    return { out: stdout, err: stderr, code: 0 };
  } catch (e) {
    const x = e as { stdout: string; stderr: string; code: number };
    return { out: x.stdout, err: x.stderr, code: x.code };
  }
}

describe('cordon replay, as a user runs it', () => {
  it('--json prints the one incident of a recorded attack as a JSON line', async () => {
    const { out, code } = await cordon('replay', '--format', 'wfp', '--json', RECORDING);
    expect(code).toBe(0);
    const incidents = out.trim().split('\n').map((line) => JSON.parse(line) as { root: string; entities: { ip?: string }[] });
    expect(incidents).toHaveLength(1);
    expect(incidents[0]!.entities.map((e) => e.ip)).toContain('172.18.39.6');
  });

  it('names a missing file in one line, without a stack trace, and exits non-zero', async () => {
    const { err, code } = await cordon('replay', '--format', 'wfp', '/nonexistent/recording.jsonl');
    expect(code).toBe(1);
    expect(err.trim()).toBe("cordon: ENOENT: no such file or directory, open '/nonexistent/recording.jsonl'");
  });
});
