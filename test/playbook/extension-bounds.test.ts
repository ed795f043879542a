import { formatIssue, parsePlaybook } from '../../src/playbook/load';
import { BASE } from './helpers';

/** max_extension and max_lifetime on a quarantine step: durations, within the hard limit, the lifetime at least the ttl. */
describe('quarantine step extension bounds in a playbook', () => {
  const problems = (bounds: string) => {
    const r = parsePlaybook(BASE.replace('    ttl: 1h\n', `    ttl: 1h\n${bounds}`), 'bad.yaml');
    return r.ok ? [] : r.issues.map(formatIssue);
  };

  it('accepts bounds within the rules', () => {
    const r = parsePlaybook(BASE.replace('    ttl: 1h\n', '    ttl: 1h\n    max_extension: 4h\n    max_lifetime: 3d\n'), 'ok.yaml');
    if (!r.ok) throw new Error(r.issues.map(formatIssue).join('\n'));
    expect(r.playbook.spec.steps[1]).toMatchObject({ max_extension: '4h', max_lifetime: '3d' });
  });

  it.each([
    ['a max_extension above the 7d hard limit', '    max_extension: 8d\n', 'bad.yaml:19:20: steps.1.max_extension: 8d is above the hard limit of 7d'],
    ['a max_lifetime shorter than the ttl', '    max_lifetime: 30m\n', 'bad.yaml:19:19: steps.1.max_lifetime: 30m is shorter than the ttl 1h'],
    ['a max_extension that is not a duration', '    max_extension: forever\n', 'bad.yaml:19:20: steps.1.max_extension: expected a duration'],
  ])('refuses %s', (_, bounds, expected) => {
    const got = problems(bounds);
    if (!got.some((line) => line.startsWith(expected))) throw new Error(`expected ${expected}\ngot:\n${got.join('\n')}`);
  });
});
