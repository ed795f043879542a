import { Directory } from '../../src/correlate/directory';

const holder = (key: string, at: number) => ({ key, role: 'workstation', roleSource: 'inventory' as const, flags: 0, at });

describe('the directory of addresses other partitions announced', () => {
  it('keeps at most its cap, the oldest going first', () => {
    const d = new Directory(2, 1000);
    d.bind('10.0.0.1', holder('host:a', 1));
    d.bind('10.0.0.2', holder('host:b', 2));
    d.bind('10.0.0.3', holder('host:c', 3));
    expect(d.size).toBe(2);
    expect(d.holderOf('10.0.0.1', 3)).toBeUndefined();
    expect(d.holderOf('10.0.0.3', 3)?.key).toBe('host:c');
  });

  it('forgets a binding older than its TTL, and an older announcement never replaces a newer one', () => {
    const d = new Directory(16, 1000);
    d.bind('10.0.0.1', holder('host:new', 500));
    expect(d.bind('10.0.0.1', holder('host:old', 100))).toBe(false);
    expect(d.holderOf('10.0.0.1', 1400)?.key).toBe('host:new');
    expect(d.holderOf('10.0.0.1', 1501)).toBeUndefined();
    d.learn('10.0.0.9', 2, 500);
    d.expire(1600);
    expect(d.encode()).toEqual([]);
    expect(d.flagsOf('10.0.0.9')).toBe(0);
  });

  it('adds learned flags up, and survives its own encoding', () => {
    const d = new Directory(16, 1000);
    expect(d.learn('10.0.0.9', 1, 10)).toBe(true);
    expect(d.learn('10.0.0.9', 1, 20)).toBe(false);
    d.learn('10.0.0.9', 2, 30);
    d.bind('10.0.0.1', { ...holder('host:a', 5), name: 'A' });
    const copy = new Directory(16, 1000);
    copy.load(d.encode(), d.encodeLearned());
    expect(copy.flagsOf('10.0.0.9')).toBe(3);
    expect(copy.holderOf('10.0.0.1', 10)).toEqual({ ...holder('host:a', 5), name: 'A' });
  });
});
