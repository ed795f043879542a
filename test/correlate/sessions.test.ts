import type { AllowedFlow } from '../../src/events';
import { CorrelationEngine } from '../../src/correlate/engine';
import { HOUR, MIN, SEC, T0, allowed, host, ip, keyOf, pod, run, trustingBuilder } from './builder';

/** Evidence from permitted connections (config `allowedFlows`, docs/detection.md). */
const ws1 = host('ws1', '10.1.0.1', 'workstation');
const ws2 = host('ws2', '10.1.0.2', 'workstation');
const ws3 = host('ws3', '10.1.0.3', 'workstation');
const dc = host('dc1', '10.0.0.10', 'domain-controller');

describe('admin_session: a permitted remote-administration session between peers that do not serve it', () => {
  it('opens an incident on one WinRM session between two workstations, explained with its weight', () => {
    const r = run([allowed(ws1, ws2, 5985, T0)]);
    expect(r.opened).toHaveLength(1);
    const inc = r.opened[0]!;
    expect(inc.root).toBe(keyOf(ws1));
    expect(inc.path.edges).toMatchObject([{ from: keyOf(ws1), to: keyOf(ws2), ports: [5985], allowed: 1, denied: 0 }]);
    expect(inc.techniques).toContain('T1021.006');
    const item = inc.evidence.items.find((i) => i.rule === 'admin_session')!;
    expect(item.weight).toBe(10); // WinRM 5, workstations do not administer each other x2
    expect(item.reason).toMatch(/permitted WinRM \(5985\) session from ws1 \[workstation\] to ws2 \[workstation\].*base 5; workstations do not administer each other \(x2\) = 10/);
    expect(r.engine.explain(inc.id)!.rules.map((x) => x.rule)).toEqual(['admin_session']);
    expect(inc.summary).toMatch(/^ws1 \(10\.1\.0\.1, workstation\) opened WinRM against 1 host \(ws2[^;]*\); 1 permitted admin session to peers that do not serve them; medium severity, score 10\.0/);
    expect(inc.summary).not.toContain('denied');
  });

  it('weighs a repeat of the same session nothing', () => {
    const r = run([allowed(ws1, ws2, 445, T0), allowed(ws1, ws2, 445, T0 + MIN), allowed(ws1, ws2, 445, T0 + 2 * MIN)]);
    expect(r.incidents[0]!.evidence.byRule.admin_session).toEqual({ count: 1, weight: 6 });
  });

  it('is not evidence to a server of the service, from an admin host, or with allowedFlows disabled', () => {
    const files = host('files1', '10.0.0.20', 'file-server');
    expect(run([allowed(ws1, dc, 445, T0), allowed(ws1, dc, 135, T0 + 1), allowed(ws1, dc, 49667, T0 + 2), allowed(ws1, files, 445, T0 + 3)]).changes).toEqual([]);
    expect(run([allowed(host('adm1', '10.0.0.30', 'admin'), ws2, 5985, T0)]).changes).toEqual([]);
    expect(run([allowed(ws1, ws2, 5985, T0)], { allowedFlows: { enabled: false } }).changes).toEqual([]);
  });

  it('each exclusion follows its setting (serverRoles, adminRoles, protectedRoles, fleetSources, fanOutTargets)', () => {
    const files = host('files1', '10.0.0.20', 'file-server');
    const adm = host('adm1', '10.0.0.30', 'admin');
    const riskOf = (events: AllowedFlow[], key: string, allowedFlows: Record<string, unknown> = {}) => run(events, { allowedFlows }).engine.entity(key)?.risk ?? 0;
    expect(riskOf([allowed(ws1, files, 445, T0)], keyOf(ws1))).toBe(0);
    expect(riskOf([allowed(ws1, files, 445, T0)], keyOf(ws1), { serverRoles: [] })).toBeGreaterThan(0);
    expect(riskOf([allowed(adm, ws2, 5985, T0)], keyOf(adm))).toBe(0);
    expect(riskOf([allowed(adm, ws2, 5985, T0)], keyOf(adm), { adminRoles: [] })).toBeGreaterThan(0);
    expect(riskOf([allowed(dc, ws2, 5985, T0)], keyOf(dc))).toBe(0);
    expect(riskOf([allowed(dc, ws2, 5985, T0)], keyOf(dc), { protectedRoles: [] })).toBeGreaterThan(0);
    const collector = ip('10.0.0.40');
    const desks = Array.from({ length: 4 }, (_, i) => host(`d${i}`, `10.1.1.${i + 1}`, 'workstation'));
    const toCollector = [allowed(collector, dc, 88, T0), ...desks.map((d, i) => allowed(d, collector, 5985, T0 + MIN + i * SEC))];
    expect(riskOf(toCollector, keyOf(desks[3]!))).toBe(0); // the fourth source reaches a fleet service
    expect(riskOf(toCollector, keyOf(desks[3]!), { fleetSources: 8 })).toBeGreaterThan(0);
    const members = Array.from({ length: 3 }, (_, i) => ip(`10.1.8.${i + 1}`));
    const sweep = [...members.map((m, i) => allowed(m, dc, 88, T0 + i)), ...members.map((m, i) => allowed(ip('10.1.7.7'), m, 22, T0 + MIN + i * SEC))];
    const fanOut = (n: number) => run(sweep, { allowedFlows: { fanOutTargets: n } }).incidents[0]?.evidence.byRule.session_fan_out;
    expect(fanOut(4)).toBeUndefined();
    expect(fanOut(3)).toEqual({ count: 1, weight: 3 });
  });

  it('is evidence on a service the server role does not serve: WinRM to a domain controller (tier 0)', () => {
    const inc = run([allowed(ws1, dc, 5985, T0)]).opened[0]!;
    expect(inc.evidence.byRule.admin_session).toEqual({ count: 1, weight: 10 });
    expect(inc.techniques).toEqual(expect.arrayContaining(['T1021.006', 'T1210']));
  });

  it('counts a destination of unknown role only once it was seen acting as a domain member', () => {
    const box = ip('10.1.9.9');
    const stranger = run([allowed(ws1, box, 5985, T0)]);
    expect(stranger.engine.entity(keyOf(ws1))!.risk).toBe(0);
    const member = run([allowed(box, dc, 88, T0), allowed(ws1, box, 5985, T0 + SEC)]);
    expect(member.engine.entity(keyOf(ws1))!.risk).toBe(5); // WinRM 5, no role factor
    expect(member.opened).toEqual([]);
    expect(run([allowed(ws1, box, 5985, T0)], { allowedFlows: { unknownTargets: 'any' } }).engine.entity(keyOf(ws1))!.risk).toBe(5);
  });

  it("from a host's own firewall log, only the destination's record shows a session", () => {
    const as = (f: AllowedFlow, observer: string): AllowedFlow => ({ ...f, observer: { type: 'wfp', name: observer } });
    const seen = [allowed(ws1, dc, 88, T0 - 2 * SEC), allowed(ws2, dc, 88, T0 - SEC)];
    // WFP on ws1 let its own connection out (the destination may still have refused it)
    const egress = as(allowed(ws1, ip('10.1.0.2'), 5985, T0), 'ws1');
    expect(run([...seen, egress]).opened).toEqual([]);
    expect(run([...seen, egress], { allowedFlows: { hostObservers: [] } }).opened).toHaveLength(1); // would be one
    // WFP on ws2 let it in: a session
    const ingress = as(allowed(ip('10.1.0.1'), ws2, 5985, T0), 'ws2');
    expect(run([...seen, ingress]).opened.map((i) => i.root)).toEqual([keyOf(ws1)]);
  });

  it('adds session_fan_out when one source reaches many destinations in the fan-out window', () => {
    const members = Array.from({ length: 5 }, (_, i) => ip(`10.1.8.${i + 1}`));
    const joined = members.map((m, i) => allowed(m, dc, 88, T0 + i));
    const ssh = members.map((m, i) => allowed(ip('10.1.7.7'), m, 22, T0 + MIN + i * SEC));
    const r = run([...joined, ...ssh]);
    expect(r.opened[0]!.evidence.byRule.session_fan_out).toEqual({ count: 1, weight: 3 }); // opened at the 4th
    const inc = r.incidents[0]!;
    expect(inc.evidence.byRule.session_fan_out).toEqual({ count: 2, weight: 4 }); // 3 at the 4th destination, 1 for the 5th
    expect(inc.techniques).toContain('T1046');
  });

  it('links a hop chain: A reaches B, then B reaches C, one campaign rooted at A', () => {
    const r = run([allowed(ws1, ws2, 5985, T0), allowed(ws2, ws3, 445, T0 + 10 * MIN)]);
    expect(r.incidents).toHaveLength(1);
    const inc = r.incidents[0]!;
    expect(inc.root).toBe(keyOf(ws1));
    expect(inc.path.edges.map((e) => [e.from, e.to])).toEqual([
      [keyOf(ws1), keyOf(ws2)],
      [keyOf(ws2), keyOf(ws3)],
    ]);
    expect(inc.entities.find((e) => e.key === keyOf(ws2))!.position).toBe('pivot');
    expect(inc.evidence.byRule.propagation).toEqual({ count: 1, weight: 4 });
  });

  it('reaches for the node from a pod: kubelet is evidence, unless the pod is allowlisted', () => {
    const node = { ip: '10.50.0.20', workload: { kind: 'node' as const, id: 'worker-1', name: 'worker-1', labels: {} } };
    const app = pod('shop-7', '10.244.1.7');
    expect(run([allowed(app, node, 10250, T0)]).opened[0]!.evidence.byRule.admin_session).toEqual({ count: 1, weight: 8 });
    expect(run([allowed(app, node, 10250, T0)], { allowlist: [{ name: 'shop-*' }] }).changes).toEqual([]);
  });
});

describe('protected assets and the baseline across restarts', () => {
  it('never roots an incident at a learned domain controller, nor makes it a pivot, whatever is spoofed from its address', () => {
    const learned = ip('10.0.0.53');
    const spoofed = [ws1, ws2, ws3].flatMap((w, i) => [allowed(learned, w, 5985, T0 + MIN + i * SEC), allowed(learned, w, 445, T0 + MIN + i * SEC + 1)]);
    const r = run([allowed(ws1, learned, 88, T0), ...spoofed, allowed(ws1, learned, 5985, T0 + 2 * MIN), allowed(learned, ws2, 3389, T0 + 3 * MIN)]);
    expect(r.engine.entity(keyOf(learned))!.flags & 1).toBe(1); // serves Kerberos: a domain controller
    expect(r.incidents.map((i) => i.root)).toEqual([keyOf(ws1)]);
    expect(r.incidents[0]!.entities.find((e) => e.key === keyOf(learned))).toMatchObject({ role: 'domain-controller', position: 'target' });
  });

  it('keeps sessions and the fleet services a destination serves through a snapshot', () => {
    const collector = ip('10.0.0.40');
    const desks = Array.from({ length: 4 }, (_, i) => host(`d${i}`, `10.1.1.${i + 1}`, 'workstation'));
    const events = [allowed(collector, dc, 88, T0), ...desks.map((d, i) => allowed(d, collector, 5985, T0 + MIN + i * SEC))];
    const config = trustingBuilder();
    const first = run(events.slice(0, 4), config);
    const restored = CorrelationEngine.restore(JSON.parse(JSON.stringify(first.engine.snapshot())), config);
    expect(restored.entity(keyOf(collector))!.served!.serves('winrm')).toBe(true);
    expect(restored.entity(keyOf(desks[0]!))!.sessions!.dst).toEqual([keyOf(collector)]);
    const whole = run(events, config);
    const rest = run(events.slice(4), restored);
    expect(rest.engine.entity(keyOf(desks[3]!))!.risk).toBe(whole.engine.entity(keyOf(desks[3]!))!.risk);
    expect(rest.engine.entity(keyOf(desks[3]!))!.risk).toBe(0); // the fourth source reaches a fleet service
  });

  it('forgets an idle source with its sessions after the entity TTL', () => {
    const r = run([allowed(ws1, ip('10.1.9.9'), 22, T0)], { limits: { entityTtlMs: HOUR }, allowedFlows: { unknownTargets: 'any' } });
    r.engine.advance(T0 + 3 * HOUR);
    expect(r.engine.entity(keyOf(ws1))).toBeUndefined();
  });
});
