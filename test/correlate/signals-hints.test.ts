import type { AllowedFlow, CONN_STATES } from '../../src/events';
import { formatExplanation } from '../../src/correlate/explain';
import { MIN, T0, allowed, host, ip, keyOf, prng, run } from './builder';

/**
 * What the sensor saw beyond the port (flow hints: Zeek service and conn_state, the accepting
 * process on the destination) strengthens a permitted session's evidence and is named in its
 * reason. Hints are hostile input: they only ever multiply the source's own contribution by at
 * least 1, never excuse, never un-excuse, never make a protected source a root.
 */
const ws1 = host('ws1', '10.1.0.1', 'workstation');
const ws2 = host('ws2', '10.1.0.2', 'workstation');
const dc = host('dc1', '10.0.0.10', 'domain-controller');
const files = host('files1', '10.0.0.20', 'file-server');

type Hints = Pick<AllowedFlow, 'appProtocols' | 'connState' | 'direction' | 'process'>;
const hinted = (f: AllowedFlow, hints: Hints): AllowedFlow => ({ ...f, ...hints });
const sessionWeight = (events: AllowedFlow[]): number | undefined =>
  run(events).incidents[0]?.evidence.items.filter((i) => i.rule === 'admin_session').reduce((s, i) => s + i.weight, 0);
const sessionReason = (events: AllowedFlow[]): string =>
  run(events).incidents[0]!.evidence.items.find((i) => i.rule === 'admin_session')!.reason;

describe('confirmation by the sensor', () => {
  it('Zeek service smb on 445 confirms the protocol (x1.5), conn_state SF is said', () => {
    const f = hinted(allowed(ws1, ws2, 445, T0), { appProtocols: 'gssapi,smb,krb', connState: 'SF' });
    expect(sessionWeight([f])).toBe(9); // SMB 3, workstations x2, confirmed x1.5
    const reason = sessionReason([f]);
    expect(reason).toMatch(/the sensor saw SMB in the payload \(Zeek service\) \(x1\.5\)/);
    expect(reason).toMatch(/established and closed normally \(Zeek conn_state SF\)/);
    expect(reason).toMatch(/= 9$/);
  });

  it('dce_rpc confirms the endpoint mapper and the dynamic call; ssh and rdp their ports', () => {
    const epm = hinted(allowed(ws1, ws2, 135, T0), { appProtocols: 'dce_rpc' });
    const call = hinted(allowed(ws1, ws2, 49712, T0 + 1000), { appProtocols: 'dce_rpc' });
    expect(sessionWeight([epm, call])).toBe((1.5 * 2 + 2.5 * 2) * 1.5);
    expect(sessionWeight([hinted(allowed(ws1, ws2, 22, T0), { appProtocols: 'ssh' })])).toBe(2 * 2 * 1.5);
    expect(sessionWeight([hinted(allowed(ws1, ws2, 3389, T0), { appProtocols: 'rdp' })])).toBe(3 * 2 * 1.5);
  });

  it('a protocol other than the port says (http on 445) lowers nothing', () => {
    const plain = sessionWeight([allowed(ws1, ws2, 445, T0)]);
    expect(plain).toBe(6);
    expect(sessionWeight([hinted(allowed(ws1, ws2, 445, T0), { appProtocols: 'http', connState: 'OTH' })])).toBe(plain);
    expect(sessionReason([hinted(allowed(ws1, ws2, 445, T0), { appProtocols: 'http' })])).not.toMatch(/Zeek/);
  });

  it('an inbound record naming a remote-execution process on the destination doubles, and names it', () => {
    const epm = allowed(ws1, ws2, 135, T0);
    const call = hinted(allowed(ws1, ws2, 49712, T0 + 1000), { direction: 'inbound', process: 'wmiprvse.exe' });
    const events = [epm, call];
    expect(sessionWeight(events)).toBe(1.5 * 2 + 2.5 * 2 * 2);
    const r = run(events);
    const inc = r.incidents[0]!;
    const text = formatExplanation(r.engine.explain(inc.id)!);
    expect(text).toMatch(/accepted on the destination by wmiprvse\.exe, the WMI provider host \(WFP Application \/ Sysmon Image\) \(x2\)/);
    expect(inc.severity).toBe('medium');
  });

  it('the process counts only on the accepting side: an outbound record (the source\'s own client) adds nothing', () => {
    const out = hinted(allowed(ws1, ws2, 445, T0), { direction: 'outbound', process: 'psexesvc.exe' });
    expect(sessionWeight([out])).toBe(6);
    const noDirection = hinted(allowed(ws1, ws2, 445, T0), { process: 'psexesvc.exe' });
    expect(sessionWeight([noDirection])).toBe(6);
  });

  it('a factor of 1 turns a confirmation off', () => {
    const f = hinted(allowed(ws1, ws2, 445, T0), { appProtocols: 'smb', direction: 'inbound', process: 'psexesvc.exe' });
    const r = run([f], { allowedFlows: { confirmation: { protocol: 1, process: 1 } } });
    expect(r.incidents[0]!.evidence.items.find((i) => i.rule === 'admin_session')!.weight).toBe(6);
    expect(() => run([f], { allowedFlows: { confirmation: { protocol: 0.5 } } })).toThrow();
  });
});

describe('hints are hostile input', () => {
  const strong: Hints = { appProtocols: 'smb,dce_rpc,ssh,rdp', connState: 'SF', direction: 'inbound', process: 'psexesvc.exe' };

  it('never make a protected source a root, never un-excuse a session to a server, from an admin host, or allowlisted', () => {
    expect(run([hinted(allowed(dc, ws2, 445, T0), strong), hinted(allowed(dc, ws1, 5985, T0 + MIN), strong)]).changes).toEqual([]);
    expect(run([hinted(allowed(ws1, files, 445, T0), strong), hinted(allowed(ws1, dc, 445, T0 + 1), strong)]).changes).toEqual([]);
    expect(run([hinted(allowed(host('adm1', '10.0.0.30', 'admin'), ws2, 5985, T0), strong)]).changes).toEqual([]);
    const allow = { allowlist: [{ name: 'ws1' }] };
    expect(run([hinted(allowed(ws1, ws2, 5985, T0), strong)], allow).changes).toEqual([]);
  });

  it('never make a session between hosts of unknown role, or a repeat, weigh more than once', () => {
    const a = ip('10.9.0.1');
    const b = ip('10.9.0.2');
    expect(run([hinted(allowed(a, b, 445, T0), strong)]).changes).toEqual([]); // unknown target, not a member: maybe a server
    const again = [0, 1, 2].map((i) => hinted(allowed(ws1, ws2, 445, T0 + i * MIN), strong));
    expect(run(again).incidents[0]!.evidence.byRule.admin_session).toEqual({ count: 1, weight: 6 * 1.5 * 2 });
  });

  it('only raise the source\'s own evidence: whatever the hints, no weight below the unhinted one, and the same root', () => {
    const rnd = prng(13);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
    const states: (typeof CONN_STATES)[number][] = ['S0', 'SF', 'REJ', 'OTH', 'RSTO', 'SH'];
    const processes = ['psexesvc.exe', 'svchost.exe', 'system', 'wmiprvse.exe', 'lsass.exe', 'x.exe'];
    const protocols = ['smb', 'http', 'dce_rpc', 'krb', 'ssl,http', 'ssh', 'rdp'];
    for (let i = 0; i < 200; i++) {
      const port = pick([445, 135, 3389, 5985, 22]);
      const base = allowed(ws1, ws2, port, T0);
      const hints: Hints = {};
      if (rnd() < 0.7) hints.appProtocols = pick(protocols);
      if (rnd() < 0.7) hints.connState = pick(states);
      if (rnd() < 0.7) hints.direction = pick(['inbound', 'outbound'] as const);
      if (rnd() < 0.7) hints.process = pick(processes);
      const low = { thresholds: { incident: 0.5 } }; // every session opens: compare what each weighs
      const plain = run([base], low);
      const withHints = run([hinted(base, hints)], low);
      expect(plain.incidents).toHaveLength(1);
      expect(withHints.incidents.map((x) => x.root)).toEqual(plain.incidents.map((x) => x.root));
      expect(withHints.incidents[0]?.score ?? 0).toBeGreaterThanOrEqual(plain.incidents[0]?.score ?? 0);
      expect(withHints.incidents[0]?.score ?? 0).toBeLessThanOrEqual((plain.incidents[0]?.score ?? 0) * 1.5 * 2);
      expect(withHints.incidents.every((x) => x.root === keyOf(ws1))).toBe(true);
    }
  });
});
