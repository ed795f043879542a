import { incidentStatuses } from '../../src/contain/incident-status';

const none = () => false;

describe('what a quarantine change means for its incidents', () => {
  it('an applied quarantine makes its incident contained', () => {
    expect(incidentStatuses({ kind: 'applied', incidentId: 'inc-1', endedFor: [] }, none)).toEqual([{ incident: 'inc-1', status: 'contained' }]);
    expect(incidentStatuses({ kind: 'applied', endedFor: [] }, none)).toEqual([]);
  });

  it('a failed quarantine sends its incident back to open, unless it holds another target', () => {
    expect(incidentStatuses({ kind: 'failed', incidentId: 'inc-1', endedFor: [] }, none)).toEqual([{ incident: 'inc-1', status: 'open' }]);
    expect(incidentStatuses({ kind: 'failed', incidentId: 'inc-1', endedFor: [] }, () => true)).toEqual([]);
  });

  it('an expiry releases every holder that holds nothing else', () => {
    const holds = (id: string) => id === 'inc-2';
    expect(incidentStatuses({ kind: 'expired', endedFor: ['inc-1', 'inc-2', 'inc-3'] }, holds)).toEqual([
      { incident: 'inc-1', status: 'released' },
      { incident: 'inc-3', status: 'released' },
    ]);
  });

  it('one holder letting go of a shared target releases only that holder', () => {
    expect(incidentStatuses({ kind: 'released', incidentId: 'inc-1', endedFor: ['inc-1'] }, none)).toEqual([{ incident: 'inc-1', status: 'released' }]);
  });
});
