import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Ajv from 'ajv';
import YAML from 'yaml';
import { loadConfig } from '../../src/config';
import { channelProblems } from '../../src/notify/config';
import { contentVersion, formatIssue, loadPlaybooks } from '../../src/playbook/load';
import { playbookJsonSchema } from '../../src/playbook/schema';
import { BASE, playbook, problems, tmpDir, writeFixture } from './helpers';

const REPO = resolve(__dirname, '../..');
const SHIPPED = join(REPO, 'playbooks');
const shippedFiles = readdirSync(SHIPPED).filter((f) => f.endsWith('.yaml'));

/** BASE turned into another mode: approve-then-contain with an approve step before `contain`. */
const withApprove = (approve: string, mode = 'approve-then-contain') =>
  BASE.replace('mode: auto', `mode: ${mode}`).replace('  - id: contain', `${approve}  - id: contain`);

describe('shipped playbooks', () => {
  it('are the four documented ones and all validate, as a set', () => {
    expect(shippedFiles.sort()).toEqual([
      'approve-then-contain.yaml',
      'auto-quarantine.yaml',
      'contain-now-approve-to-keep.yaml',
      'notify-only.yaml',
    ]);
    const { playbooks, issues } = loadPlaybooks([SHIPPED]);
    expect(issues.map(formatIssue)).toEqual([]);
    expect(playbooks.map((p) => [p.spec.name, p.spec.mode])).toEqual([
      ['approve-then-contain', 'approve-then-contain'],
      ['auto-quarantine', 'auto'],
      ['contain-now-approve-to-keep', 'contain-now-approve-to-keep'],
      ['notify-only', 'notify-only'],
    ]);
    for (const p of playbooks) expect(p.id).toMatch(new RegExp(`^${p.spec.name}@[0-9a-f]{12}$`));
  });

  it('start with the default config: every channel they notify exists without configuring one', () => {
    const { playbooks } = loadPlaybooks([SHIPPED]);
    expect(channelProblems(playbooks, loadConfig({ env: {} }).notify)).toEqual([]);
  });

  it('say what the brief asks of them', () => {
    const [atc, auto, cnak, notify] = loadPlaybooks([SHIPPED]).playbooks.map((p) => p.spec);
    expect(auto!.match).toMatchObject({ severity: 'high', confidence: 0.8 });
    expect(auto!.steps.find((s) => s.type === 'quarantine')).toMatchObject({ target: 'root', ttl: '1h' });
    expect(auto!.steps.some((s) => s.type === 'notify')).toBe(true);
    const q = cnak!.steps.findIndex((s) => s.type === 'quarantine');
    const a = cnak!.steps.findIndex((s) => s.type === 'approve');
    expect(q).toBeLessThan(a);
    expect(cnak!.steps[q]).toMatchObject({ ttl: '15m' });
    expect(cnak!.steps[a]).toMatchObject({ on_timeout: 'release' });
    expect(atc!.steps.findIndex((s) => s.type === 'approve')).toBeLessThan(atc!.steps.findIndex((s) => s.type === 'quarantine'));
    expect(notify!.match.severity).toEqual(['low', 'medium']);
    expect(notify!.steps.every((s) => s.type === 'notify' || s.type === 'enrich')).toBe(true);
  });

  it('start with the yaml-language-server schema line and are commented', () => {
    for (const f of shippedFiles) {
      const text = readFileSync(join(SHIPPED, f), 'utf8');
      expect(text.split('\n')[0]).toBe('# yaml-language-server: $schema=./playbook.schema.json');
      expect(text.split('\n').filter((l) => l.trim().startsWith('#')).length).toBeGreaterThan(5);
    }
  });

  it('validate against playbooks/playbook.schema.json, which is the generated schema', () => {
    const file = JSON.parse(readFileSync(join(SHIPPED, 'playbook.schema.json'), 'utf8'));
    expect(file).toEqual(playbookJsonSchema());
    const validate = new Ajv({ strict: false, allErrors: true }).compile(file);
    for (const f of shippedFiles) {
      const ok = validate(YAML.parse(readFileSync(join(SHIPPED, f), 'utf8')));
      expect(validate.errors ?? []).toEqual([]);
      expect(ok).toBe(true);
    }
    // and an editor flags what the loader refuses field by field: here a quarantine without ttl
    expect(validate({ ...YAML.parse(BASE), steps: [{ id: 'x', type: 'quarantine', target: 'root', enforcer: 'nftables' }] })).toBe(false);
    expect(validate(YAML.parse(BASE))).toBe(true);
  });
});

describe('load errors name file:line:col and the field path', () => {
  const cases: [string, string, string][] = [
    ['a quarantine without ttl', BASE.replace('    ttl: 1h\n', ''), 'bad.yaml:14:5: steps.1.ttl: required for a quarantine step'],
    ['a ttl above 24h', BASE.replace('ttl: 1h', 'ttl: 48h'), 'bad.yaml:18:10: steps.1.ttl: 48h is above 1d: shorten it, or add allow_long_ttl'],
    [
      'a ttl above the hard limit, even with a reason',
      BASE.replace('ttl: 1h', 'ttl: 30d\n    allow_long_ttl: {reason: "a long investigation"}'),
      'bad.yaml:18:10: steps.1.ttl: 30d is above the hard limit of 7d',
    ],
    [
      'allow_long_ttl that is not needed',
      BASE.replace('ttl: 1h', 'ttl: 1h\n    allow_long_ttl: {reason: "a long investigation"}'),
      'bad.yaml:19:21: steps.1.allow_long_ttl: not needed',
    ],
    ['a duration that does not parse', BASE.replace('ttl: 1h', 'ttl: 1 hour'), 'bad.yaml:18:10: steps.1.ttl: expected a duration such as 30s, 15m, 4h or 1d'],
    ['a zero duration', BASE.replace('ttl: 1h', 'ttl: 0s'), 'bad.yaml:18:10: steps.1.ttl: expected a duration'],
    ['duplicate step ids', BASE.replace('id: contain', 'id: tell'), 'bad.yaml:14:9: steps.1.id: duplicate step id "tell" (also steps.0.id)'],
    ['an unknown field', BASE.replace('    ttl: 1h\n', '    ttl: 1h\n    tll: 2h\n'), 'bad.yaml:19:5: steps.1.tll: unknown field'],
    ['an unknown step type', BASE.replace('type: quarantine', 'type: quarantin'), 'bad.yaml:15:11: steps.1.type: type must be one of notify, enrich, approve, quarantine, wait, release'],
    ['an unknown template variable', BASE.replace('{{ incident.id }}', '{{ incident.idd }}'), 'bad.yaml:13:14: steps.0.message: unknown template variable "incident.idd"'],
    ['an unclosed placeholder', BASE.replace('{{ incident.id }}', '{{ incident.id'), 'bad.yaml:13:14: steps.0.message: has an unbalanced'],
    [
      'notify-only with a quarantine step',
      BASE.replace('mode: auto', 'mode: notify-only'),
      'bad.yaml:15:11: steps.1.type: a notify-only playbook has no quarantine step',
    ],
    [
      'approve-then-contain with the quarantine before the approval',
      BASE.replace('mode: auto', 'mode: approve-then-contain'),
      'bad.yaml:14:5: steps.1: quarantine "contain" runs before any approval is decided',
    ],
    [
      'approve-then-contain with a non-blocking approval and no wait',
      withApprove('  - id: ask\n    type: approve\n    approvers: [soc]\n    deadline: 10m\n    on_timeout: release\n    blocking: false\n'),
      'bad.yaml:20:5: steps.2: quarantine "contain" runs before any approval is decided',
    ],
    [
      'escalate without escalate_to',
      withApprove('  - id: ask\n    type: approve\n    approvers: [soc]\n    deadline: 10m\n    on_timeout: escalate\n'),
      'bad.yaml:14:5: steps.1.escalate_to: required when on_timeout is escalate',
    ],
    [
      'escalate_to without escalate',
      withApprove('  - id: ask\n    type: approve\n    approvers: [soc]\n    deadline: 10m\n    on_timeout: release\n    escalate_to: [leads]\n'),
      'bad.yaml:19:18: steps.1.escalate_to: only used when on_timeout is escalate',
    ],
    [
      'an approve step without on_timeout',
      withApprove('  - id: ask\n    type: approve\n    approvers: [soc]\n    deadline: 10m\n'),
      'bad.yaml:14:5: steps.1.on_timeout: required for an approve step',
    ],
    [
      'contain-now-approve-to-keep without an approval after the quarantine',
      BASE.replace('mode: auto', 'mode: contain-now-approve-to-keep'),
      'bad.yaml:10:3: steps: contain-now-approve-to-keep needs an approve step after quarantine "contain"',
    ],
    ['auto with an approve step', withApprove('  - id: ask\n    type: approve\n    approvers: [soc]\n    deadline: 10m\n    on_timeout: release\n', 'auto'), 'bad.yaml:15:11: steps.1.type: an auto playbook does not ask for approval'],
    ['auto without a quarantine', BASE.replace(/  - id: contain[\s\S]*?ttl: 1h\n/, ''), 'bad.yaml:10:3: steps: an auto playbook needs a quarantine step'],
    ['auto without protected_approval', BASE.slice(0, BASE.indexOf('safety:')), 'bad.yaml:1:1: safety: protected_approval is required'],
    ['a wait with neither duration nor until', BASE.replace('  - id: contain', '  - id: pause\n    type: wait\n  - id: contain'), 'bad.yaml:14:5: steps.1: a wait step needs exactly one of duration, until'],
    ['a wait with both', BASE.replace('  - id: contain', '  - id: pause\n    type: wait\n    duration: 1m\n    until: approval\n  - id: contain'), 'bad.yaml:14:5: steps.1: a wait step needs exactly one of duration, until'],
    ['a wait until approval with nothing pending', BASE.replace('  - id: contain', '  - id: pause\n    type: wait\n    until: approval\n  - id: contain'), 'bad.yaml:16:12: steps.1.until: nothing to wait for'],
    ['a release before any quarantine', BASE.replace('  - id: contain', '  - id: undo\n    type: release\n    target: root\n  - id: contain'), 'bad.yaml:14:5: steps.1: nothing to release: no earlier quarantine step'],
    ['a wrong apiVersion', BASE.replace('cordon.io/v1', 'cordon.io/v2'), 'bad.yaml:1:13: apiVersion: expected cordon.io/v1'],
    ['a missing name', BASE.replace('name: auto\n', ''), 'bad.yaml:1:1: name: required'],
    ['an invalid severity', BASE.replace('severity: high', 'severity: huge'), 'bad.yaml:8:13: match.severity: expected a severity (low, medium, high, critical) or a list of them'],
    ['an invalid technique id', BASE.replace('severity: high', 'techniques: [T1021.2]'), 'bad.yaml:8:16: match.techniques.0: expected an ATT&CK technique id'],
    ['an empty selector', BASE.replace('severity: high', 'entities: [{on: root}]'), 'bad.yaml:8:14: match.entities.0: a selector needs at least one of roles'],
    ['an invalid label key', BASE.replace('    ttl: 1h\n', '    ttl: 1h\n    labels: {"bad key!": "x"}\n'), 'bad.yaml:19:14: steps.1.labels.bad key!: invalid key: is not a valid label key'],
    ['a __proto__ key', BASE.replace('    ttl: 1h\n', '    ttl: 1h\n    labels:\n      __proto__: x\n'), 'bad.yaml:20:7: steps.1.labels.__proto__: is a forbidden key (prototype pollution)'],
    ['a constructor key', BASE.replace('    ttl: 1h\n', '    ttl: 1h\n    labels: {"constructor": "x"}\n'), 'bad.yaml:19:14: steps.1.labels.constructor: is a forbidden key (prototype pollution)'],
    ['a duplicate key', BASE.replace('    ttl: 1h\n', '    ttl: 1h\n    ttl: 2h\n'), 'bad.yaml:19:5: (yaml): Map keys must be unique'],
    ['a YAML syntax error', BASE.replace('channels: [splunk]', 'channels: [splunk'), 'bad.yaml:13:5: (yaml): Flow sequence in block collection must be sufficiently indented'],
    ['tabs', BASE.replace('  severity: high', '\tseverity: high'), 'bad.yaml:8:1: (yaml): Tabs are not allowed as indentation'],
    ['an alias', BASE.replace('approvers: [soc]', 'approvers: &a [soc]').replace('deadline: 15m', 'deadline: 15m\n  protected: *a'), 'bad.yaml:23:14: safety.protected: aliases (*a) are not allowed'],
    ['two documents', BASE + '---\nkind: Playbook\n', 'bad.yaml:23:1: (yaml): Source contains multiple documents'],
    ['an empty file', '', 'bad.yaml:1:1: (root): expected a mapping, found nothing (null)'],
    ['a list', '- a\n- b\n', 'bad.yaml:1:1: (root): expected a mapping, found a list'],
  ];
  // contain-now with on_timeout approve, and a deadline longer than the quarantine
  const keep = (timeout: string, deadline = '10m') =>
    BASE.replace('mode: auto', 'mode: contain-now-approve-to-keep').replace(
      '    ttl: 1h\n',
      `    ttl: 15m\n  - id: ask\n    type: approve\n    approvers: [oncall]\n    deadline: ${deadline}\n    on_timeout: ${timeout}\n`,
    );
  cases.push(['contain-now-approve-to-keep whose silence keeps the quarantine', keep('approve'), 'bad.yaml:23:17: steps.2.on_timeout: must be release or escalate in contain-now-approve-to-keep']);
  cases.push(['contain-now-approve-to-keep whose decision outlives the quarantine', keep('release', '20m'), 'bad.yaml:22:15: steps.2.deadline: the decision can take 20m, longer than quarantine "contain" holds (ttl 15m)']);
  cases.push([
    'contain-now-approve-to-keep whose escalation outlives the quarantine',
    keep('escalate\n    escalate_to: [leads]', '10m'),
    'bad.yaml:22:15: steps.2.deadline: the decision can take 20m (with the escalation), longer than quarantine "contain" holds (ttl 15m)',
  ]);

  it.each(cases)('%s', (_, text, expected) => {
    const got = problems(text);
    if (!got.some((line) => line.startsWith(expected))) throw new Error(`expected ${expected}\ngot:\n${got.join('\n')}`);
  });

  it('a document nested too deep: refused as too deep, by the parser or before validation', () => {
    const flow = problems(`${BASE}extra: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`);
    expect(flow).toEqual([expect.stringMatching(/^bad\.yaml:23:\d+: \(yaml\): too deep: nesting goes beyond 32 levels \(the parser ran out of stack\)$/)]);
    const block = Array.from({ length: 40 }, (_, i) => `${'  '.repeat(i + 1)}a:`).join('\n');
    expect(problems(`${BASE}extra:\n${block} 1\n`)).toEqual([`bad.yaml:1:1: extra${'.a'.repeat(31)}: too deep: nesting goes beyond 32 levels`]);
  });

  it('accept what the rules allow: a long ttl with a reason, contain-now that keeps by decision, a wait until a non-blocking approval', () => {
    playbook(BASE.replace('ttl: 1h', 'ttl: 3d\n    allow_long_ttl: {reason: "forensics take three days"}'));
    playbook(
      BASE.replace('mode: auto', 'mode: contain-now-approve-to-keep').replace(
        '    ttl: 1h\n',
        '    ttl: 15m\n  - id: ask\n    type: approve\n    approvers: [oncall]\n    deadline: 5m\n    on_timeout: escalate\n    escalate_to: [leads]\n',
      ),
    );
    playbook(
      withApprove(
        '  - id: ask\n    type: approve\n    approvers: [soc]\n    deadline: 10m\n    on_timeout: release\n    blocking: false\n  - id: tell-more\n    type: notify\n    channels: [webhook]\n    message: waiting\n  - id: hold\n    type: wait\n    until: approval\n',
      ),
    );
  });

  it('a file that does not exist, and a directory without playbooks', () => {
    const dir = tmpDir();
    const r = loadPlaybooks([join(dir, 'nope.yaml'), dir]);
    expect(r.issues.map(formatIssue)).toEqual([
      expect.stringMatching(/nope\.yaml:0:0: \(file\): cannot read: ENOENT/),
      expect.stringMatching(/:0:0: \(file\): no \*\.yaml or \*\.yml playbook files in this directory$/),
    ]);
  });

  it('names and priorities are unique across a set, reported at the second file', () => {
    const dir = tmpDir();
    writeFixture(dir, 'a.yaml', BASE);
    writeFixture(dir, 'b.yaml', BASE.replace('name: auto', 'name: other'));
    writeFixture(dir, 'c.yml', BASE.replace('priority: 10', 'priority: 11'));
    const r = loadPlaybooks([dir]);
    expect(r.playbooks).toHaveLength(3);
    expect(r.issues.map(formatIssue)).toEqual([
      `${join(dir, 'b.yaml')}:5:11: priority: 10 is also the priority of auto (${join(dir, 'a.yaml')}); priorities decide which playbook runs, so they are unique`,
      `${join(dir, 'c.yml')}:3:7: name: "auto" is also the name of ${join(dir, 'a.yaml')}`,
    ]);
  });
});

describe('versioning by content hash', () => {
  it('is the first 12 hex of sha256 over the content with normalized line endings', () => {
    const lf = playbook(BASE);
    expect(lf.version).toMatch(/^[0-9a-f]{12}$/);
    expect(lf.id).toBe(`auto@${lf.version}`);
    expect(contentVersion(BASE)).toBe(lf.version);
  });

  it('CRLF, lone CR and a BOM do not change it', () => {
    const v = playbook(BASE).version;
    expect(playbook(BASE.replace(/\n/g, '\r\n')).version).toBe(v);
    expect(contentVersion(BASE.replace(/\n/g, '\r'))).toBe(v);
    expect(playbook('\uFEFF' + BASE).version).toBe(v);
  });

  it('a real change, even a comment, is a new version', () => {
    const v = playbook(BASE).version;
    expect(playbook(BASE.replace('ttl: 1h', 'ttl: 2h')).version).not.toBe(v);
    expect(playbook('# reviewed by alice\n' + BASE).version).not.toBe(v);
    expect(playbook(BASE.replace('ttl: 1h', 'ttl:  1h')).version).not.toBe(v);
  });

  it('is the same when the file is read from disk', () => {
    const dir = tmpDir();
    writeFixture(dir, 'crlf.yaml', BASE.replace(/\n/g, '\r\n'));
    const r = loadPlaybooks([dir]);
    expect(r.issues).toEqual([]);
    expect(r.playbooks[0]!.version).toBe(playbook(BASE).version);
  });
});
