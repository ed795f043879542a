import { latestPerIncident } from '../../src/correlate/coalesce';
import type { Change } from '../../src/correlate/engine';
import type { Incident } from '../../src/correlate/incident';
import type { PolicyGapFinding } from '../../src/correlate/policy-gap';

const incident = (id: string, version: number) => ({ id, version }) as Incident;
const opened = (id: string, version: number): Change => ({ type: 'incident_opened', incident: incident(id, version) });
const updated = (id: string, version: number, ...reasons: string[]): Change => ({ type: 'incident_updated', incident: incident(id, version), reasons });
const gap = (id: string): Change => ({ type: 'policy_gap', finding: { id } as PolicyGapFinding });

describe('publishing only the last version of each incident in a batch', () => {
  it('keeps the last version of each incident, in the order of their last change', () => {
    const out = latestPerIncident([updated('a', 2, 'score'), updated('b', 5, 'path'), updated('a', 3, 'severity')]);
    expect(out.map((c) => c.type !== 'policy_gap' && [c.incident.id, c.incident.version])).toEqual([
      ['b', 5],
      ['a', 3],
    ]);
    expect(out[1]).toMatchObject({ type: 'incident_updated', reasons: ['score', 'severity'] });
  });

  it('publishes an incident opened and then updated within the batch as opened, at its last version', () => {
    expect(latestPerIncident([opened('a', 1), updated('a', 2, 'path'), updated('a', 3, 'score')])).toEqual([opened('a', 3)]);
  });

  it('keeps policy-gap findings apart from incidents and leaves single changes untouched', () => {
    expect(latestPerIncident([gap('g1'), opened('a', 1), gap('g1')])).toEqual([opened('a', 1), gap('g1')]);
    const one = [updated('x', 9, 'status open -> containing')];
    expect(latestPerIncident(one)).toEqual(one);
    expect(latestPerIncident([])).toEqual([]);
  });
});
