import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnforcerError, type ApplyRequest, type Target } from '../../src/enforcer/enforcer';
import { NftablesEnforcer } from '../../src/enforcer/nftables';
import {
  NsProcess,
  createLab,
  destroyLab,
  inNs,
  labSupport,
  openStream,
  removeStaleLabs,
  run,
  sleep,
  startEchoServer,
  tryConnect,
  type Lab,
} from '../support/netns';

/**
 * The host enforcer end to end, with real packets: attacker and victim namespaces routed through a
 * router namespace where the enforcer runs. The attacker (172.18.39.5, the recording's
 * compromised host) is quarantined; connections to and from it are observed from both ends.
 */

const support = labSupport();
if (!support.ok) console.warn(`nftables end-to-end suite skipped: ${support.reason}`);
const describeLab = support.ok ? describe : describe.skip;

const PORT = 7000;
/** As src/contain/quarantine.ts names leases: `lease.<entity key>`. */
const LEASE = 'lease.ip:172.18.39.5';
const isEcho = (l: string) => l.startsWith('echo ');

describeLab(`nftables enforcer: real packets through a router namespace${support.ok ? '' : ` (skipped: ${support.reason})`}`, () => {
  let lab: Lab;
  let enforcer: NftablesEnforcer;
  let attacker: Target;
  const processes: NsProcess[] = [];
  let stream: NsProcess;
  let appliedAt = 0;

  const request = (ttlSec: number, leaseId = LEASE, target = attacker): ApplyRequest => ({
    target,
    labels: { 'cordon.io/quarantine': 'true' },
    expiresAt: Date.now() + ttlSec * 1000,
    leaseId,
  });
  const connect = (from: 'attacker' | 'victim', to: 'attacker' | 'victim', family: 4 | 6 = 4, timeoutMs = 600) =>
    tryConnect(lab[from].ns, family === 4 ? lab[to].ipv4 : lab[to].ipv6, PORT, timeoutMs);
  const elements = async (set = 'quarantine_v4') =>
    (await inNs(lab.router, 'nft', ['list', 'set', 'inet', 'cordon', set])).split('\n').filter((l) => /timeout|elements/.test(l)).join('\n');
  const conntrackEntries = async (address: string) =>
    (await inNs(lab.router, 'conntrack', ['-L', '-f', address.includes(':') ? 'ipv6' : 'ipv4', '-s', address]))
      .split('\n')
      .filter((l) => l.trim() !== '').length;

  beforeAll(async () => {
    await removeStaleLabs();
    lab = await createLab();
    attacker = { entity: `ip:${lab.attacker.ipv4}`, kind: 'host', ip: lab.attacker.ipv4 };
    enforcer = new NftablesEnforcer({ netns: lab.router, retry: { initialMs: 20, maxMs: 200 } });
    processes.push(await startEchoServer(lab.victim.ns, PORT), await startEchoServer(lab.attacker.ns, PORT));
  });

  afterAll(async () => {
    for (const p of processes) p.stop();
    if (lab) await destroyLab(lab);
  });

  it('lets a new connection through before any quarantine, both ways, IPv4 and IPv6', async () => {
    expect(await connect('attacker', 'victim')).toBe('ok');
    expect(await connect('victim', 'attacker')).toBe('ok');
    expect(await connect('attacker', 'victim', 6)).toBe('ok');
    expect((await enforcer.observe(attacker)).contained).toBe(false);
  });

  it('quarantine drops new and established connections in both directions and cuts conntrack', async () => {
    stream = await openStream(lab.attacker.ns, lab.victim.ipv4, PORT);
    processes.push(stream);
    await stream.waitFor(isEcho);
    expect(await conntrackEntries(lab.attacker.ipv4)).toBeGreaterThan(0);

    const t0 = Date.now();
    appliedAt = t0;
    const snapshot = await enforcer.apply(request(30));
    const applyMs = Date.now() - t0;
    expect(snapshot.labels).toEqual({ 'cordon.io/quarantine': null });
    expect(snapshot.extra).toEqual({ family: 'inet', table: 'cordon', set: 'quarantine_v4', address: '172.18.39.5', prior: null });
    expect(snapshot.target).toBe(attacker);
    expect(applyMs).toBeLessThan(2_000);

    const cutAt = Date.now();
    expect(await connect('attacker', 'victim')).toBe('timeout');
    expect(await connect('victim', 'attacker')).toBe('timeout');
    // The connection already open gets no more echoes (its packets are dropped both ways) ...
    await sleep(600);
    expect(stream.count(isEcho, cutAt + 100)).toBe(0);
    // ... and its conntrack entry is gone, so the router's `ct state established accept` cannot
    // carry it on later.
    expect(await conntrackEntries(lab.attacker.ipv4)).toBe(0);
    // Only that address is quarantined: the attacker's IPv6 address still gets through.
    expect(await connect('attacker', 'victim', 6)).toBe('ok');

    const counters = await enforcer.counters();
    expect(counters.forward.packets).toBeGreaterThan(0);
    expect(await elements()).toMatch(/172\.18\.39\.5 timeout 30s expires \S+ comment "lease\.ip:172\.18\.39\.5"/);
  });

  it('observe reports the address contained, with the kernel-side expiry and the lease', async () => {
    const o = await enforcer.observe(attacker);
    expect(o).toMatchObject({ contained: true, labels: { 'cordon.io/quarantine': 'true' }, comment: LEASE, missing: [] });
    const left = 30 - (Date.now() - appliedAt) / 1000;
    expect(o.expiresInSec).toBeGreaterThanOrEqual(Math.floor(left) - 1);
    expect(o.expiresInSec).toBeLessThanOrEqual(30);
  });

  it('re-applying the same lease is idempotent and moves the expiry; extend moves it again', async () => {
    const again = await enforcer.apply(request(60));
    expect(again.labels).toEqual({ 'cordon.io/quarantine': null }); // its own element is not a prior state
    const listed = await elements();
    expect(listed.match(/172\.18\.39\.5 timeout/g)).toHaveLength(1);
    expect(listed).toMatch(/172\.18\.39\.5 timeout 1m expires/);
    await enforcer.extend(attacker, Date.now() + 90_000, LEASE);
    expect((await enforcer.observe(attacker)).expiresInSec).toBeGreaterThanOrEqual(88);
    // The ruleset was re-sent with each change: still exactly four rules a chain.
    const rules = (await inNs(lab.router, 'nft', ['list', 'chain', 'inet', 'cordon', 'forward'])).match(/ drop$/gm);
    expect(rules).toHaveLength(4);
  });

  it('release restores new connections at once; the cut connection stays cut; revert twice is a no-op', async () => {
    const snapshot = await enforcer.apply(request(60));
    await enforcer.revert(snapshot, LEASE);
    expect(await connect('attacker', 'victim')).toBe('ok');
    expect(await connect('victim', 'attacker')).toBe('ok');
    const o = await enforcer.observe(attacker);
    expect(o).toMatchObject({ contained: false, labels: {} });
    expect(o.expiresInSec).toBeUndefined();

    await enforcer.revert(snapshot, LEASE);
    await enforcer.revert(snapshot, LEASE);
    expect(await elements()).not.toMatch(/172\.18\.39\.5/);

    // The old stream's packets now arrive with no conntrack entry: the router's stateful firewall
    // drops them, as it would on a real gateway. Without the conntrack cut it would resume.
    const releasedAt = Date.now();
    await sleep(1_000);
    expect(stream.count(isEcho, releasedAt)).toBe(0);
  });

  it('the kernel ends the quarantine at expiry by itself, without Cordon', async () => {
    await enforcer.apply(request(3));
    const o = await enforcer.observe(attacker);
    expect(o.contained).toBe(true);
    expect(o.expiresInSec).toBeLessThanOrEqual(3);
    expect(await connect('attacker', 'victim', 4, 400)).toBe('timeout');

    // No revert: only look, until the element is gone.
    const deadline = Date.now() + 6_000;
    while ((await enforcer.observe(attacker)).contained) {
      if (Date.now() > deadline) throw new Error('the kernel did not expire the element');
      await sleep(100);
    }
    expect(await elements()).not.toMatch(/172\.18\.39\.5/);
    expect(await connect('attacker', 'victim')).toBe('ok');
  });

  it('quarantines an IPv6 address on its own', async () => {
    const v6: Target = { entity: 'ip:fd18:39::5', kind: 'host', ip: 'FD18:0039:0000::0005' };
    const v6stream = await openStream(lab.attacker.ns, lab.victim.ipv6, PORT);
    processes.push(v6stream);
    await v6stream.waitFor(isEcho);
    expect(await conntrackEntries(lab.attacker.ipv6)).toBeGreaterThan(0);
    const snapshot = await enforcer.apply(request(30, 'lease-e2e-v6', v6));
    const cutAt = Date.now();
    expect(snapshot.extra).toMatchObject({ set: 'quarantine_v6', address: 'fd18:39::5' });
    expect(await conntrackEntries(lab.attacker.ipv6)).toBe(0);
    expect(await connect('attacker', 'victim', 6)).toBe('timeout');
    expect(v6stream.count(isEcho, cutAt + 100)).toBe(0);
    expect(await connect('victim', 'attacker', 6)).toBe('timeout');
    expect(await connect('attacker', 'victim', 4)).toBe('ok'); // the IPv4 address is not quarantined
    expect((await enforcer.observe(v6)).contained).toBe(true);
    await enforcer.revert(snapshot, 'lease-e2e-v6');
    expect(await connect('attacker', 'victim', 6)).toBe('ok');
  });

  it('puts back an element that was there before, and leaves alone one another lease holds', async () => {
    await inNs(lab.router, 'nft', ['add element inet cordon quarantine_v4 { 172.18.39.5 timeout 120s comment "operator" }']);
    const snapshot = await enforcer.apply(request(30));
    expect(snapshot.labels).toEqual({ 'cordon.io/quarantine': 'true' });
    expect(snapshot.extra).toMatchObject({ prior: { comment: 'operator' } });
    expect((await enforcer.observe(attacker)).comment).toBe(LEASE);
    await enforcer.revert(snapshot, LEASE);
    const o = await enforcer.observe(attacker);
    expect(o).toMatchObject({ contained: true, comment: 'operator' });
    expect(o.expiresInSec).toBeGreaterThan(100);
    // A stale revert of the same lease now finds the operator's element: it stays.
    await enforcer.revert(snapshot, LEASE);
    expect((await enforcer.observe(attacker)).comment).toBe('operator');
    await inNs(lab.router, 'nft', ['delete element inet cordon quarantine_v4 { 172.18.39.5 }']);
  });

  it('names the lease in the comment even when its id cannot be an nft string as it is', async () => {
    const odd = 'lease.vm:Finance Ops/"WS 5" ' + 'x'.repeat(200);
    const snapshot = await enforcer.apply(request(30, odd));
    const o = await enforcer.observe(attacker);
    expect(o.contained).toBe(true);
    expect(o.comment).toMatch(/^lease\.vm:Finance_Ops\/_WS_5__x+~[0-9a-f]{24}$/);
    await enforcer.revert(snapshot, 'some other lease'); // not its element: stays
    expect((await enforcer.observe(attacker)).contained).toBe(true);
    await enforcer.revert(snapshot, odd);
    expect((await enforcer.observe(attacker)).contained).toBe(false);
  });

  it('reports drift when someone removes the rules, and the next change repairs them', async () => {
    await enforcer.apply(request(30));
    await inNs(lab.router, 'nft', ['flush chain inet cordon forward']);
    const drifted = await enforcer.observe(attacker);
    expect(drifted.contained).toBe(false);
    expect(drifted.missing).toContain('rule forward ip saddr @quarantine_v4 drop');
    expect(await connect('attacker', 'victim')).toBe('ok');
    await enforcer.extend(attacker, Date.now() + 30_000, LEASE);
    expect((await enforcer.observe(attacker)).contained).toBe(true);
    expect(await connect('attacker', 'victim')).toBe('timeout');
    await enforcer.revert({ target: attacker, labels: {}, takenAt: Date.now() }, LEASE);
    expect(await connect('attacker', 'victim')).toBe('ok');
  });

  it('the shipped ruleset file loads on top of the live table without changing it', async () => {
    const file = readFileSync(join(__dirname, '../../connectors/nftables/cordon.nft'), 'utf8');
    const before = await inNs(lab.router, 'nft', ['list', 'table', 'inet', 'cordon']);
    await inNs(lab.router, 'nft', ['-f', join(__dirname, '../../connectors/nftables/cordon.nft')]);
    expect(await inNs(lab.router, 'nft', ['list', 'table', 'inet', 'cordon'])).toBe(before);
    expect(file).toContain('add table inet cordon');
  });

  it('cleans up labs a crashed run left behind, and only those', async () => {
    const stale = `cordon-${(Date.now() - 3_600_000).toString(36)}-abcdef-router`;
    await run('ip', ['netns', 'add', stale]);
    expect(await removeStaleLabs()).toContain(stale);
    const left = await run('ip', ['netns', 'list']);
    expect(left).not.toContain(stale);
    expect(left).toContain(lab.router);
  });

  describe('failures change nothing', () => {
    const ruleset = () => inNs(lab.router, 'nft', ['list', 'ruleset']).then((r) => r.replace(/packets \d+ bytes \d+/g, ''));

    it('refuses an invalid or missing ip, non-retriably, before touching anything', async () => {
      const before = await ruleset();
      for (const ip of [undefined, '', 'attacker', '172.18.39.5 } ; flush ruleset ; add element inet cordon quarantine_v4 { 1.2.3.4', '172.18.39.5/32', '172.018.39.5', 'fe80::1%eth0', '127.0.0.1', '0.0.0.0', '::1', '224.0.0.1']) {
        const err = await enforcer.apply(request(30, LEASE, { entity: 'ip:x', kind: 'host', ...(ip === undefined ? {} : { ip }) })).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(EnforcerError);
        expect(err).toMatchObject({ retriable: false, code: 'invalid_target' });
      }
      const noLease = await enforcer.apply(request(30, '')).catch((e: unknown) => e);
      expect(noLease).toMatchObject({ name: 'EnforcerError', retriable: false, code: 'invalid_lease_id' });
      const expired = await enforcer.apply({ ...request(30), expiresAt: Date.now() - 1 }).catch((e: unknown) => e);
      expect(expired).toMatchObject({ name: 'EnforcerError', retriable: false, code: 'expired' });
      expect(await ruleset()).toBe(before);
    });

    it('a protected address (a cidrs or names selector) is refused before touching anything, unless a person approved it', async () => {
      const before = await ruleset();
      const cidr = `${lab.attacker.ipv4}/32`;
      for (const selector of [{ cidrs: [cidr] }, { names: [lab.attacker.ipv4] }]) {
        const err = await enforcer.apply({ ...request(30), protected: [selector] }).catch((e: unknown) => e);
        expect(err).toMatchObject({ name: 'EnforcerError', retriable: false, code: 'protected' });
      }
      expect(await ruleset()).toBe(before);
      expect(await connect('attacker', 'victim')).toBe('ok');
      const snapshot = await enforcer.apply({ ...request(30), protected: [{ cidrs: [cidr] }], approvedBy: 'user:alice' });
      expect((await enforcer.observe(attacker)).contained).toBe(true);
      await enforcer.revert(snapshot, LEASE);
      expect((await enforcer.observe(attacker)).contained).toBe(false);
    });

    it('a missing nft binary or namespace is a non-retriable EnforcerError', async () => {
      const noNft = new NftablesEnforcer({ netns: lab.router, nftPath: '/nonexistent/nft' });
      const t0 = Date.now();
      await expect(noNft.apply(request(30))).rejects.toMatchObject({ name: 'EnforcerError', retriable: false, code: 'not_found' });
      await expect(noNft.observe(attacker)).rejects.toThrow(/nonexistent\/nft/);
      expect(Date.now() - t0).toBeLessThan(2_000); // not retried
      const noNs = new NftablesEnforcer({ netns: `${lab.id}-nowhere` });
      await expect(noNs.observe(attacker)).rejects.toMatchObject({ retriable: false, code: 'netns_not_found' });
      const local = new NftablesEnforcer({ nftPath: '/nonexistent/nft' });
      await expect(local.observe(attacker)).rejects.toMatchObject({ retriable: false, code: 'not_found' });
      expect((await enforcer.observe(attacker)).contained).toBe(false);
    });

    it('a transaction the kernel rejects leaves the table exactly as it was (all or nothing)', async () => {
      // Someone else's table of the same name with an incompatible set: nft refuses the batch.
      await inNs(lab.router, 'nft', ['add table inet taken ; add set inet taken quarantine_v4 { type ipv4_addr; }']);
      const before = await ruleset();
      const taken = new NftablesEnforcer({ netns: lab.router, table: 'taken', retry: { initialMs: 10, maxMs: 20 } });
      const err = await taken.apply(request(30)).catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'EnforcerError', retriable: false, code: 'conflict' });
      expect((err as Error).message).toMatch(/File exists/);
      expect(await ruleset()).toBe(before); // no chain, no counter, no element: nothing half-applied
      await inNs(lab.router, 'nft', ['delete table inet taken']);
    });

    it('when the connection cut fails, the element is rolled back', async () => {
      const noConntrack = new NftablesEnforcer({ netns: lab.router, conntrackPath: '/nonexistent/conntrack' });
      await expect(noConntrack.apply(request(30))).rejects.toMatchObject({ name: 'EnforcerError', retriable: false, code: 'not_found' });
      expect((await enforcer.observe(attacker)).contained).toBe(false);
      expect(await connect('attacker', 'victim')).toBe('ok');
    });

    it('retries a transient failure with backoff and then succeeds', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'cordon-nft-'));
      try {
        // An nft that is busy once (as when another process holds the netlink transaction).
        const wrapper = join(dir, 'nft');
        writeFileSync(
          wrapper,
          `#!/bin/sh\nif [ ! -e "${dir}/failed" ]; then touch "${dir}/failed"; echo "Error: Could not process rule: Device or resource busy" >&2; exit 1; fi\nexec nft "$@"\n`,
        );
        chmodSync(wrapper, 0o755);
        const retries: number[] = [];
        const flaky = new NftablesEnforcer({ netns: lab.router, nftPath: wrapper, retry: { initialMs: 10, maxMs: 50, onRetry: (_e, a) => retries.push(a) } });
        const snapshot = await flaky.apply(request(30));
        expect(retries).toEqual([1]);
        expect((await enforcer.observe(attacker)).contained).toBe(true);
        await flaky.revert(snapshot, LEASE);
        expect((await enforcer.observe(attacker)).contained).toBe(false);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
