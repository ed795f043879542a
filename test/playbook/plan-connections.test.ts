import { Command } from 'commander';
import { registerPlaybook } from '../../src/cli/playbook';
import { plan, type PlannedStep } from '../../src/playbook/plan';
import { BASE, incident, NOW, playbook, tmpDir, writeFixture } from './helpers';

/** cut_connections where the chosen layer cannot cut established connections: the plan says so. */

type Quarantine = Extract<PlannedStep, { type: 'quarantine' }>;
const quarantineOf = (steps: PlannedStep[]) => steps.find((s): s is Quarantine => s.type === 'quarantine')!;

const withEnforcer = (enforcer: string, extra = '') =>
  BASE.replace('enforcer: nftables', `enforcer: ${enforcer}`).replace('    ttl: 1h\n', `    ttl: 1h\n${extra}`);
const CANNOT = (layer: string) =>
  `${layer} cannot cut existing connections: cut_connections is asked, but established connections of the target stay open; only new ones are blocked`;

async function cordonTest(...args: string[]): Promise<string> {
  const program = new Command('cordon').exitOverride();
  registerPlaybook(program);
  let out = '';
  const o = jest.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  try {
    await program.parseAsync(['node', 'cordon', 'playbook', 'test', ...args]);
  } finally {
    o.mockRestore();
    process.exitCode = undefined;
  }
  return out;
}

describe('cut_connections and what the layer can do', () => {
  it('nftables cuts established connections: the plan says it cuts them, with no note', () => {
    const q = quarantineOf(plan(playbook(BASE), incident(), { now: NOW }));
    expect(q).toMatchObject({ enforcer: 'nftables', cutConnections: true, cutsConnections: true, notes: [] });
    expect(q.summary).toContain(', cutting established connections)');
  });

  it.each(['illumio', 'labelstore', 'webhook'])('%s cannot: the step notes and its summary say so', (layer) => {
    const q = quarantineOf(plan(playbook(withEnforcer(layer)), incident(), { now: NOW }));
    expect(q).toMatchObject({ cutConnections: true, cutsConnections: false });
    expect(q.notes).toEqual([CANNOT(layer)]);
    expect(q.summary).toContain(`; ${layer} cannot cut existing connections)`);
    expect(q.summary).not.toContain('cutting established connections');
  });

  it('kubernetes cannot either (label changes leave established flows up)', () => {
    const q = quarantineOf(plan(playbook(withEnforcer('kubernetes')), incident(), { now: NOW }));
    expect(q.notes).toEqual([CANNOT('kubernetes')]);
  });

  it('nothing is said where cut_connections is false', () => {
    const q = quarantineOf(plan(playbook(withEnforcer('illumio', '    cut_connections: false\n')), incident(), { now: NOW }));
    expect(q).toMatchObject({ cutConnections: false, cutsConnections: false, notes: [] });
    expect(q.summary).not.toMatch(/cut/);
  });

  it("the configured layer's capabilities decide: a webhook receiver that declares connectionCut cuts", () => {
    const declared = quarantineOf(plan(playbook(withEnforcer('webhook')), incident(), { now: NOW, connectionCut: { webhook: true } }));
    expect(declared).toMatchObject({ cutsConnections: true, notes: [] });
    const nft = quarantineOf(plan(playbook(BASE), incident(), { now: NOW, connectionCut: { nftables: false } }));
    expect(nft.notes).toEqual([CANNOT('nftables')]);
  });

  it('`cordon playbook test` prints the note under the step, and --json carries it', async () => {
    const dir = tmpDir();
    const pb = writeFixture(dir, 'illumio.yaml', withEnforcer('illumio'));
    const inc = writeFixture(dir, 'inc.json', JSON.stringify(incident()));
    const text = await cordonTest(pb, inc, '--now', '2024-05-01T12:00:00Z');
    expect(text).toContain(`     note: ${CANNOT('illumio')}`);
    const json = JSON.parse(await cordonTest(pb, inc, '--now', '2024-05-01T12:00:00Z', '--json'));
    expect(quarantineOf(json.plan)).toMatchObject({ cutsConnections: false, notes: [CANNOT('illumio')] });
    const nft = await cordonTest(writeFixture(dir, 'nft.yaml', BASE), inc, '--now', '2024-05-01T12:00:00Z');
    expect(nft).not.toContain('cannot cut');
  });
});
