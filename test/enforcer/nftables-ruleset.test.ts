import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EnforcerError } from '../../src/enforcer/enforcer';
import { NftablesConfig, NftablesEnforcer } from '../../src/enforcer/nftables';
import { classifyConntrack, classifyNft } from '../../src/enforcer/nftables-exec';
import {
  MAX_TIMEOUT_SEC,
  ensureRuleset,
  isSafeComment,
  missingRules,
  parseAddress,
  parseListing,
  removeElement,
  renderRulesetFile,
  replaceElement,
  timeoutSeconds,
  leaseComment,
  validateTable,
} from '../../src/enforcer/nftables-ruleset';

/** The pure half of the host enforcer: what goes into nft commands, and what comes out of nft. */

/** `nft -j list table inet cordon` as nft 1.0.6 printed it (one element without attributes). */
const LISTING = JSON.stringify({
  nftables: [
  {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
  {"table": {"family": "inet", "name": "cordon", "handle": 1}},
  {"counter": {"family": "inet", "name": "dropped_forward", "table": "cordon", "handle": 3, "packets": 0, "bytes": 0}},
  {"counter": {"family": "inet", "name": "dropped_input", "table": "cordon", "handle": 4, "packets": 0, "bytes": 0}},
  {"counter": {"family": "inet", "name": "dropped_output", "table": "cordon", "handle": 5, "packets": 0, "bytes": 0}},
  {"set": {"family": "inet", "name": "quarantine_v4", "table": "cordon", "type": "ipv4_addr", "handle": 1, "flags": ["timeout"], "elem": ["10.0.0.9", {"elem": {"val": "172.18.39.5", "timeout": 30, "expires": 29, "comment": "lease-1"}}]}},
  {"set": {"family": "inet", "name": "quarantine_v6", "table": "cordon", "type": "ipv6_addr", "handle": 2, "flags": ["timeout"], "elem": [{"elem": {"val": "fd18:39::5", "timeout": 3600, "expires": 3599, "comment": "lease-2"}}]}},
  {"chain": {"family": "inet", "table": "cordon", "name": "forward", "handle": 6, "type": "filter", "hook": "forward", "prio": -10, "policy": "accept"}},
  {"chain": {"family": "inet", "table": "cordon", "name": "input", "handle": 7, "type": "filter", "hook": "input", "prio": -10, "policy": "accept"}},
  {"chain": {"family": "inet", "table": "cordon", "name": "output", "handle": 8, "type": "filter", "hook": "output", "prio": -10, "policy": "accept"}},
  {"rule": {"family": "inet", "table": "cordon", "chain": "forward", "handle": 9, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@quarantine_v4"}}, {"counter": "dropped_forward"}, {"drop": null}]}},
  {"rule": {"family": "inet", "table": "cordon", "chain": "forward", "handle": 10, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "@quarantine_v4"}}, {"counter": "dropped_forward"}, {"drop": null}]}},
  {"rule": {"family": "inet", "table": "cordon", "chain": "forward", "handle": 11, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "saddr"}}, "right": "@quarantine_v6"}}, {"counter": "dropped_forward"}, {"drop": null}]}},
  {"rule": {"family": "inet", "table": "cordon", "chain": "forward", "handle": 12, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "daddr"}}, "right": "@quarantine_v6"}}, {"counter": "dropped_forward"}, {"drop": null}]}},
  {"rule": {"family": "inet", "table": "cordon", "chain": "input", "handle": 13, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@quarantine_v4"}}, {"counter": "dropped_input"}, {"drop": null}]}},
  {"rule": {"family": "inet", "table": "cordon", "chain": "input", "handle": 14, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "@quarantine_v4"}}, {"counter": "dropped_input"}, {"drop": null}]}},
  {"rule": {"family": "inet", "table": "cordon", "chain": "input", "handle": 15, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "saddr"}}, "right": "@quarantine_v6"}}, {"counter": "dropped_input"}, {"drop": null}]}},
  {"rule": {"family": "inet", "table": "cordon", "chain": "input", "handle": 16, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "daddr"}}, "right": "@quarantine_v6"}}, {"counter": "dropped_input"}, {"drop": null}]}},
  {"rule": {"family": "inet", "table": "cordon", "chain": "output", "handle": 17, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@quarantine_v4"}}, {"counter": "dropped_output"}, {"drop": null}]}},
  {"rule": {"family": "inet", "table": "cordon", "chain": "output", "handle": 18, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "@quarantine_v4"}}, {"counter": "dropped_output"}, {"drop": null}]}},
  {"rule": {"family": "inet", "table": "cordon", "chain": "output", "handle": 19, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "saddr"}}, "right": "@quarantine_v6"}}, {"counter": "dropped_output"}, {"drop": null}]}},
  {"rule": {"family": "inet", "table": "cordon", "chain": "output", "handle": 20, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "daddr"}}, "right": "@quarantine_v6"}}, {"counter": "dropped_output"}, {"drop": null}]}},
  ],
});

function rejects(call: () => unknown, code: string): void {
  let caught: unknown;
  try {
    call();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(EnforcerError);
  expect(caught).toMatchObject({ retriable: false, code });
}

describe('addresses', () => {
  it('canonicalizes what nft will print: lower case, compressed IPv6, IPv4-mapped as IPv4', () => {
    expect(parseAddress('172.18.39.5')).toEqual({ address: '172.18.39.5', version: 4, set: 'quarantine_v4' });
    expect(parseAddress('FD18:0039:0000::0005')).toEqual({ address: 'fd18:39::5', version: 6, set: 'quarantine_v6' });
    expect(parseAddress('::ffff:172.18.39.5')).toEqual({ address: '172.18.39.5', version: 4, set: 'quarantine_v4' });
    expect(parseAddress('::FFFF:AC12:2705').address).toBe('172.18.39.5');
  });

  it('refuses anything that is not exactly an address, or that would cut off the host itself', () => {
    const bad = [undefined, null, 42, '', ' 172.18.39.5', '172.18.39.5\n', '172.18.39.5/32', '172.018.39.5', '1.2.3.256', 'host.example',
      '1.2.3.4 } ; flush ruleset', 'fe80::1%eth0', 'x'.repeat(1000),
      '0.0.0.0', '0.1.2.3', '127.0.0.1', '127.8.8.8', '224.0.0.1', '239.255.255.250', '255.255.255.255', '240.0.0.1', '::', '::1', 'ff02::1'];
    for (const raw of bad) rejects(() => parseAddress(raw), 'invalid_target');
  });

  it('accepts ordinary unicast addresses, private and public, link-local included', () => {
    for (const raw of ['10.0.0.1', '192.168.1.255', '8.8.8.8', '169.254.1.1', '2001:db8::1', 'fe80::1', '::ffff:10.0.0.1']) {
      expect(() => parseAddress(raw)).not.toThrow();
    }
  });
});

describe('names, lease ids and timeouts', () => {
  it('allows only plain identifiers and safe lease ids into commands', () => {
    expect(validateTable('cordon')).toBe('cordon');
    for (const t of ['', '1table', 'a b', 'a;b', 'x'.repeat(33), 'inet cordon']) rejects(() => validateTable(t), 'invalid_config');
    expect(leaseComment('lease.ip:172.18.39.5')).toBe('lease.ip:172.18.39.5');
    expect(leaseComment('lease.pod:payments/api-7f9c')).toBe('lease.pod:payments/api-7f9c');
    for (const l of ['', undefined, 42]) rejects(() => leaseComment(l), 'invalid_lease_id');
    // Anything else becomes a readable prefix and a hash: deterministic, quotable, at most 128.
    for (const l of ['has space', 'quote"', 'back\\slash', 'new\nline', '-leading', 'x'.repeat(129), 'lease.vm:Ops/WS "5"']) {
      const c = leaseComment(l);
      expect(c).toBe(leaseComment(l));
      expect(c).toMatch(/^[A-Za-z0-9._:@/+=-]{1,96}~[0-9a-f]{24}$/);
      expect(isSafeComment(c)).toBe(true);
      expect(c.length).toBeLessThanOrEqual(128);
    }
    expect(leaseComment('a b')).not.toBe(leaseComment('a_b'));
    expect(leaseComment('a b')).toMatch(/^a_b~/);
    expect(isSafeComment('operator: blocked by hand')).toBe(true);
    expect(isSafeComment('a "quoted" one')).toBe(false);
  });

  it('rounds the timeout up to whole seconds and never sends 0 (which nft reads as "no timeout")', () => {
    const now = 1_700_000_000_000;
    expect(timeoutSeconds(now + 30_000, now)).toBe(30);
    expect(timeoutSeconds(now + 30_001, now)).toBe(31);
    expect(timeoutSeconds(now + 1, now)).toBe(1);
    rejects(() => timeoutSeconds(now, now), 'expired');
    rejects(() => timeoutSeconds(now - 5_000, now), 'expired');
    rejects(() => timeoutSeconds(Number.NaN, now), 'invalid_expiry');
    expect(timeoutSeconds(now + MAX_TIMEOUT_SEC * 1000, now)).toBe(MAX_TIMEOUT_SEC);
    rejects(() => timeoutSeconds(now + (MAX_TIMEOUT_SEC + 1) * 1000, now), 'invalid_expiry');
  });
});

describe('commands', () => {
  const addr = parseAddress('172.18.39.5');

  it('replaces an element with add, delete, add in one batch, so it works whether or not it exists', () => {
    expect(replaceElement('cordon', addr, { timeoutSec: 30, comment: 'lease-1' })).toEqual([
      'add element inet cordon quarantine_v4 { 172.18.39.5 }',
      'delete element inet cordon quarantine_v4 { 172.18.39.5 }',
      'add element inet cordon quarantine_v4 { 172.18.39.5 timeout 30s comment "lease-1" }',
    ]);
    expect(replaceElement('cordon', addr, {}).at(-1)).toBe('add element inet cordon quarantine_v4 { 172.18.39.5 }');
    expect(removeElement('cordon', addr)).toHaveLength(2);
    expect(() => replaceElement('cordon', addr, { timeoutSec: 0 })).toThrow(RangeError);
    expect(() => replaceElement('cordon', addr, { comment: 'a"b' })).toThrow(RangeError);
  });

  it('ensures the ruleset by flushing and refilling its chains in the same transaction', () => {
    const lines = ensureRuleset({ table: 'cordon', priority: -10 });
    expect(lines.filter((l) => l.startsWith('add rule'))).toHaveLength(12);
    expect(lines.filter((l) => l.startsWith('flush chain'))).toHaveLength(3);
    expect(lines).toContain('add chain inet cordon forward { type filter hook forward priority -10; policy accept; }');
    expect(lines).toContain('add rule inet cordon input ip6 saddr @quarantine_v6 counter name "dropped_input" drop');
    // Every flush comes after its chain is declared and before its rules.
    const forward = lines.indexOf('flush chain inet cordon forward');
    expect(forward).toBeGreaterThan(lines.findIndex((l) => l.startsWith('add chain inet cordon forward')));
    expect(forward).toBeLessThan(lines.findIndex((l) => l.startsWith('add rule inet cordon forward')));
  });

  it('ships connectors/nftables/cordon.nft exactly as the enforcer sends it', () => {
    const shipped = readFileSync(join(__dirname, '../../connectors/nftables/cordon.nft'), 'utf8');
    expect(shipped).toBe(renderRulesetFile({ table: 'cordon', priority: -10 }));
    const commands = shipped.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(commands).toEqual(new NftablesEnforcer().ruleset());
  });
});

describe('listings', () => {
  it('reads elements with and without timeout and comment, chains, rules and counters', () => {
    const listing = parseListing(LISTING);
    expect(listing.sets.get('quarantine_v4')).toEqual([
      { address: '10.0.0.9' },
      { address: '172.18.39.5', timeoutSec: 30, expiresSec: 29, comment: 'lease-1' },
    ]);
    expect(listing.sets.get('quarantine_v6')).toEqual([{ address: 'fd18:39::5', timeoutSec: 3600, expiresSec: 3599, comment: 'lease-2' }]);
    expect(listing.chains.get('forward')).toEqual({ hook: 'forward', prio: -10, policy: 'accept' });
    expect(listing.counters.get('dropped_forward')).toEqual({ packets: 0, bytes: 0 });
    expect(listing.rules).toContain('output ip6 daddr @quarantine_v6 drop');
    expect(missingRules(listing)).toEqual([]);
  });

  it('names what is missing when rules or chains are gone', () => {
    const doc = JSON.parse(LISTING) as { nftables: Array<Record<string, { chain?: string; name?: string }>> };
    doc.nftables = doc.nftables.filter((i) => i.rule?.chain !== 'input' && i.chain?.name !== 'output' && i.rule?.chain !== 'output');
    const missing = missingRules(parseListing(JSON.stringify(doc)));
    expect(missing).toContain('rule input ip saddr @quarantine_v4 drop');
    expect(missing).toContain('base chain output');
    expect(missing).toHaveLength(5);
  });

  it('turns unparseable output into an EnforcerError', () => {
    expect(() => parseListing('{"nftables": [')).toThrow(EnforcerError);
    expect(() => parseListing('{"tables": 1}')).toThrow(EnforcerError);
  });
});

describe('failure classification (stderr as nft 1.0.6 and conntrack 1.4.7 print it)', () => {
  it.each([
    ['Error: Could not process rule: Device or resource busy', true, 'busy'],
    ['netlink: Error: Could not process rule: Interrupted system call', true, 'busy'],
    ['Error: No such file or directory\nlist set inet cordon quarantine_v4\n                 ^^^^^^', true, 'absent'],
    ['Error: Could not process rule: Operation not permitted', false, 'permission_denied'],
    ['Error: syntax error, unexpected element, expecting string', false, 'rejected'],
    ['Error: value too large', false, 'rejected'],
    ['Error: comment too long, 128 characters maximum allowed', false, 'rejected'],
    ['/dev/stdin:2:20-32: Error: Could not process rule: File exists\n/dev/stdin:7:40-50: Error: Could not process rule: Invalid argument', false, 'conflict'],
    ['Error: Could not process rule: Operation not supported', false, 'conflict'],
    ['Cannot open network namespace "x": No such file or directory', false, 'netns_not_found'],
    ['exec of "/nonexistent/nft" failed: No such file or directory', false, 'not_found'],
    ['something new', true, 'nft_failed'],
  ])('nft: %j', (stderr, retriable, code) => {
    expect(classifyNft(stderr)).toEqual({ retriable, code });
  });

  it('conntrack', () => {
    expect(classifyConntrack('conntrack v1.4.7 (conntrack-tools): Operation failed: Operation not permitted')).toEqual({ retriable: false, code: 'permission_denied' });
    expect(classifyConntrack('exec of "conntrack" failed: No such file or directory')).toEqual({ retriable: false, code: 'not_found' });
    expect(classifyConntrack('conntrack v1.4.7 (conntrack-tools): Operation failed: Device or resource busy')).toEqual({ retriable: true, code: 'conntrack_failed' });
  });
});

describe('configuration', () => {
  it('has defaults for everything and validates at the edge', () => {
    expect(NftablesConfig.parse({})).toEqual({ table: 'cordon', nftPath: 'nft', conntrackPath: 'conntrack', ipPath: 'ip', priority: -10, commandTimeoutMs: 5000 });
    expect(NftablesConfig.safeParse({ table: 'inet cordon' }).success).toBe(false);
    expect(NftablesConfig.safeParse({ netns: '../x' }).success).toBe(false);
    expect(() => new NftablesEnforcer({ table: 'a;b' })).toThrow(EnforcerError);
    expect(() => new NftablesEnforcer({ netns: '../etc' })).toThrow(EnforcerError);
    expect(new NftablesEnforcer().capabilities).toEqual({ labels: false, kernelExpiry: true, connectionCut: true });
  });
});
