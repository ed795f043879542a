import { resolve } from 'node:path';
import { loadPlaybooks } from '../../src/playbook/load';
import { matches, select, techniqueMatches } from '../../src/playbook/match';
import { BASE, entity, incident, playbook } from './helpers';

/** BASE with its `match:` block replaced. */
const withMatch = (match: string, name = 'auto', priority = 10) =>
  playbook(BASE.replace('match:\n  severity: high\n', `match:\n${match}`).replace('name: auto', `name: ${name}`).replace('priority: 10', `priority: ${priority}`));

describe('matches', () => {
  it('severity: a single value is a minimum, a list is exact', () => {
    const min = withMatch('  severity: high\n');
    expect(matches(min, incident({ severity: 'high' })).matched).toBe(true);
    expect(matches(min, incident({ severity: 'critical' })).matched).toBe(true);
    expect(matches(min, incident({ severity: 'medium' }))).toEqual({ matched: false, reasons: ['match.severity fails: medium is below high'] });
    const list = withMatch('  severity: [low, medium]\n');
    expect(matches(list, incident({ severity: 'medium' }))).toEqual({ matched: true, reasons: ['match.severity holds: medium is one of low, medium'] });
    expect(matches(list, incident({ severity: 'critical' })).matched).toBe(false);
  });

  it('confidence is a minimum', () => {
    const p = withMatch('  confidence: 0.8\n');
    expect(matches(p, incident({ confidence: 0.8 })).matched).toBe(true);
    expect(matches(p, incident({ confidence: 0.79 })).reasons).toEqual(['match.confidence fails: 0.79 is below 0.8']);
  });

  it('techniques: any of, a technique matches its sub-techniques and not the reverse', () => {
    expect(techniqueMatches('T1021', 'T1021')).toBe(true);
    expect(techniqueMatches('T1021', 'T1021.002')).toBe(true);
    expect(techniqueMatches('T1021.002', 'T1021.002')).toBe(true);
    expect(techniqueMatches('T1021.002', 'T1021')).toBe(false);
    expect(techniqueMatches('T1021.002', 'T1021.003')).toBe(false);
    expect(techniqueMatches('T102', 'T1021')).toBe(false);
    expect(techniqueMatches('T1021', 'T10210')).toBe(false);
    const p = withMatch('  techniques: [T1021, T1047]\n');
    expect(matches(p, incident({ techniques: ['T1021.002', 'T1570'] }))).toEqual({
      matched: true,
      reasons: ['match.techniques holds: T1021.002 (as T1021)'],
    });
    expect(matches(p, incident({ techniques: ['T1046'] })).reasons).toEqual([
      'match.techniques fails: none of T1046 is T1021, T1047 or a sub-technique of one',
    ]);
    expect(matches(withMatch('  techniques: [T1021.001]\n'), incident({ techniques: ['T1021.002'] })).matched).toBe(false);
  });

  it('entity selectors: roles, names (globs, case-insensitive), kinds, cidrs, on root / targets / any', () => {
    const inc = incident();
    expect(matches(withMatch('  entities:\n    - roles: [workstation]\n'), inc).matched).toBe(true);
    expect(matches(withMatch('  entities:\n    - roles: [domain-controller]\n'), inc).matched).toBe(false); // root is not a DC
    const dcTarget = matches(withMatch('  entities:\n    - on: targets\n      roles: [domain-controller]\n'), inc);
    expect(dcTarget).toEqual({
      matched: true,
      reasons: ['match.entities.0 holds: target ip:10.0.9.5 matches on targets; roles domain-controller'],
    });
    expect(matches(withMatch('  entities:\n    - on: any\n      kinds: [ip]\n'), inc).matched).toBe(true);
    expect(matches(withMatch('  entities:\n    - names: ["ws?"]\n'), inc).matched).toBe(true); // name WS1
    expect(matches(withMatch('  entities:\n    - names: ["ws1.corp.*"]\n'), inc).matched).toBe(true); // id ws1.corp.local
    expect(matches(withMatch('  entities:\n    - names: ["db*"]\n'), inc).matched).toBe(false);
    expect(matches(withMatch('  entities:\n    - cidrs: [10.0.0.0/24]\n      kinds: [host]\n'), inc).matched).toBe(true);
    expect(matches(withMatch('  entities:\n    - cidrs: [10.0.9.0/24]\n'), inc).matched).toBe(false); // that is a target
  });

  // A backtracking regex takes tens of seconds on this (the test would time out); the glob matcher, microseconds.
  it('a name glob with many stars answers at once on a 256-character name', () => {
    const p = withMatch('  entities:\n    - names: ["*a*a*a*a*b"]\n');
    const long = 'a'.repeat(256);
    const named = (name: string) => incident({ entities: [entity(`host:${name}`, { name, position: 'root', role: 'workstation' })], root: `host:${name}` });
    expect(matches(p, named(long)).matched).toBe(false);
    expect(matches(p, named(`${long}b`)).matched).toBe(true);
  }, 10_000);

  it('entity selectors are ANDed across the list, fields within one selector too', () => {
    const both = withMatch('  entities:\n    - roles: [workstation]\n    - on: targets\n      roles: [domain-controller]\n');
    expect(matches(both, incident()).matched).toBe(true);
    const noDc = incident({ entities: incident().entities.slice(0, 2) });
    expect(matches(both, noDc)).toEqual({
      matched: false,
      reasons: [
        'match.entities.0 holds: root WS1 (host:ws1.corp.local, 10.0.0.1) matches on root; roles workstation',
        'match.entities.1 fails: no target matches on targets; roles domain-controller',
      ],
    });
    expect(matches(withMatch('  entities:\n    - roles: [workstation]\n      kinds: [pod]\n'), incident()).matched).toBe(false);
  });

  it('labels and namespaces: read from the incident when it carries them, the namespace from a pod key otherwise', () => {
    const pods = incident({
      root: 'pod:shop/web-1',
      entities: [
        { ...entity('pod:shop/web-1', { name: 'web-1', position: 'root' }), labels: { app: 'web', tier: 'front' } } as never,
        entity('pod:payments/db-0', { name: 'db-0' }),
      ],
    });
    expect(matches(withMatch('  entities:\n    - namespaces: [shop]\n      labels: {app: web}\n'), pods).matched).toBe(true);
    expect(matches(withMatch('  entities:\n    - labels: {app: web, tier: back}\n'), pods).matched).toBe(false);
    expect(matches(withMatch('  entities:\n    - on: targets\n      namespaces: [payments]\n'), pods).matched).toBe(true);
    // no labels in the incident: a label selector never matches
    expect(matches(withMatch('  entities:\n    - on: targets\n      labels: {app: db}\n'), pods).matched).toBe(false);
  });

  it('exclude: any one that holds excludes', () => {
    const p = withMatch('  severity: high\n  exclude:\n    - roles: [scanner]\n    - on: targets\n      names: ["honeypot-*"]\n');
    expect(matches(p, incident())).toEqual({
      matched: true,
      reasons: ['match.severity holds: high is at least high', 'match.exclude holds: none of 2 exclusion(s) applies'],
    });
    const scanner = incident({ entities: incident().entities.map((e) => (e.position === 'root' ? { ...e, role: 'scanner' } : e)) });
    expect(matches(p, scanner)).toEqual({
      matched: false,
      reasons: ['match.severity holds: high is at least high', 'match.exclude.0 excludes: root WS1 (host:ws1.corp.local, 10.0.0.1) matches on root; roles scanner'],
    });
    const honeypot = incident({ entities: [...incident().entities, entity('host:honeypot-3', { name: 'honeypot-3' })] });
    expect(matches(p, honeypot).matched).toBe(false);
  });

  it('an empty match applies to every incident', () => {
    const p = playbook(BASE.replace('match:\n  severity: high\n', 'match: {}\n'));
    expect(matches(p, incident({ severity: 'low', confidence: 0 }))).toEqual({ matched: true, reasons: ['match is empty: applies to every incident'] });
  });
});

describe('select', () => {
  it('runs the highest-priority playbook that matches, whatever the order given', () => {
    const broad = withMatch('  severity: low\n', 'broad', 1);
    const narrow = withMatch('  severity: high\n  techniques: [T1021]\n', 'narrow', 50);
    const never = withMatch('  severity: critical\n', 'never', 99);
    for (const order of [[broad, narrow, never], [never, narrow, broad]]) {
      const s = select(order, incident());
      expect(s.playbook?.spec.name).toBe('narrow');
      expect(s.candidates.map((c) => [c.id.split('@')[0], c.priority, c.matched])).toEqual([
        ['never', 99, false],
        ['narrow', 50, true],
        ['broad', 1, true],
      ]);
    }
    expect(select([never], incident()).playbook).toBeUndefined();
  });

  it('the shipped set: a ladder from auto-quarantine down to notify-only', () => {
    const { playbooks } = loadPlaybooks([resolve(__dirname, '../../playbooks')]);
    const pick = (over: Parameters<typeof incident>[0]) => select(playbooks, incident(over)).playbook?.spec.name;
    expect(pick({ severity: 'critical', confidence: 0.95 })).toBe('auto-quarantine');
    expect(pick({ severity: 'high', confidence: 0.8 })).toBe('auto-quarantine');
    expect(pick({ severity: 'critical', confidence: 0.6 })).toBe('contain-now-approve-to-keep');
    expect(pick({ severity: 'critical', confidence: 0.6, techniques: ['T1046'] })).toBe('approve-then-contain');
    expect(pick({ severity: 'high', confidence: 0.6 })).toBe('approve-then-contain');
    expect(pick({ severity: 'medium', confidence: 0.99 })).toBe('notify-only');
    expect(pick({ severity: 'low', confidence: 0.1 })).toBe('notify-only');
    // a scanner is never auto-quarantined: a person decides
    const scanner = incident().entities.map((e) => (e.position === 'root' ? { ...e, role: 'scanner' } : e));
    expect(pick({ severity: 'critical', confidence: 0.95, entities: scanner })).toBe('approve-then-contain');
  });
});
