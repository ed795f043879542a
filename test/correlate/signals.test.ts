import { formatExplanation } from '../../src/correlate/explain';
import { HOUR, MIN, SEC, T0, allowed, anomaly, denied, host, ip, keyOf, pod, run } from './builder';

const ws1 = host('ws1', '10.1.0.1', 'workstation');
const ws2 = host('ws2', '10.1.0.2', 'workstation');
const ws3 = host('ws3', '10.1.0.3', 'workstation');

describe('remote-administration ports, weighted by who talks to whom', () => {
  it('opens an incident on one denied endpoint-mapper (RPC/DCOM) attempt from a workstation to a workstation', () => {
    const r = run([denied(ws1, ws2, 135, T0)]);
    expect(r.opened).toHaveLength(1);
    const inc = r.opened[0]!;
    expect(inc.root).toBe(keyOf(ws1));
    expect(inc.techniques).toEqual(['T1021.003']);
    expect(inc.score).toBe(8);
    expect(inc.severity).toBe('low');
    expect(inc.entities.map((e) => [e.key, e.role, e.position])).toEqual([
      [keyOf(ws1), 'workstation', 'root'],
      [keyOf(ws2), 'workstation', 'target'],
    ]);
    const ev = inc.evidence.items[0]!;
    expect(ev.rule).toBe('admin_port');
    expect(ev.weight).toBe(8);
    expect(ev.reason).toMatch(/workstations do not administer each other/);
    expect(inc.path.edges).toEqual([
      expect.objectContaining({ from: keyOf(ws1), to: keyOf(ws2), ports: [135], services: ['rpc'], denied: 1 }),
    ]);
    expect(inc.summary).toMatch(/^ws1 \(10\.1\.0\.1, workstation\) attempted RPC\/DCOM against 1 host \(ws2/);
  });

  it('does not open on one lone denied SMB attempt between workstations, retransmissions included (a typo)', () => {
    const syn = [0, 1, 3, 7, 15].map((s) => denied(ws1, ws2, 445, T0 + s * SEC));
    expect(run(syn).changes).toEqual([]);
    expect(run([denied(ws1, ws2, 3389, T0)]).changes).toEqual([]);
    // two lone attempts from one host in the same hour, far apart: still nothing
    expect(run([denied(ws1, ws2, 445, T0), denied(ws1, ws3, 3389, T0 + 35 * MIN)]).changes).toEqual([]);
  });

  it('opens on lone SMB attempts once corroborated: a burst on a second pair', () => {
    const r = run([denied(ws1, ws2, 445, T0), denied(ws1, ws3, 445, T0 + 2 * MIN)]);
    expect(r.opened).toHaveLength(1);
    const inc = r.opened[0]!;
    expect(inc.root).toBe(keyOf(ws1));
    expect(inc.techniques).toEqual(['T1021.002', 'T1570']);
    expect(inc.score).toBeCloseTo(8 * Math.pow(2, -2 / 240) + 8, 3); // the first decayed over 2 min
    expect(inc.path.edges.map((e) => [e.to, e.ports, e.services, e.denied])).toEqual([
      [keyOf(ws2), [445], ['smb'], 1],
      [keyOf(ws3), [445], ['smb'], 1],
    ]);
    expect(inc.evidence.items[0]!.reason).toMatch(/workstations do not administer each other/);
    expect(inc.summary).toMatch(/^ws1 \(10\.1\.0\.1, workstation\) attempted SMB against 2 hosts/);
  });

  it('opens on lone attempts once corroborated: persistence, coming back to its targets over an hour or two', () => {
    const slow = [denied(ws1, ws2, 3389, T0), denied(ws1, ws3, 3389, T0 + 30 * MIN)];
    expect(run(slow).changes).toEqual([]);
    const back = run([...slow, denied(ws1, ws2, 3389, T0 + 70 * MIN)]);
    expect(back.opened).toHaveLength(1);
    expect(back.opened[0]!.counters.denied).toBe(3);
    expect(back.opened[0]!.lastSeen).toBe(T0 + 70 * MIN);
    // one pair retried for hours is a policy gap, not persistence
    const gap = run(Array.from({ length: 12 }, (_, i) => denied(ws1, ws2, 445, T0 + i * 10 * MIN)));
    expect(gap.opened).toEqual([]);
  });

  it('opens on a lone attempt once corroborated: an anomaly that weighs something, not a low-score guess', () => {
    expect(run([denied(ws1, ws2, 445, T0), anomaly(ws1, 'credential_use', 0.3, T0 + 15 * MIN)]).opened).toEqual([]);
    const r = run([denied(ws1, ws2, 445, T0), anomaly(ws1, 'credential_use', 0.9, T0 + 15 * MIN)]);
    expect(r.opened).toHaveLength(1);
    expect(r.opened[0]!.evidence.byRule.anomaly).toEqual({ count: 1, weight: 3.6 });
  });

  it('does not open on one denied attempt between hosts of unknown role (one denied flow is noise)', () => {
    const r = run([denied(ip('10.9.0.1'), ip('10.9.0.2'), 445, T0)]);
    expect(r.changes).toEqual([]);
  });

  it.each([
    [3389, 'T1021.001'],
    [5985, 'T1021.006'],
    [5986, 'T1021.006'],
    [22, 'T1021.004'],
    [5900, 'T1021.005'],
    [135, 'T1021.003'],
    [139, 'T1021.002'],
  ])('names the technique of port %i (%s)', (port, technique) => {
    const r = run([denied(ws1, ws2, port, T0), denied(ws1, ws3, port, T0 + SEC)]);
    expect(r.incidents).toHaveLength(1);
    expect(r.incidents[0]!.techniques).toContain(technique);
  });

  it('weighs anything to a domain controller (label role) and names T1210', () => {
    const dc = host('dc1', '10.0.0.10', 'domain-controller');
    const r = run([denied(ip('10.9.0.1'), dc, 445, T0)]);
    expect(r.opened).toHaveLength(1);
    expect(r.opened[0]!.techniques).toEqual(['T1021.002', 'T1210', 'T1570']);
  });

  it('learns a domain controller from Kerberos/LDAP it serves, before the attack', () => {
    const dc = ip('10.0.0.10');
    const client = ip('10.9.0.7');
    const r = run([allowed(client, dc, 88, T0), denied(ip('10.9.0.1'), dc, 135, T0 + MIN)]);
    expect(r.opened).toHaveLength(1);
    const target = r.opened[0]!.entities.find((e) => e.key === keyOf(dc))!;
    expect(target).toMatchObject({ role: 'domain-controller', roleSource: 'observed' });
    expect(r.opened[0]!.techniques).toContain('T1210');
  });

  it('learns a domain controller after the attack and raises the campaign (target_role)', () => {
    const dc = ip('10.0.0.10');
    const attacker = ip('10.9.0.1');
    const r = run([
      allowed(attacker, dc, 135, T0),
      denied(attacker, dc, 49700, T0 + 5), // endpoint mapper then dynamic RPC: 4 + 2 = 6, opens
      allowed(ip('10.9.0.8'), dc, 389, T0 + 20 * SEC), // now we know: it is a DC
    ]);
    expect(r.opened).toHaveLength(1);
    expect(r.updated).toHaveLength(1);
    const inc = r.updated[0]!;
    expect(inc.evidence.byRule.target_role).toEqual({ count: 1, weight: 4 });
    expect(inc.techniques).toContain('T1210');
    expect(inc.entities.find((e) => e.key === keyOf(dc))!.role).toBe('domain-controller');
    expect(r.updated[0]!.score).toBeCloseTo(10, 1); // 6 decayed over 20 s, plus 4
  });

  it('weighs a pod reaching for the kubelet and etcd', () => {
    const app = pod('web-7d9f', '10.244.1.5');
    const node = { ip: '10.0.5.1', workload: { kind: 'node' as const, id: 'node-a', name: 'node-a', labels: {} } };
    const r = run([denied(app, node, 10250, T0)]);
    expect(r.opened).toHaveLength(1);
    expect(r.opened[0]!.score).toBe(10);
    expect(r.opened[0]!.techniques).toEqual(['T1609']);
    expect(r.opened[0]!.evidence.items[0]!.reason).toMatch(/node or the control plane/);
    const etcd = run([denied(app, ip('10.0.5.2'), 2379, T0)]);
    expect(etcd.opened[0]!.techniques).toEqual(['T1552.007']);
  });

  it('weighs a server opening remote shells (SSH) on other servers and nodes: two of them open', () => {
    const web = host('lxweb02', '10.21.1.23', 'server');
    const db = host('lxdb01', '10.21.1.20', 'server');
    const node = { ip: '10.50.0.20', workload: { kind: 'node' as const, id: 'prod-cp-01', name: 'prod-cp-01', labels: {} } };
    expect(run([denied(web, db, 22, T0)]).changes).toEqual([]); // 2.5 x 1.5, and lone
    const r = run([denied(web, db, 22, T0), denied(web, node, 22, T0 + 40 * SEC)]);
    expect(r.opened).toHaveLength(1);
    expect(r.opened[0]!.score).toBeCloseTo(7.5, 1); // 3.75 + 3.75, the first decayed over 40 s
    expect(r.opened[0]!.techniques).toEqual(['T1021.004']);
    expect(r.opened[0]!.evidence.items[0]!.reason).toMatch(/servers are administered from jump hosts/);
  });

  it('takes roles from the configured inventory: by name glob, by CIDR, by labels', () => {
    const config = {
      roles: {
        inventory: [
          { selector: { name: 'LAPTOP-*' }, role: 'workstation' },
          { selector: { cidr: '10.20.0.0/16' }, role: 'workstation' },
          { selector: { labels: { tier: 'desk' } }, role: 'workstation' },
        ],
      },
    };
    const a = { ip: '10.1.1.1', workload: { kind: 'host' as const, id: 'laptop-a', name: 'LAPTOP-A', labels: {} } };
    const b = ip('10.20.3.4');
    const c = pod('desk-1', '10.30.0.1', { labels: { tier: 'desk' } });
    const r = run([denied(a, b, 135, T0), denied(c, b, 135, T0 + SEC)], config);
    expect(r.opened.map((i) => i.root)).toEqual([keyOf(a), keyOf(c)]);
    expect(r.opened[0]!.entities.map((e) => e.roleSource)).toEqual(['inventory', 'inventory']);
  });

  it('recognizes an RPC call: endpoint mapper, then a blocked dynamic port (rpc_chain)', () => {
    const a = ip('10.9.0.1');
    const b = ip('10.9.0.2');
    const r = run([allowed(a, b, 135, T0), denied(a, b, 50115, T0 + 1), denied(a, b, 50115, T0 + 1000)]);
    expect(r.opened).toHaveLength(1);
    const inc = r.incidents[0]!;
    expect(inc.path.edges[0]).toMatchObject({ services: ['rpc-dynamic'], denied: 2 });
    expect(Object.keys(inc.evidence.byRule).sort()).toEqual(['admin_port', 'rpc_chain']);
    expect(inc.evidence.byRule.admin_port).toEqual({ count: 2, weight: 4 });
  });

  it('treats a dynamic port with no endpoint-mapper call before it as an ordinary port', () => {
    const r = run([denied(ip('10.9.0.1'), ip('10.9.0.2'), 50115, T0)]);
    expect(r.changes).toEqual([]);
    const late = run([allowed(ip('10.9.0.1'), ip('10.9.0.2'), 135, T0), denied(ip('10.9.0.1'), ip('10.9.0.2'), 50115, T0 + 10 * MIN)]);
    expect(late.changes).toEqual([]);
  });
});

describe('fan-out (T1046)', () => {
  const scanner = ip('10.9.9.9');
  const targets = Array.from({ length: 9 }, (_, i) => ip(`10.9.1.${i + 1}`));

  it('opens on many distinct destinations denied within the window, with every target on the path', () => {
    const events = targets.map((t, i) => denied(scanner, t, 8080, T0 + i * 10 * SEC));
    const r = run(events);
    expect(r.opened).toHaveLength(1);
    const inc = r.incidents[0]!;
    expect(inc.techniques).toEqual(['T1046']);
    // the per-entity window is a fixed-size LRU of 8 pairs: the path gets the 8 most recent
    expect(inc.path.edges.map((e) => e.to)).toEqual(targets.slice(1).map(keyOf));
    const wide = run(events, { limits: { pairsPerEntity: 16 } }).incidents[0]!;
    expect(wide.path.edges.map((e) => e.to)).toEqual(targets.map(keyOf));
    expect(inc.evidence.byRule.fan_out!.count).toBe(5); // reached at 5 pairs (3), then 4 more (1 each): 7 >= 6
    expect(inc.summary).toMatch(/fanning out like a scan/);
  });

  it('counts distinct ports on one destination too', () => {
    const ports = [21, 23, 25, 80, 110, 143, 443, 8443, 9443];
    const r = run(ports.map((p, i) => denied(scanner, targets[0]!, p, T0 + i * SEC)));
    expect(r.opened).toHaveLength(1);
    expect(r.opened[0]!.techniques).toContain('T1046');
  });

  it('slides: four pairs late in one window and four early in the next are a fan-out', () => {
    // one pair at 0, three at 9 min, four just after 10 min: a window fixed at the first pair
    // counted 4, restarted at 10:10 and counted 4 again; the 10 min ending at 10:20 hold 5
    const times = [0, 9 * MIN, 9 * MIN + 10 * SEC, 9 * MIN + 20 * SEC, 10 * MIN + 10 * SEC, 10 * MIN + 20 * SEC, 10 * MIN + 30 * SEC, 10 * MIN + 40 * SEC];
    const events = times.map((t, i) => denied(scanner, targets[i]!, 8080, T0 + t));
    const r = run(events);
    const pending = r.engine.entity(keyOf(scanner))!.sus.pending!;
    expect(pending.find((p) => p.rule === 'fan_out')).toMatchObject({ count: 3, weight: 5 }); // 3 at 10:20, then 1, 1
    // a corroborating detection on top opens it, with the window's attempts on the path
    const opened = run([...events, anomaly(scanner, 'process_spawn', 1, T0 + 11 * MIN)]);
    expect(opened.opened).toHaveLength(1);
    expect(opened.opened[0]!.techniques).toEqual(['T1046']);
    expect(opened.opened[0]!.path.edges.map((e) => e.to)).toEqual(targets.slice(1, 8).map(keyOf));
  });

  it('does not fire on a few destinations, or on the same ones spread beyond the window', () => {
    expect(run(targets.slice(0, 4).map((t, i) => denied(scanner, t, 8080, T0 + i * SEC))).changes).toEqual([]);
    expect(run(targets.map((t, i) => denied(scanner, t, 8080, T0 + i * 11 * MIN))).opened).toEqual([]);
  });
});

describe('propagation: A to B, then B to C', () => {
  it('is ONE incident whose path holds A, B and C', () => {
    const r = run([denied(ws1, ws2, 135, T0), denied(ws2, ws3, 445, T0 + 30 * MIN)]);
    expect(r.opened).toHaveLength(1);
    expect(r.incidents).toHaveLength(1);
    const inc = r.incidents[0]!;
    expect(inc.root).toBe(keyOf(ws1));
    expect(inc.path.nodes).toEqual([keyOf(ws1), keyOf(ws2), keyOf(ws3)]);
    expect(inc.path.edges.map((e) => [e.from, e.to])).toEqual([
      [keyOf(ws1), keyOf(ws2)],
      [keyOf(ws2), keyOf(ws3)],
    ]);
    expect(inc.entities.map((e) => e.position)).toEqual(['root', 'pivot', 'target']);
    expect(inc.evidence.byRule.propagation).toEqual({ count: 1, weight: 4 });
    expect(r.updated.at(-1)!.summary).toMatch(/then moved on from ws2/);
  });

  it('does not root B in A when A never became an incident (a denied attempt alone is no campaign)', () => {
    // before: A's lone attempt (4) made B its target for a day, and B's attempts an hour later
    // opened an incident rooted at A. A denied attempt did not give A anything on B.
    const [a, b, c, d] = [ip('10.9.0.1'), ip('10.9.0.2'), ip('10.9.0.3'), ip('10.9.0.4')];
    const r = run([denied(a, b, 445, T0), denied(b, c, 5985, T0 + HOUR), denied(b, d, 5985, T0 + HOUR + MIN)]);
    expect(r.opened.map((i) => i.root)).toEqual([keyOf(b)]);
    expect(r.opened[0]!.path.nodes).not.toContain(keyOf(a));
    expect(r.opened[0]!.evidence.byRule.propagation).toBeUndefined();
  });

  it('does not link a hop that happened before B was attacked', () => {
    const r = run([denied(ws2, ws3, 135, T0), denied(ws1, ws2, 135, T0 + MIN)]);
    expect(r.opened.map((i) => i.root)).toEqual([keyOf(ws2), keyOf(ws1)]);
  });

  it('follows a link only while the campaign that made it is open', () => {
    const ws4 = host('ws4', '10.1.0.4', 'workstation');
    // A's incident goes quiet (idle 6 h) before B moves: B's attempts are its own
    const quiet = run([denied(ws1, ws2, 135, T0), denied(ws2, ws3, 135, T0 + 7 * HOUR)], { windows: { attemptedMs: 24 * HOUR } });
    expect(quiet.opened.map((i) => i.root)).toEqual([keyOf(ws1), keyOf(ws2)]);
    // a link made before A's current campaign began (its old risk had faded) does not count either
    const stale = run([denied(ws1, ws2, 445, T0), denied(ws1, ws3, 135, T0 + 7 * HOUR), denied(ws2, ws4, 135, T0 + 8 * HOUR)], {
      windows: { attemptedMs: 24 * HOUR },
    });
    expect(stale.opened.map((i) => i.root)).toEqual([keyOf(ws1), keyOf(ws2)]);
  });

  it('follows a link made by a denied attempt for `attemptedMs` only: later, what B does is its own', () => {
    const late = run([denied(ws1, ws2, 135, T0), denied(ws1, ws3, 135, T0 + 2.5 * HOUR), denied(ws2, ws3, 135, T0 + 3 * HOUR)]);
    expect(late.opened.map((i) => i.root)).toEqual([keyOf(ws1), keyOf(ws2)]);
    const soon = run([denied(ws1, ws2, 135, T0), denied(ws1, ws3, 135, T0 + 2.5 * HOUR), denied(ws2, ws3, 135, T0 + HOUR)]);
    expect(soon.opened.map((i) => i.root)).toEqual([keyOf(ws1)]);
  });

  it('drops the link when the pair turns out to be a policy gap', () => {
    const [app, srv, other] = [host('app1', '10.2.0.1', 'server'), host('srv1', '10.2.0.2', 'server'), host('srv2', '10.2.0.3', 'server')];
    // app1 opens an incident (two WinRM pairs), and keeps retrying one of them: a scheduled job
    const events = [denied(app, other, 5985, T0), denied(app, srv, 5985, T0 + MIN)];
    for (let i = 1; i <= 8; i++) events.push(denied(app, srv, 5985, T0 + i * 10 * MIN));
    const before = run(events);
    expect(before.engine.entity(keyOf(srv))!.sus.upstream).toBe(keyOf(app));
    expect(before.gaps).toEqual([]); // a member of an incident is not a policy gap
    const alone = run(events.slice(1)); // no incident: the retries become a policy gap...
    expect(alone.gaps).toHaveLength(1);
    expect(alone.engine.entity(keyOf(srv))!.sus.upstream).toBeNull(); // ...and srv1 is nobody's target
  });
});

describe('footholds: a permitted connection where the campaign was being refused', () => {
  const srv = host('app01', '10.2.0.10', 'server');
  const sql = host('sql01', '10.2.0.11', 'server');
  const opening = [denied(ws1, ws2, 5985, T0), denied(ws1, ws2, 5986, T0 + 5 * SEC)];

  it("makes the destination a pivot: its onward attempts join the root's incident", () => {
    const r = run([...opening, allowed(ws1, srv, 5985, T0 + MIN), denied(srv, ws3, 5985, T0 + 6 * MIN), denied(srv, sql, 5985, T0 + 7 * MIN)]);
    expect(r.opened).toHaveLength(1);
    expect(r.incidents).toHaveLength(1);
    const inc = r.incidents[0]!;
    expect(inc.root).toBe(keyOf(ws1));
    expect(inc.path.edges.map((e) => [e.from, e.to, e.denied, e.allowed])).toEqual([
      [keyOf(ws1), keyOf(ws2), 2, 0],
      [keyOf(ws1), keyOf(srv), 0, 1],
      [keyOf(srv), keyOf(ws3), 1, 0],
      [keyOf(srv), keyOf(sql), 1, 0],
    ]);
    expect(inc.entities.find((e) => e.key === keyOf(srv))!.position).toBe('pivot');
    expect(inc.evidence.byRule.propagation).toEqual({ count: 1, weight: 4 });
    // a foothold lasts the propagation window (the campaign got in), not only `attemptedMs`
    const later = run([...opening, allowed(ws1, srv, 5985, T0 + MIN), denied(srv, ws3, 5985, T0 + 5 * HOUR)]);
    expect(later.incidents).toHaveLength(1);
  });

  it('is conservative: not on another service, not after the campaign went idle, not to a DC, not from a scan', () => {
    const onward = [denied(srv, ws3, 5985, T0 + 6 * MIN), denied(srv, sql, 5985, T0 + 7 * MIN)];
    const roots = (events: Parameters<typeof run>[0]) => run(events).incidents.map((i) => i.root);
    // ordinary file-share access on SMB, while the campaign was trying WinRM
    expect(roots([...opening, allowed(ws1, srv, 445, T0 + MIN), ...onward])).toEqual([keyOf(ws1), keyOf(srv)]);
    // an hour and more after the campaign's last evidence
    const idle = onward.map((e) => ({ ...e, time: e.time + 2 * HOUR }));
    expect(roots([...opening, allowed(ws1, srv, 5985, T0 + 2 * HOUR), ...idle])).toEqual([keyOf(ws1), keyOf(srv)]);
    // a domain controller the campaign was not after
    const dc = host('dc1', '10.0.0.10', 'domain-controller');
    const fromDc = [denied(dc, ws3, 5985, T0 + 6 * MIN), denied(dc, sql, 5985, T0 + 7 * MIN)];
    expect(roots([...opening, allowed(ws1, dc, 5985, T0 + MIN), ...fromDc])).toEqual([keyOf(ws1), keyOf(dc)]);
    // a scanning source: what it opens after its scan is not a foothold
    const scan = Array.from({ length: 6 }, (_, i) => denied(ws1, ip(`10.9.3.${i + 1}`), 5985, T0 + i * SEC));
    expect(roots([...scan, allowed(ws1, srv, 5985, T0 + MIN), ...onward])).toEqual([keyOf(ws1), keyOf(srv)]);
  });
});

describe('corroboration by anomalies', () => {
  it('raises score and confidence and marks the edge; an anomaly alone opens nothing', () => {
    const base = run([denied(ws1, ws2, 135, T0)]);
    const r = run([denied(ws1, ws2, 135, T0), anomaly(ws2, 'credential_use', 0.9, T0 + MIN)]);
    const plain = base.incidents[0]!;
    const corroborated = r.incidents[0]!;
    expect(corroborated.score).toBeGreaterThan(plain.score);
    expect(corroborated.confidence).toBeGreaterThan(plain.confidence);
    expect(corroborated.path.edges[0]!.anomalies).toEqual(['credential_use']);
    expect(corroborated.counters.anomalies).toBe(1);
    expect(run([anomaly(ws1, 'credential_use', 1, T0), anomaly(ws1, 'auth_burst', 1, T0 + 1)]).changes).toEqual([]);
  });

  it('counts an anomaly seen before the denied flows', () => {
    const a = ip('10.9.0.1');
    const r = run([anomaly(a, 'process_spawn', 1, T0), denied(a, ip('10.9.0.2'), 445, T0 + MIN)]);
    expect(r.opened).toHaveLength(1); // 3 + 4 >= 6
    expect(r.opened[0]!.evidence.byRule.anomaly).toEqual({ count: 1, weight: 3 });
  });
});

describe('slow campaigns', () => {
  const src = ip('10.9.0.1');
  const attempts = Array.from({ length: 8 }, (_, i) => denied(src, ip(`10.9.2.${i + 1}`), 22, T0 + i * 45 * MIN));

  it('adds up a few attempts an hour over hours (decaying risk, not only short windows)', () => {
    const r = run(attempts);
    expect(r.opened).toHaveLength(1);
    expect(r.opened[0]!.lastSeen - T0).toBeGreaterThanOrEqual(90 * MIN);
    expect(r.opened[0]!.evidence.byRule.fan_out).toBeUndefined();
  });

  it('does not add up with a short half-life', () => {
    expect(run(attempts, { halfLifeMs: 10 * MIN }).changes).toEqual([]);
  });
});

describe('incident lifecycle and publication', () => {
  it('publishes only material changes, never on every event', () => {
    const events = [denied(ws1, ws2, 135, T0)];
    for (let i = 1; i <= 50; i++) events.push(denied(ws1, ws2, 135, T0 + i * SEC));
    events.push(denied(ws1, ws3, 135, T0 + MIN));
    const r = run(events);
    expect(r.changes.map((c) => c.type)).toEqual(['incident_opened', 'incident_updated']);
    const upd = r.changes[1]!;
    expect(upd.type === 'incident_updated' && upd.reasons).toEqual(['severity', 'score', 'path', 'entities']);
    expect(r.incidents[0]!.counters.denied).toBe(52);
    expect(r.incidents[0]!.evidence.byRule.admin_port!.count).toBe(52);
    expect(r.incidents[0]!.version).toBe(2);
  });

  it('has a deterministic id valid as a BullMQ job id', () => {
    const a = run([denied(ws1, ws2, 135, T0)]).opened[0]!;
    const b = run([denied(ws1, ws2, 135, T0 + 5 * MIN)]).opened[0]!;
    expect(a.id).toMatch(/^inc-[0-9a-f]{20}$/);
    expect(a.id).toBe(b.id); // same root, same window bucket
    expect(a.id).not.toContain(':');
  });

  it('goes quiet after the idle time; a later campaign from the same root opens a new incident', () => {
    const r = run([denied(ws1, ws2, 135, T0), denied(ws1, ws3, 135, T0 + 7 * HOUR)]);
    expect(r.opened).toHaveLength(2);
    expect(r.opened[0]!.id).not.toBe(r.opened[1]!.id);
    expect(r.opened[1]!.path.edges.map((e) => e.to)).toEqual([keyOf(ws3)]);
  });

  it('reports incidents going quiet on advance(), and forgets them after the retention', () => {
    const r = run([denied(ws1, ws2, 135, T0)]);
    const id = r.opened[0]!.id;
    expect(r.engine.advance(T0 + 5 * HOUR).quieted).toEqual([]);
    expect(r.engine.tick(T0 + 7 * HOUR).quieted).toEqual([id]);
    expect(r.engine.incident(id)!.status).toBe('open'); // quiet is the engine's business, status is not
    expect(r.engine.advance(T0 + 32 * HOUR).forgotten).toEqual([id]);
    expect(r.engine.incident(id)).toBeUndefined();
  });

  it('updates the open incident within the idle time instead of opening another', () => {
    const r = run([denied(ws1, ws2, 135, T0), denied(ws1, ws3, 445, T0 + 5 * HOUR)]);
    expect(r.opened).toHaveLength(1);
    expect(r.incidents[0]!.path.edges).toHaveLength(2);
  });

  it('publishes a status set from outside as a new version, refuses forbidden transitions, and a closed incident takes no more evidence', () => {
    const r = run([denied(ws1, ws2, 135, T0)]);
    const id = r.opened[0]!.id;
    const containing = r.engine.setStatus(id, 'containing');
    expect(containing.outcome).toBe('changed');
    expect(containing.changes).toHaveLength(1);
    const published = containing.changes[0] as { type: string; incident: { status: string; version: number }; reasons: string[] };
    expect(published.type).toBe('incident_updated');
    expect(published.incident).toMatchObject({ status: 'containing', version: 2 });
    expect(published.reasons).toEqual(['status open -> containing']);
    expect(r.engine.setStatus(id, 'containing')).toEqual({ outcome: 'unchanged', changes: [] });
    expect(r.engine.ingest(denied(ws1, ws2, 135, T0 + SEC))).toEqual([]);
    expect(r.engine.incident(id)!.status).toBe('containing');
    expect(r.engine.setStatus(id, 'contained').outcome).toBe('changed');
    expect(r.engine.setStatus(id, 'released').outcome).toBe('changed');
    expect(r.engine.setStatus(id, 'closed').outcome).toBe('changed');
    const reopen = r.engine.setStatus(id, 'open');
    expect(reopen).toMatchObject({ outcome: 'refused', changes: [] });
    expect((reopen as { reason: string }).reason).toMatch(/closed cannot become open/);
    expect(r.engine.incident(id)!.version).toBe(5);
    const next = r.engine.ingest(denied(ws1, ws3, 135, T0 + 2 * SEC));
    expect(next).toHaveLength(1);
    expect(next[0]!.type).toBe('incident_opened');
    expect((next[0] as { incident: { id: string } }).incident.id).toBe(`${id}-2`);
    expect(r.engine.setStatus('inc-nope', 'closed')).toEqual({ outcome: 'unknown', changes: [] });
  });

  it('explains an incident: rules, weights and evidence', () => {
    const r = run([allowed(ws1, ws2, 135, T0), denied(ws1, ws2, 49999, T0 + 1), anomaly(ws2, 'new_edge', 1, T0 + 2)]);
    const id = r.opened[0]!.id;
    const x = r.engine.explain(id)!;
    expect(x.rules.map((rule) => [rule.rule, rule.weight])).toEqual([
      ['admin_port', 8],
      ['admin_session', 3], // the endpoint mapper answered, between two workstations: RPC 1.5 x 2
      ['rpc_chain', 2],
      ['anomaly', 1.5],
    ]);
    expect(x.evidence.every((e) => e.rule && e.weight > 0 && e.reason.length > 0)).toBe(true);
    expect(x.score).toBeCloseTo(14.5, 3);
    const text = formatExplanation(x);
    expect(text).toContain('admin_port');
    expect(text).toContain('endpoint mapper');
    expect(r.engine.explain('inc-unknown')).toBeUndefined();
  });

  it('keeps evidence bounded and counters exact', () => {
    const scanner = ip('10.9.9.9');
    const events = Array.from({ length: 300 }, (_, i) => denied(scanner, ip(`10.8.${Math.floor(i / 200)}.${(i % 200) + 1}`), 445, T0 + i * 100));
    const inc = run(events, { incident: { maxEvidence: 10, maxEdges: 20, maxEntities: 8 } }).incidents[0]!;
    expect(inc.evidence.items.length).toBeLessThanOrEqual(10);
    expect(inc.evidence.byRule.admin_port!.count).toBe(300);
    expect(inc.evidence.total).toBe(300 + inc.evidence.byRule.fan_out!.count);
    expect(inc.path.edges).toHaveLength(20);
    expect(inc.path.edgesDropped).toBe(280);
    expect(inc.counters.denied).toBe(300);
    expect(inc.entities).toHaveLength(8);
    expect(inc.severity).toBe('critical');
  });
});
