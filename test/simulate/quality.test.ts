import type { CorrelationConfigInput } from '../../src/correlate/config';
import { replay } from '../../src/correlate/replay';
import type { CordonEvent } from '../../src/events';
import type { StreamContext } from '../../src/normalize/normalizer';
import { normalizeRecord } from '../../src/normalize/registry';
import { evaluate, formatEvaluation, type Evaluation } from '../../src/simulate/evaluate';
import { presetConfig, type PresetName } from '../../src/simulate/presets';
import { Scenario } from '../../src/simulate/scenario';

/**
 * Detection quality on the generator's scenarios: raw vendor records -> normalizers -> replay
 * through the correlation engine (configured with the scenario's allowlist and role inventory) ->
 * incident-level recall and precision against the ground truth. Printed for every run.
 */

const SEEDS = [1, 2, 3, 4, 5, 6, 7, 8];
const QUICKSTART_SEEDS = [1, 2, 3];

const engineConfig = (s: Scenario) => s.truth.engineConfig as CorrelationConfigInput;

interface Run {
  evaluation: Evaluation;
  truth: Scenario['truth'];
}

function run(seed: number, preset: PresetName = 'small'): Evaluation {
  return runWithTruth(seed, preset).evaluation;
}

function runWithTruth(seed: number, preset: PresetName = 'small'): Run {
  const s = new Scenario(presetConfig(preset, { seed }));
  const ctx: StreamContext = { state: new Map() };
  const events: CordonEvent[] = [];
  for (const r of s.records()) {
    const o = normalizeRecord(r.text, r.format, ctx);
    if (o.kind === 'events') events.push(...o.events);
  }
  const result = replay(events, engineConfig(s));
  const e = evaluate(s.truth, result.incidents, { policyGaps: result.policyGaps });
  const detail = e.perAttack
    .map((a) => `    ${a.id.padEnd(22)} ${a.detected ? 'detected' : 'MISSED  '} ${a.severity ?? ''} techniques ${a.techniquesFound.join(',') || '-'} of ${a.techniquesExpected.join(',')}`)
    .join('\n');
  const gaps = e.policyGaps.map((g) => `    policy gap ${g.src} -> ${g.dst}:${g.port} reported as a gap: ${g.reported}`).join('\n');
  console.log(`${formatEvaluation(e, `${preset} seed ${seed}`)}\n${detail}\n${gaps}`);
  return { evaluation: e, truth: s.truth };
}

/** The shipped auto-quarantine playbook acts on high or critical severity. */
const ACTED_ON = new Set(['high', 'critical']);

describe('detection quality on the small scenario', () => {
  const results = new Map<number, Evaluation>();
  beforeAll(() => {
    for (const seed of SEEDS) results.set(seed, run(seed));
  });

  it('precision over all seeds >= 0.98', () => {
    const all = [...results.values()];
    const incidents = all.reduce((n, e) => n + e.incidents, 0);
    const fp = all.reduce((n, e) => n + e.falsePositives.length, 0);
    expect(incidents).toBeGreaterThan(0);
    expect((incidents - fp) / incidents).toBeGreaterThanOrEqual(0.98);
  });

  it('no benign source reaches the severity the shipped auto-quarantine playbook acts on', () => {
    const acted = [...results.values()].flatMap((e) => e.falsePositives).filter((f) => ACTED_ON.has(f.severity));
    expect(acted.map((f) => `${f.rootName} ${f.severity}: ${f.reason}`)).toEqual([]);
  });

  // One small scenario holds 11 attacks, so one miss is 0.909: recall is judged over all seeds.
  it('recall over all seeds >= 0.95, and no seed below 0.9', () => {
    const attacks = [...results.values()].flatMap((e) => e.perAttack);
    const recall = attacks.filter((a) => a.detected).length / attacks.length;
    console.log(`small seeds ${SEEDS.join(',')}: recall ${(recall * 100).toFixed(1)}% (${attacks.filter((a) => a.detected).length}/${attacks.length} attacks)`);
    expect(recall).toBeGreaterThanOrEqual(0.95);
    for (const seed of SEEDS) expect(results.get(seed)!.recall).toBeGreaterThanOrEqual(0.9);
  });

  it.each(SEEDS)('seed %d: precision >= 0.95', (seed) => {
    expect(results.get(seed)!.precision).toBeGreaterThanOrEqual(0.95);
  });

  it.each(SEEDS)('seed %d: no policy gap and no allowlisted scanner raises an incident', (seed) => {
    const e = results.get(seed)!;
    expect(e.policyGaps.flatMap((g) => g.incidents)).toEqual([]);
    expect(e.falsePositives.filter((f) => f.reason?.startsWith('allowlisted'))).toEqual([]);
  });
});

describe('detection quality on the quickstart scenario', () => {
  const results = new Map<number, Evaluation>();
  beforeAll(() => {
    for (const seed of QUICKSTART_SEEDS) results.set(seed, run(seed, 'quickstart'));
  });

  it.each(QUICKSTART_SEEDS)('seed %d: recall and precision >= 0.95', (seed) => {
    expect(results.get(seed)!.recall).toBeGreaterThanOrEqual(0.95);
    expect(results.get(seed)!.precision).toBeGreaterThanOrEqual(0.95);
  });
});

describe('detection quality on movement over permitted flows (the credentialed scenario)', () => {
  const runs = new Map<number, Run>();
  beforeAll(() => {
    for (const seed of SEEDS) runs.set(seed, runWithTruth(seed, 'credentialed'));
  });

  // Detection of these is the open part of the detection issue (docs/detection.md): the recall is
  // printed, not asserted, until the engine can tell them from a member's ordinary sessions.
  it('the attacks make permitted flows only, in WFP and Zeek', () => {
    const attacks = [...runs.values()].flatMap((r) => r.truth.attacks);
    expect(attacks.length).toBeGreaterThanOrEqual(SEEDS.length * 4);
    expect(attacks.filter((a) => a.deniedAttempts > 0 || a.allowedAttempts === 0).map((a) => a.id)).toEqual([]);
    const formats = new Set(attacks.flatMap((a) => a.formats));
    for (const f of ['wfp', 'zeek']) expect([f, formats.has(f)]).toEqual([f, true]);
    const detected = [...runs.values()].flatMap((r) => r.evaluation.perAttack).filter((a) => a.detected).length;
    console.log(`credentialed seeds ${SEEDS.join(',')}: ${attacks.length} attacks over permitted flows only, ${detected} detected`);
  });

  it('no benign source reaches the severity the shipped auto-quarantine playbook acts on', () => {
    const acted = [...runs.values()].flatMap((r) => r.evaluation.falsePositives).filter((f) => ACTED_ON.has(f.severity));
    expect(acted.map((f) => `${f.rootName} ${f.severity}: ${f.reason}`)).toEqual([]);
  });
});
