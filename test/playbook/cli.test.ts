import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Command } from 'commander';
import { registerPlaybook } from '../../src/cli/playbook';
import type { Incident } from '../../src/correlate/incident';
import { replay } from '../../src/correlate/replay';
import type { CordonEvent } from '../../src/events';
import { normalizeRecord } from '../../src/normalize/registry';
import { loadPlaybookFile, loadPlaybooks } from '../../src/playbook/load';
import { select } from '../../src/playbook/match';
import { plan } from '../../src/playbook/plan';
import { BASE, incident, tmpDir, writeFixture } from './helpers';

const REPO = resolve(__dirname, '../..');
const PLAYBOOKS = join(REPO, 'playbooks');
const RECORDING = resolve(REPO, '../shared/datasets/otrf-lateral-movement/covenant_sharpsc_create_dcerpc_smb_svcctl.jsonl.gz');

/** Run `cordon playbook ...` in-process; what it printed and the exit code it set. */
async function cordon(...args: string[]): Promise<{ out: string; err: string; code: number }> {
  const program = new Command('cordon').exitOverride();
  registerPlaybook(program);
  let out = '';
  let err = '';
  const o = jest.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  const e = jest.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  process.exitCode = undefined;
  try {
    await program.parseAsync(['node', 'cordon', 'playbook', ...args]);
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = undefined;
  return { out, err, code };
}

/** The engine's incidents for a shared recording (WFP events normalized, then replayed). */
function engineIncidents(): Incident[] {
  const ctx = { state: new Map<string, unknown>() };
  const events: CordonEvent[] = [];
  for (const line of gunzipSync(readFileSync(RECORDING)).toString('utf8').split('\n')) {
    if (!line.trim()) continue;
    const outcome = normalizeRecord(line, 'wfp', ctx);
    if (outcome.kind === 'events') events.push(...outcome.events);
  }
  return replay(events).incidents;
}

describe('cordon playbook validate', () => {
  it('prints ok name@version for each shipped playbook (default directory: playbooks)', async () => {
    const cwd = process.cwd();
    process.chdir(REPO);
    try {
      const r = await cordon('validate');
      expect(r.code).toBe(0);
      expect(r.err).toBe('');
      expect(r.out.trim().split('\n')).toEqual(
        loadPlaybooks(['playbooks']).playbooks.map((p) => `ok ${p.id}  ${p.file}`),
      );
      expect(r.out).toMatch(/^ok approve-then-contain@[0-9a-f]{12}  playbooks\/approve-then-contain\.yaml$/m);
    } finally {
      process.chdir(cwd);
    }
  });

  it('prints file:line:col errors and exits 1 when any file is bad', async () => {
    const dir = tmpDir();
    const good = writeFixture(dir, 'good.yaml', BASE);
    const bad = writeFixture(dir, 'bad.yaml', BASE.replace('name: auto', 'name: other').replace('priority: 10', 'priority: 11').replace('    ttl: 1h\n', ''));
    const r = await cordon('validate', good, bad);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^ok auto@[0-9a-f]{12}  .*good\.yaml$/m);
    expect(r.err).toContain(`${bad}:14:5: steps.1.ttl: required for a quarantine step`);
    expect(r.err).toContain('1 error(s) in 1 file(s)');
  });
});

describe('cordon playbook schema', () => {
  it('prints the JSON Schema that playbooks/playbook.schema.json holds', async () => {
    const r = await cordon('schema');
    expect(JSON.parse(r.out)).toEqual(JSON.parse(readFileSync(join(PLAYBOOKS, 'playbook.schema.json'), 'utf8')));
    expect(r.out).toBe(readFileSync(join(PLAYBOOKS, 'playbook.schema.json'), 'utf8'));
  });
});

describe('cordon playbook test', () => {
  it('refuses an incident that is not one, naming the field', async () => {
    const dir = tmpDir();
    const file = writeFixture(dir, 'inc.json', JSON.stringify({ ...incident(), confidence: 7 }));
    const r = await cordon('test', join(PLAYBOOKS, 'notify-only.yaml'), file);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`${file}: not an incident: confidence: Too big: expected number to be <=1\n`);
    const proto = writeFixture(dir, 'proto.json', '{"__proto__": {"polluted": true}}');
    expect((await cordon('test', join(PLAYBOOKS, 'notify-only.yaml'), proto)).err).toMatch(/forbidden key "__proto__"/);
    const lines = writeFixture(dir, 'lines.jsonl', `${JSON.stringify(incident())}\n{oops\n`);
    expect((await cordon('test', join(PLAYBOOKS, 'notify-only.yaml'), lines)).err).toMatch(/lines\.jsonl:2: malformed JSON/);
  });

  it('refuses a bad --now', async () => {
    const dir = tmpDir();
    const file = writeFixture(dir, 'inc.json', JSON.stringify(incident()));
    await expect(cordon('test', join(PLAYBOOKS, 'notify-only.yaml'), file, '--now', 'yesterday')).rejects.toThrow(
      /--now = "yesterday": expected an ISO 8601 time/,
    );
  });

  it('prints the selected playbook, why, and its plan for a synthetic incident; --json carries the same plan', async () => {
    const dir = tmpDir();
    const inc = incident({ severity: 'critical', confidence: 0.95 });
    const file = writeFixture(dir, 'inc.json', JSON.stringify(inc));
    const r = await cordon('test', PLAYBOOKS, file, '--now', '2024-05-01T12:00:00Z');
    expect(r.code).toBe(0);
    const auto = loadPlaybookFile(join(PLAYBOOKS, 'auto-quarantine.yaml'));
    if (!auto.ok) throw new Error('auto-quarantine.yaml does not load');
    const id = auto.playbook.id;
    expect(r.out).toContain(`  match       300  ${id}`);
    expect(r.out).toContain(`playbook  ${id}`);
    expect(r.out).toContain('matched   yes');
    expect(r.out).toContain(`     job inc-0123456789abcdef0123.${id}.quarantine-root`);
    expect(r.out).toContain('     - WS1 (host:ws1.corp.local, 10.0.0.1, workstation): quarantine  expires 2024-05-01T13:00:00.000Z');

    const j = await cordon('test', PLAYBOOKS, file, '--now', '2024-05-01T12:00:00Z', '--json');
    const parsed = JSON.parse(j.out);
    expect(parsed).toMatchObject({ incident: inc.id, now: '2024-05-01T12:00:00.000Z', matched: true, playbook: { id, mode: 'auto' } });
    expect(parsed.plan).toEqual(JSON.parse(JSON.stringify(plan(auto.playbook, inc, { now: Date.parse('2024-05-01T12:00:00Z') }))));
  });

  const recorded = existsSync(RECORDING) ? describe : describe.skip;
  recorded('on an incident the engine produced from a shared recording', () => {
    let file: string;
    let incidents: Incident[];
    beforeAll(() => {
      incidents = engineIncidents();
      file = writeFixture(tmpDir(), 'incidents.jsonl', incidents.map((i) => JSON.stringify(i)).join('\n') + '\n');
    });

    it('selects from the shipped set and prints every step with its job id, touching nothing', async () => {
      expect(incidents.length).toBeGreaterThan(0);
      const r = await cordon('test', PLAYBOOKS, file);
      expect(r.code).toBe(0);
      expect(r.err).toBe('');
      const { playbooks } = loadPlaybooks([PLAYBOOKS]);
      for (const inc of incidents) {
        const chosen = select(playbooks, inc).playbook!;
        expect(chosen).toBeDefined();
        expect(r.out).toContain(`incident  ${inc.id}  ${inc.severity}`);
        expect(r.out).toContain(`playbook  ${chosen.id}`);
        expect(r.out).toContain(`plan      from ${new Date(inc.lastSeen).toISOString()} (nothing was touched)`);
        for (const s of chosen.spec.steps) expect(r.out).toContain(`     job ${inc.id}.${chosen.id}.${s.id}\n`);
      }
    });

    it('shows what a containing playbook would do to the attacker (WORKSTATION5) even when it does not match', async () => {
      const inc = incidents[0]!;
      const r = await cordon('test', join(PLAYBOOKS, 'contain-now-approve-to-keep.yaml'), file, '--now', '2024-05-01T12:00:00Z');
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/^matched   (yes|no: this playbook would not run; below is what it would do if it did)$/m);
      expect(r.out).toMatch(/^  1\. quarantine-root \[quarantine\]  nftables:quarantine  at 2024-05-01T12:00:00\.000Z$/m);
      expect(r.out).toContain('     - WORKSTATION5 (host:workstation5.theshire.local, 172.18.39.5');
      expect(r.out).toContain('expires 2024-05-01T12:15:00.000Z');
      expect(r.out).toContain('kept only if "ask-oncall" approves; else released by 2024-05-01T12:10:00.000Z');
      expect(r.out).toContain(`     job ${inc.id}.contain-now-approve-to-keep@`);
    });

    it('an approval-first playbook contains nothing before soc-oncall (then security-leads) decides', async () => {
      const r = await cordon('test', join(PLAYBOOKS, 'approve-then-contain.yaml'), file, '--now', '2024-05-01T12:00:00Z', '--json');
      const result = JSON.parse(r.out.trim().split('\n')[0]!);
      const ask = result.plan.find((s: { id: string }) => s.id === 'ask-oncall');
      expect(ask).toMatchObject({ type: 'approve', approvers: ['soc-oncall'], onTimeout: 'escalate', escalation: { approvers: ['security-leads'] } });
      const root = result.plan.find((s: { id: string }) => s.id === 'quarantine-root');
      expect(root.gatedBy).toBe('ask-oncall');
      expect(root.startsAt).toEqual({ earliest: '2024-05-01T12:00:00.000Z', latest: '2024-05-01T13:00:00.000Z' });
      expect(root.targets[0]).toMatchObject({ name: 'WORKSTATION5', decision: 'quarantine', reasons: ['approved by step "ask-oncall"'] });
      expect(root.targets[0].expiresAt).toEqual({ earliest: '2024-05-01T16:00:00.000Z', latest: '2024-05-01T17:00:00.000Z' });
    });
  });
});
