import { HOUR, MIN, SEC, T0, allowed, denied, host, ip, keyOf, pod, run } from './builder';

describe('an application retrying one denied service is a policy gap, never an incident', () => {
  const app = pod('orders-5f7c', '10.244.3.7', { role: 'server' });
  const db = host('pg-main', '10.0.8.20', 'server');

  it('reports a low-severity policy_gap for hours of retries to the same destination and port', () => {
    const events = Array.from({ length: 6 * 12 }, (_, i) =>
      denied(app, db, 5432, T0 + i * 5 * MIN, { policy: { id: 'np-1', name: 'deny-db' } }),
    );
    const r = run(events);
    expect(r.opened).toEqual([]);
    expect(r.updated).toEqual([]);
    expect(r.incidents).toEqual([]);
    expect(r.gaps).toHaveLength(1);
    const gap = r.gaps[0]!;
    expect(gap).toMatchObject({
      type: 'policy_gap',
      severity: 'low',
      src: { key: keyOf(app), name: 'orders-5f7c' },
      dst: { key: keyOf(db), name: 'pg-main' },
      port: 5432,
      service: 'database',
      policy: { id: 'np-1', name: 'deny-db' },
    });
    expect(gap.attempts).toBeGreaterThanOrEqual(6);
    expect(gap.lastSeen - gap.firstSeen).toBeGreaterThanOrEqual(HOUR);
    expect(gap.id).toMatch(/^gap-[0-9a-f]{20}$/);
    expect(gap.summary).toMatch(/not lateral movement/);
  });

  it('stays a policy gap between hosts of unknown role on an admin port, re-reported once a day with the same id', () => {
    const src = ip('10.50.0.1');
    const dst = ip('10.50.0.2');
    const events = Array.from({ length: 30 * 4 }, (_, i) => denied(src, dst, 445, T0 + i * 15 * MIN));
    const r = run(events);
    expect(r.incidents).toEqual([]);
    expect(r.gaps).toHaveLength(2);
    expect(r.gaps[0]!.id).toBe(r.gaps[1]!.id);
    expect(r.gaps[1]!.attempts).toBeGreaterThan(r.gaps[0]!.attempts);
  });

  it('is not reported for a short burst of retransmissions', () => {
    const r = run(Array.from({ length: 10 }, (_, i) => denied(app, db, 5432, T0 + i * SEC)));
    expect(r.changes).toEqual([]);
  });
});

describe('broadcast and multicast noise is never lateral movement', () => {
  const src = host('ws1', '10.1.0.1', 'workstation');

  it.each([
    ['NetBIOS name', '10.1.0.2', 137],
    ['NetBIOS datagram', '10.1.0.2', 138],
    ['LLMNR', '10.1.0.2', 5355],
    ['mDNS', '10.1.0.2', 5353],
    ['SSDP', '10.1.0.2', 1900],
    ['limited broadcast', '255.255.255.255', 445],
    ['/24 broadcast', '10.1.0.255', 445],
    ['IPv4 multicast', '224.0.0.251', 445],
    ['IPv4 multicast (high)', '239.255.255.250', 3389],
    ['IPv6 multicast', 'ff02::1:3', 445],
  ])('%s (%s:%i)', (_name, address, port) => {
    const target = address === '10.1.0.2' ? host('ws2', address, 'workstation') : ip(address);
    const events = Array.from({ length: 200 }, (_, i) => denied(src, target, port, T0 + i * 30 * SEC, { protocol: 'udp' }));
    const r = run(events);
    expect(r.changes).toEqual([]);
    expect(r.engine.stats.noise).toBe(200);
    expect(r.engine.size.entities).toBe(0);
  });
});

describe('allowlisted sources (authorized scanners, monitoring) are never scored', () => {
  const targets = Array.from({ length: 40 }, (_, i) => host(`ws${i + 10}`, `10.1.1.${i + 10}`, 'workstation'));
  const sweep = (src: { ip?: string; workload?: never } | ReturnType<typeof host>) =>
    targets.flatMap((t, i) => [445, 3389, 22].map((p, j) => denied(src, t, p, T0 + i * SEC + j)));

  it.each([
    ['labels', { labels: { team: 'vuln-mgmt' } }],
    ['name', { name: 'nessus-*' }],
    ['CIDR', { cidr: ['10.200.0.0/24'] }],
  ])('matched by %s', (_how, selector) => {
    const scanner = {
      ip: '10.200.0.5',
      workload: { kind: 'vm' as const, id: 'vm-17', name: 'nessus-01', labels: { team: 'vuln-mgmt', 'cordon.io/role': 'workstation' } },
    };
    const r = run(sweep(scanner as never), { allowlist: [selector] });
    expect(r.changes).toEqual([]);
    expect(r.engine.stats.allowlisted).toBe(120);
    expect(run(sweep(scanner as never)).opened).toHaveLength(1); // the same sweep, not allowlisted
  });

  it('matches an address-only source by CIDR, and an IPv6 source', () => {
    expect(run(sweep(ip('10.200.0.9')), { allowlist: [{ cidr: '10.200.0.0/24' }] }).changes).toEqual([]);
    expect(run(sweep(ip('fd00:5::9')), { allowlist: [{ cidr: 'fd00:5::/64' }] }).changes).toEqual([]);
  });

  it('only dampens a scanner or monitoring role that is not allowlisted', () => {
    const mon = host('prom-1', '10.0.9.9', 'monitoring');
    const one = run([denied(mon, targets[0]!, 22, T0), denied(mon, targets[1]!, 22, T0 + MIN)]);
    expect(one.changes).toEqual([]);
  });
});

describe('ordinary background is not lateral movement', () => {
  it('permitted admin sessions to servers, from admin hosts and fleet-wide to one service open nothing', () => {
    const desks = Array.from({ length: 50 }, (_, i) => host(`ws${i + 2}`, `10.1.0.${i + 2}`, 'workstation'));
    const dc = host('dc1', '10.0.0.10', 'domain-controller');
    const files = host('files1', '10.0.0.20', 'file-server');
    const admin = host('adm1', '10.0.0.30', 'admin');
    const members = desks.flatMap((d, i) => [
      allowed(d, dc, 445, T0 + i * SEC),
      allowed(d, dc, 135, T0 + i * SEC + 1),
      allowed(d, dc, 49667, T0 + i * SEC + 2),
      allowed(d, files, 445, T0 + i * SEC + 3),
    ]);
    const administered = desks.flatMap((d, i) => [allowed(admin, d, 445, T0 + HOUR + i * SEC), allowed(admin, d, 5985, T0 + HOUR + i * SEC + 1)]);
    expect(run([...members, ...administered]).changes).toEqual([]);
    // a collector of unknown role that every member reaches on WinRM (event forwarding): a service
    const collector = ip('10.0.0.40');
    const asMember = desks.map((d, i) => allowed(d, dc, 88, T0 + i * SEC));
    const forwarded = desks.map((d, i) => allowed(d, collector, 5985, T0 + MIN + i * SEC));
    const r = run([allowed(collector, dc, 88, T0), ...asMember, ...forwarded]);
    expect(r.opened).toEqual([]);
    // from the third source on, the collector serves WinRM to the fleet and sessions to it weigh nothing
    expect(desks.slice(2).every((d) => r.engine.entity(keyOf(d))!.risk === 0)).toBe(true);
  });

  it('a few denied ordinary ports spread over the day do not add up to an incident', () => {
    const a = ip('10.60.0.1');
    const events = Array.from({ length: 200 }, (_, i) => denied(a, ip(`10.61.${i % 50}.${1 + (i % 7)}`), 8000 + (i % 13), T0 + i * 7 * MIN));
    expect(run(events).opened).toEqual([]);
  });
});
