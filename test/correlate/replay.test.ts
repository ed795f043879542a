import { replay } from '../../src/correlate/replay';
import { apt29Events, available, rootIp } from './recordings';

const suite = available ? describe : describe.skip;

suite('replay reports every incident the run raised', () => {
  it('keeps day 1 of APT29 when both days are replayed together, though the engine forgot it', () => {
    const day1 = replay(apt29Events(['day1']));
    const both = replay(apt29Events(['day1', 'day2']));
    const scranton = day1.incidents.find((i) => rootIp(i) === '10.0.1.4');
    expect(scranton).toBeDefined();
    // by the end of day 2 the day-1 incident is past its idle time and retention: gone from memory
    expect(both.engine.incident(scranton!.id)).toBeUndefined();
    const kept = both.incidents.find((i) => i.id === scranton!.id);
    expect(kept).toMatchObject({ root: scranton!.root, firstSeen: scranton!.firstSeen });
    expect(kept!.counters.denied).toBe(scranton!.counters.denied);
  });
});
