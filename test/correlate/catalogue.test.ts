import { cidrContains, parseCidr } from '../../src/correlate/cidr';
import { CorrelationConfig, parseCorrelationConfig } from '../../src/correlate/config';
import { incidentId, confidenceOf, severityOf } from '../../src/correlate/incident';
import {
  NOISE_PORTS,
  SERVICE_TECHNIQUES,
  classifyPort,
  isBroadcastOrMulticast,
  isLinkLocal,
} from '../../src/correlate/ports';
import { RoleResolver } from '../../src/correlate/roles';
import { compileAny, compileSelector, Selector } from '../../src/correlate/selectors';

describe('port catalogue', () => {
  it.each([
    [445, 'smb'],
    [139, 'smb'],
    [135, 'rpc'],
    [3389, 'rdp'],
    [5985, 'winrm'],
    [5986, 'winrm'],
    [22, 'ssh'],
    [5900, 'vnc'],
    [6443, 'k8s-api'],
    [10250, 'kubelet'],
    [10255, 'kubelet'],
    [2379, 'etcd'],
    [2380, 'etcd'],
    [1433, 'database'],
    [3306, 'database'],
    [5432, 'database'],
    [1521, 'database'],
    [27017, 'database'],
    [6379, 'database'],
    [443, 'other'],
  ])('classifies %i as %s', (port, service) => {
    expect(classifyPort(port, false)).toBe(service);
  });

  it('treats the dynamic RPC range as RPC only right after the endpoint mapper', () => {
    expect(classifyPort(49152, true)).toBe('rpc-dynamic');
    expect(classifyPort(65535, true)).toBe('rpc-dynamic');
    expect(classifyPort(49151, true)).toBe('other');
    expect(classifyPort(50000, false)).toBe('other');
  });

  it('maps services to ATT&CK techniques', () => {
    expect(SERVICE_TECHNIQUES.smb).toEqual(['T1021.002', 'T1570']);
    expect(SERVICE_TECHNIQUES.rdp).toEqual(['T1021.001']);
    expect(SERVICE_TECHNIQUES.winrm).toEqual(['T1021.006']);
    expect(SERVICE_TECHNIQUES.ssh).toEqual(['T1021.004']);
    expect(SERVICE_TECHNIQUES.vnc).toEqual(['T1021.005']);
    expect(SERVICE_TECHNIQUES.rpc).toEqual(['T1021.003']);
  });

  it('knows broadcast, multicast and discovery noise', () => {
    for (const ip of ['255.255.255.255', '10.1.2.255', '224.0.0.1', '239.255.255.250', 'ff02::1', 'FF05::1:3']) {
      expect(isBroadcastOrMulticast(ip)).toBe(true);
    }
    for (const ip of ['10.1.2.254', '223.255.255.1', '240.0.0.1', 'fe80::1', '2001:db8::ff', undefined]) {
      expect(isBroadcastOrMulticast(ip)).toBe(false);
    }
    expect([...NOISE_PORTS].sort((a, b) => a - b)).toEqual([137, 138, 1900, 5353, 5355]);
    expect(isLinkLocal('fe80::3816:b2ee:1b9b:324b')).toBe(true);
    expect(isLinkLocal('169.254.169.254')).toBe(true);
    expect(isLinkLocal('172.18.39.5')).toBe(false);
  });
});

describe('CIDR blocks', () => {
  it('matches IPv4 and IPv6, with and without prefix', () => {
    expect(cidrContains(parseCidr('10.0.0.0/8')!, '10.200.3.4')).toBe(true);
    expect(cidrContains(parseCidr('10.0.0.0/8')!, '11.0.0.1')).toBe(false);
    expect(cidrContains(parseCidr('172.18.39.0/25')!, '172.18.39.127')).toBe(true);
    expect(cidrContains(parseCidr('172.18.39.0/25')!, '172.18.39.128')).toBe(false);
    expect(cidrContains(parseCidr('172.18.39.5')!, '172.18.39.5')).toBe(true);
    expect(cidrContains(parseCidr('0.0.0.0/0')!, '8.8.8.8')).toBe(true);
    expect(cidrContains(parseCidr('fd00::/8')!, 'fd12:3456::1')).toBe(true);
    expect(cidrContains(parseCidr('2001:db8::/32')!, '2001:db9::1')).toBe(false);
    expect(cidrContains(parseCidr('::ffff:0:0/96')!, '::ffff:10.0.0.1')).toBe(true);
    expect(cidrContains(parseCidr('10.0.0.0/8')!, 'fd00::1')).toBe(false);
  });

  it('refuses what is not a block', () => {
    for (const bad of ['10.0.0.0/33', '10.0.0/8', '1.2.3.256', 'fd00::/129', 'fd00:::1', 'x', '10.0.0.0/x']) {
      expect(parseCidr(bad)).toBeUndefined();
    }
  });
});

describe('selectors', () => {
  const pod = { kind: 'pod', id: 'scan-1', name: 'nessus-scanner-1', namespace: 'sec', labels: { team: 'vuln' }, ip: '10.9.0.4' };

  it('matches labels, name globs (case-insensitive, name or id), namespace, kind and CIDR; all given must match', () => {
    const match = (s: unknown) => compileSelector(Selector.parse(s))(pod);
    expect(match({ labels: { team: 'vuln' } })).toBe(true);
    expect(match({ labels: { team: 'vuln', tier: 'x' } })).toBe(false);
    expect(match({ name: 'NESSUS-*' })).toBe(true);
    expect(match({ name: 'scan-?' })).toBe(true);
    expect(match({ name: 'nessus' })).toBe(false);
    expect(match({ namespace: 'sec', kind: 'pod' })).toBe(true);
    expect(match({ namespace: 'sec', kind: 'vm' })).toBe(false);
    expect(match({ cidr: '10.9.0.0/24' })).toBe(true);
    expect(match({ cidr: ['192.168.0.0/16', '10.0.0.0/8'], name: 'nessus*' })).toBe(true);
    expect(compileSelector(Selector.parse({ cidr: '10.0.0.0/8' }))({ kind: 'ip' })).toBe(false);
  });

  // A backtracking regex takes tens of seconds on this (the test would time out); the glob matcher, microseconds.
  it('an allowlist glob with many stars answers at once on a 256-character name, hostile names included', () => {
    const allow = compileAny([Selector.parse({ name: '*a*a*a*a*b' }), Selector.parse({ name: 'scanner-*-*-*-*' })])!;
    const long = 'a'.repeat(256);
    expect(allow({ kind: 'pod', name: long, id: long })).toBe(false);
    expect(allow({ kind: 'pod', name: long + 'b' })).toBe(true);
    expect(allow({ kind: 'pod', name: `scanner-${'-'.repeat(256)}` })).toBe(true);
    expect(allow({ kind: 'pod', name: `scanner-${'-'.repeat(256)}\nx` })).toBe(true); // a line break does not escape `*`
    expect(allow({ kind: 'pod', name: `scanner${'_'.repeat(256)}` })).toBe(false);
  }, 10_000);

  it('refuses empty selectors, unknown fields and bad CIDRs at the edge', () => {
    expect(Selector.safeParse({}).success).toBe(false);
    expect(Selector.safeParse({ nmae: 'x' }).success).toBe(false);
    expect(Selector.safeParse({ cidr: '10.0.0.0/40' }).success).toBe(false);
  });
});

describe('roles', () => {
  const resolver = new RoleResolver(
    parseCorrelationConfig({ roles: { inventory: [{ selector: { name: 'WORKSTATION*' }, role: 'workstation' }] } }),
  );

  it('label first, then inventory, then observed behaviour, then kind', () => {
    const labelled = resolver.configured({ kind: 'host', name: 'WORKSTATION1', labels: { 'cordon.io/role': 'server' } });
    expect(labelled).toEqual({ role: 'server', source: 'label' });
    const inventoried = resolver.configured({ kind: 'host', name: 'workstation7' });
    expect(inventoried).toEqual({ role: 'workstation', source: 'inventory' });
    const unknown = resolver.configured({ kind: 'ip', ip: '10.0.0.1' });
    expect(resolver.effective(unknown, 1)).toEqual({ role: 'domain-controller', source: 'observed' });
    expect(resolver.effective(inventoried, 1)).toBe(inventoried); // configuration wins over behaviour
    expect(resolver.configured({ kind: 'node', name: 'n1' })).toEqual({ role: 'node', source: 'kind' });
    expect(resolver.observedFlags(88)).toBe(1);
    expect(resolver.observedFlags(443)).toBe(0);
  });

  it('multiplies every matching pair rule and explains each', () => {
    const v = resolver.pairVerdict({ role: 'workstation', kind: 'host' }, { role: 'domain-controller', kind: 'host' }, 'smb');
    expect(v.factor).toBe(2);
    expect(v.techniques).toEqual(['T1210']);
    const ws = resolver.pairVerdict({ role: 'workstation', kind: 'host' }, { role: 'workstation', kind: 'host' }, 'rdp');
    expect(ws.reasons).toEqual(['workstations do not administer each other (x2)']);
    const scanner = resolver.pairVerdict({ role: 'scanner', kind: 'vm' }, { role: 'domain-controller', kind: 'host' }, 'smb');
    expect(scanner.factor).toBe(0.5);
    const shell = resolver.pairVerdict({ role: 'server', kind: 'host' }, { role: 'node', kind: 'node' }, 'ssh');
    expect(shell.factor).toBe(1.5);
    expect(resolver.pairVerdict({ role: 'server', kind: 'host' }, { role: 'server', kind: 'host' }, 'rdp').factor).toBe(1);
  });
});

describe('configuration', () => {
  it('has sensible defaults', () => {
    const c = parseCorrelationConfig();
    expect(c.thresholds.incident).toBe(6);
    expect(c.halfLifeMs).toBe(4 * 3_600_000);
    expect(c.weights.services.smb).toBe(4);
    expect(c.weights.services.other).toBe(0);
    expect(c.weights.fanOut).toEqual({ minTargets: 5, base: 3, perTarget: 1 });
    expect(c.pairRules).toHaveLength(6);
    expect(c.corroboration).toEqual({
      services: ['smb', 'rdp', 'ssh', 'vnc', 'database'],
      burstMs: 10 * 60_000,
      attempts: 3,
      windowMs: 2 * 3_600_000,
      retransmitMs: 2 * 60_000,
      anomalyWeight: 3,
      targetRoles: ['domain-controller'],
    });
    expect(c.allowlist).toEqual([]);
    expect(CorrelationConfig.parse(c)).toEqual(c); // parsing a parsed config is the identity
  });

  it('refuses unknown keys and bad values with a path', () => {
    expect(() => parseCorrelationConfig({ weights: { services: { smb: -1 } } })).toThrow(/smb/);
    expect(() => parseCorrelationConfig({ thresholds: { incidnet: 3 } })).toThrow();
    expect(() => parseCorrelationConfig({ allowlist: [{ cidr: 'nope' }] })).toThrow(/CIDR/);
    // fan-out is counted over the recent pairs: the table must hold at least minTargets of them
    expect(() => parseCorrelationConfig({ limits: { pairsPerEntity: 4 } })).toThrow(/pairsPerEntity/);
  });
});

describe('incident arithmetic', () => {
  it('severity bands, confidence, ids', () => {
    const t = parseCorrelationConfig().thresholds;
    expect([6, 9, 16, 30].map((s) => severityOf(s, t))).toEqual(['low', 'medium', 'high', 'critical']);
    expect(confidenceOf(8, 1)).toBe(0.551);
    expect(confidenceOf(8, 3)).toBeGreaterThan(confidenceOf(8, 1));
    expect(confidenceOf(1000, 6)).toBeLessThanOrEqual(1);
    const id = incidentId('pod:ns/x', Date.UTC(2024, 0, 1, 10, 17), 3_600_000);
    expect(id).toBe(incidentId('pod:ns/x', Date.UTC(2024, 0, 1, 10, 59), 3_600_000));
    expect(id).not.toBe(incidentId('pod:ns/x', Date.UTC(2024, 0, 1, 11, 0), 3_600_000));
    expect(id).toMatch(/^inc-[0-9a-f]{20}$/);
  });
});
