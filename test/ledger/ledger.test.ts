import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import type { Kafka } from 'kafkajs';
import { buildProgram } from '../../src/cli/main';
import type { Config } from '../../src/config';
import { exportLedger, verifyLedger } from '../../src/ledger/audit';
import { canonicalJson } from '../../src/ledger/canonical';
import { hashRecord, verify } from '../../src/ledger/chain';
import { Ledger, LedgerClosedError, LedgerConflictError, LedgerStateError, LedgerWriteError } from '../../src/ledger/ledger';
import { LedgerLockLostError, LedgerLockedError } from '../../src/ledger/lock';
import { readLedger } from '../../src/ledger/reader';
import type { LedgerRecord } from '../../src/ledger/records';
import { FencedError, ledgerKeys } from '../../src/ledger/registry';
import { createLedgerTopic, testKafka } from '../support/kafka';
import { KAFKA_BROKERS, REDIS_URL, testConfig, testLog, uniq } from '../support/stack';
import { T0, chain, mixedEntries, quarantineHistory } from './fixtures';

/** The ledger against the real broker and the real Redis: each test has its own ledger topic and key prefix. */

let kafka: Kafka;
let redis: Redis;
const topics: string[] = [];
const prefixes: string[] = [];
const tmp = mkdtempSync(join(tmpdir(), 'cordon-ledger-'));

beforeAll(() => {
  kafka = testKafka();
  redis = new Redis(REDIS_URL);
});

afterAll(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics }).catch(() => undefined);
  await admin.disconnect();
  for (const prefix of prefixes) await wipe(prefix);
  redis.disconnect();
  rmSync(tmp, { recursive: true, force: true });
});

/** A config of its own, with its ledger topic created as Cordon creates it (1 partition, infinite retention). */
async function setup(name: string, configEntries: Array<{ name: string; value: string }> = []): Promise<Config> {
  const config = testConfig(name);
  topics.push(await createLedgerTopic(kafka, config, configEntries));
  prefixes.push(config.redis.keyPrefix);
  return config;
}

function open(config: Config, extra: Partial<Parameters<typeof Ledger.open>[0]> = {}): Promise<Ledger> {
  let now = T0;
  return Ledger.open({
    kafka,
    redis,
    log: testLog,
    topic: config.kafka.topics.ledger,
    prefix: config.redis.keyPrefix,
    clock: () => (now += 1000),
    ...extra,
  });
}

async function appendAll(ledger: Ledger, entries: Parameters<Ledger['append']>[0][]): Promise<LedgerRecord[]> {
  // All at once: the ledger serializes them.
  return Promise.all(entries.map((e) => ledger.append(e)));
}

/** Deletes every Redis key of a prefix. */
async function wipe(prefix: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

/** The whole registry as Redis holds it. */
async function registrySnapshot(prefix: string) {
  const keys = ledgerKeys(prefix);
  return {
    leases: await redis.hgetall(keys.leases),
    byExpiry: await redis.zrange(keys.byExpiry, 0, -1, 'WITHSCORES'),
    held: await redis.hgetall(keys.held),
    head: await redis.get(keys.head),
  };
}

/** Writes raw values to a topic with a plain producer, as someone tampering with the ledger would. */
async function produceRaw(topic: string, values: string[]): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, acks: -1, messages: values.map((value) => ({ key: 'tamper', value })) });
  await producer.disconnect();
}

/** Runs `cordon <args>` in this process with a config file pointing at the test's topic and prefix. */
async function cordon(config: Config, ...args: string[]): Promise<{ stdout: string; stderr: string; exitCode: number }> {
  const file = join(tmp, `${config.redis.keyPrefix}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      log: { level: 'silent' },
      kafka: { brokers: KAFKA_BROKERS, clientId: uniq('audit'), topics: config.kafka.topics },
      redis: { url: REDIS_URL, keyPrefix: config.redis.keyPrefix },
    }),
  );
  const out: string[] = [];
  const err: string[] = [];
  const capture = (into: string[]) => (chunk: string | Uint8Array) => (into.push(chunk.toString()), true);
  const stdout = jest.spyOn(process.stdout, 'write').mockImplementation(capture(out));
  const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(capture(err));
  const before = process.exitCode;
  try {
    await buildProgram().parseAsync(['node', 'cordon', ...args, '-c', file]);
    return { stdout: out.join(''), stderr: err.join(''), exitCode: Number(process.exitCode ?? 0) };
  } finally {
    stdout.mockRestore();
    stderr.mockRestore();
    process.exitCode = before;
  }
}

describe('ledger writer', () => {
  it('appends 50 records of mixed actions, gapless and keyed by target; the topic verifies', async () => {
    const config = await setup('ledger-append');
    const ledger = await open(config);
    try {
      const records = await appendAll(ledger, mixedEntries(50));
      expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      expect(ledger.head).toEqual({ seq: 50, hash: records[49]!.hash });
      expect(verify(records)).toMatchObject({ ok: true, count: 50 });

      const result = await verifyLedger(kafka, config.kafka.topics.ledger);
      expect(result).toEqual({ ok: true, count: 50, head: records[49]!.hash, seq: 50 });

      const stored = [];
      for await (const m of readLedger(kafka, config.kafka.topics.ledger)) stored.push(m);
      expect(stored.map((m) => m.key)).toEqual(records.map((r) => r.target));
      expect(stored.map((m) => m.value!.toString())).toEqual(records.map((r) => canonicalJson(r)));
      expect(stored.map((m) => m.offset)).toEqual(records.map((_, i) => String(i + 1))); // offset 0: the writer's fence marker

      const head = JSON.parse((await redis.get(ledgerKeys(config.redis.keyPrefix).head))!);
      expect(head).toEqual({ seq: 50, hash: records[49]!.hash, offset: '50' });
    } finally {
      await ledger.close();
    }
  });

  it('group commit: 300 concurrent appends keep call order and a gapless chain; an invalid one is refused alone', async () => {
    const config = await setup('ledger-group');
    const ledger = await open(config);
    try {
      const entries = Array.from({ length: 300 }, (_, i) => ({ actor: 'service:cordon', action: 'playbook_step', target: `pod:g-${i}`, reason: `step ${i}` }) as const);
      const invalid = { actor: 'nobody', action: 'playbook_step', target: 'pod:bad', reason: 'bad actor' } as never;
      const pending = entries.map((e, i) => (i === 150 ? ledger.append(invalid) : ledger.append(e)));
      const settled = await Promise.allSettled(pending);
      expect(settled[150]!.status).toBe('rejected');
      const records = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
      expect(records.map((r) => r.target)).toEqual(entries.filter((_, i) => i !== 150).map((e) => e.target));
      expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 299 }, (_, i) => i + 1));
      const stored = [];
      for await (const m of readLedger(kafka, config.kafka.topics.ledger)) stored.push(m);
      expect(stored.map((m) => m.offset)).toEqual(records.map((_, i) => String(i + 1))); // offset 0: the writer's fence marker
      expect(await verifyLedger(kafka, config.kafka.topics.ledger)).toEqual({ ok: true, count: 299, head: records.at(-1)!.hash, seq: 299 });
      expect(JSON.parse((await redis.get(ledgerKeys(config.redis.keyPrefix).head))!)).toEqual({ seq: 299, hash: records.at(-1)!.hash, offset: '299' });
    } finally {
      await ledger.close();
    }
  });

  it('export round trip: the exported lines are the records, and they verify on their own', async () => {
    const config = await setup('ledger-export');
    const ledger = await open(config);
    const records = await appendAll(ledger, mixedEntries(20));
    await ledger.close();

    const lines: string[] = [];
    expect(await exportLedger(kafka, config.kafka.topics.ledger, (l) => void lines.push(l))).toBe(20);
    expect(lines.map((l) => JSON.parse(l))).toEqual(records.map((r) => JSON.parse(JSON.stringify(r))));
    expect(verify(lines)).toEqual({ ok: true, count: 20, head: records[19]!.hash, seq: 20 });

    const file = join(tmp, 'export.jsonl');
    const exported = await cordon(config, 'audit', 'export', '--out', file);
    expect(exported.exitCode).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(lines.map((l) => `${l}\n`).join(''));
    expect(exported.stderr).toBe(`exported 20 record(s) from ${config.kafka.topics.ledger} to ${file}\n`);
    expect(await cordon(config, 'audit', 'verify', '--file', file)).toMatchObject({ stdout: `ok: 20 records, head ${records[19]!.hash}\n`, exitCode: 0 });
    expect(await cordon(config, 'audit', 'verify')).toMatchObject({ stdout: `ok: 20 records, head ${records[19]!.hash}\n`, exitCode: 0 });

    // An edited export names the edited record.
    const edited = lines.map((l, i) => (i === 4 ? l.replace(/"reason":"[^"]*"/, '"reason":"edited"') : l));
    writeFileSync(file, edited.map((l) => `${l}\n`).join(''));
    expect(await cordon(config, 'audit', 'verify', '--file', file)).toMatchObject({
      stdout: 'FAILED at seq 5 (line 5): hash mismatch; 4 record(s) verified before it\n',
      exitCode: 1,
    });
  });

  it('resumes after a restart from the topic, even when the Redis head is gone', async () => {
    const config = await setup('ledger-resume');
    const first = await open(config);
    const pending = mixedEntries(5).map((e) => first.append(e));
    await first.close(); // waits for the appends already asked for, refuses new ones
    const before = await Promise.all(pending);
    expect(before.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    await expect(first.append(mixedEntries(1)[0]!)).rejects.toThrow(LedgerClosedError);

    await redis.del(ledgerKeys(config.redis.keyPrefix).head);
    const second = await open(config);
    try {
      expect(second.head).toEqual({ seq: 5, hash: before[4]!.hash });
      expect(second.startup.registry).toBe('rebuilt');
      const next = await second.append(mixedEntries(6)[5]!);
      expect(next.seq).toBe(6);
      expect(next.prevHash).toBe(before[4]!.hash);
    } finally {
      await second.close();
    }
    expect(await verifyLedger(kafka, config.kafka.topics.ledger)).toMatchObject({ ok: true, count: 6 });

    // A restart with the Redis head intact finds the registry in sync.
    const third = await open(config);
    expect(third.startup).toEqual({ registry: 'in-sync' });
    expect(third.head.seq).toBe(6);
    await third.close();
  });

  it('one writer per chain: a second writer refuses; a writer that lost its lock stops appending', async () => {
    const config = await setup('ledger-lock');
    const keys = ledgerKeys(config.redis.keyPrefix);
    const first = await open(config, { owner: 'replica-a' });
    await first.append(mixedEntries(1)[0]!);

    const refused = open(config, { owner: 'replica-b' });
    await expect(refused).rejects.toThrow(LedgerLockedError);
    await expect(refused).rejects.toThrow(/held by another writer \(replica-a#\d+\)/);

    // The lock is taken away (expired during a long pause, say) and another writer takes it.
    await redis.set(keys.lock, 'replica-b#999');
    await expect(first.append(mixedEntries(2)[1]!)).rejects.toThrow(LedgerLockLostError);
    await expect(first.append(mixedEntries(3)[2]!)).rejects.toThrow(LedgerLockLostError);
    // Its registry writes are fenced too.
    const stale = chain(mixedEntries(2))[1]!;
    await expect(first.registry.apply(first.token, stale, '1')).rejects.toThrow(FencedError);
    await first.close();
    expect(await redis.get(keys.lock)).toBe('replica-b#999'); // close does not free someone else's lock

    await redis.del(keys.lock);
    const second = await open(config, { owner: 'replica-b' });
    try {
      expect((await second.append(mixedEntries(2)[1]!)).seq).toBe(2);
    } finally {
      await second.close();
    }
    expect(await redis.get(keys.lock)).toBeNull();
    expect(await verifyLedger(kafka, config.kafka.topics.ledger)).toMatchObject({ ok: true, count: 2 });
  });

  it('an append the broker refuses fails as unknown; the next one re-reads the head and continues the chain', async () => {
    const config = await setup('ledger-refused', [{ name: 'max.message.bytes', value: '4096' }]);
    const ledger = await open(config);
    try {
      const [r1] = await appendAll(ledger, mixedEntries(1));
      const huge = { actor: 'service:cordon', action: 'dry_run', target: 'pod:big', reason: 'x'.repeat(8000) } as const;
      await expect(ledger.append(huge)).rejects.toThrow(LedgerWriteError);
      const r2 = await ledger.append(mixedEntries(2)[1]!);
      expect(r2).toMatchObject({ seq: 2, prevHash: r1!.hash });
      expect(await verifyLedger(kafka, config.kafka.topics.ledger)).toMatchObject({ ok: true, count: 2 });
    } finally {
      await ledger.close();
    }
  });

  it('refuses to append after something else wrote to the ledger topic', async () => {
    const config = await setup('ledger-conflict');
    const ledger = await open(config);
    try {
      const [r1] = await appendAll(ledger, mixedEntries(1));
      const forged = chain(mixedEntries(2), undefined)[1]!;
      await produceRaw(config.kafka.topics.ledger, [canonicalJson({ ...forged, prevHash: r1!.hash })]);
      await expect(ledger.append(mixedEntries(3)[2]!)).rejects.toThrow(LedgerConflictError);
      await expect(ledger.append(mixedEntries(3)[2]!)).rejects.toThrow(/something else wrote to it/);
    } finally {
      await ledger.close();
    }
  });
});

describe('tampering with the ledger topic: verify names the first break', () => {
  const records = chain(mixedEntries(20));
  const text = (rs: object[]) => rs.map((r) => canonicalJson(r));
  const rehash = (r: LedgerRecord, change: Partial<LedgerRecord>) => {
    const body = { ...r, ...change } as Record<string, unknown>;
    delete body.hash;
    return { ...body, hash: hashRecord(body) };
  };

  const cases: Array<{ name: string; values: string[]; expected: object }> = [
    {
      name: 'a changed field',
      // seq 7 is a quarantine: its expiry moved by a day.
      values: text(records.map((r) => (r.seq === 7 ? { ...r, after: { ...(r.after as object), expiresAt: T0 + 86_400_000 } } : r))),
      expected: { ok: false, seq: 7, reason: 'hash mismatch', offset: '6', count: 6 },
    },
    {
      name: 'a removed record',
      values: text(records.filter((r) => r.seq !== 10)),
      expected: { ok: false, seq: 10, reason: 'missing record (gap from 9 to 11)', offset: '9', count: 9 },
    },
    {
      name: 'a duplicated record',
      values: text([...records.slice(0, 12), records[4]!, ...records.slice(12)]),
      expected: { ok: false, seq: 5, reason: 'duplicate seq', offset: '12', count: 12 },
    },
    {
      name: 'two records reordered',
      values: text([...records.slice(0, 13), records[14]!, records[13]!, ...records.slice(15)]),
      expected: { ok: false, seq: 14, reason: 'missing record (gap from 13 to 15)', offset: '13', count: 13 },
    },
    {
      name: 'a record with a bad prevHash (re-hashed by the forger)',
      values: text(records.map((r) => (r.seq === 8 ? rehash(r, { prevHash: 'a'.repeat(64) }) : r))),
      expected: { ok: false, seq: 8, reason: 'broken link', offset: '7', count: 7 },
    },
    {
      name: 'a rewritten record (re-hashed): the link after it breaks',
      values: text(records.map((r) => (r.seq === 3 ? rehash(r, { reason: 'rewritten' }) : r))),
      expected: { ok: false, seq: 4, reason: 'broken link', offset: '3', count: 3 },
    },
  ];

  it.each(cases)('$name', async ({ values, expected }) => {
    const config = await setup('ledger-tamper');
    await produceRaw(config.kafka.topics.ledger, values);
    expect(await verifyLedger(kafka, config.kafka.topics.ledger)).toMatchObject(expected);
  });

  it('an invalid record; and the CLI exits 1 naming it', async () => {
    const config = await setup('ledger-tamper-invalid');
    const values = text(records.slice(0, 5));
    values[2] = JSON.stringify({ ...records[2], actor: 'root' });
    await produceRaw(config.kafka.topics.ledger, values);
    expect(await verifyLedger(kafka, config.kafka.topics.ledger)).toMatchObject({
      ok: false,
      seq: 3,
      offset: '2',
      reason: expect.stringMatching(/^invalid record: actor: expected service:<name>, user:<id> or playbook:<name>@<version>/),
    });
    const cli = await cordon(config, 'audit', 'verify');
    expect(cli.exitCode).toBe(1);
    expect(cli.stdout).toMatch(/^FAILED at seq 3 \(offset 2\): invalid record: actor: /);
  });

  it('the writer refuses to continue a ledger whose last record is tampered with', async () => {
    const config = await setup('ledger-tamper-head');
    await produceRaw(config.kafka.topics.ledger, text(records.map((r) => (r.seq === 20 ? { ...r, reason: 'x' } : r))));
    await expect(open(config)).rejects.toThrow(/offset 19, seq 20\) does not match its hash/);
    expect(await redis.get(ledgerKeys(config.redis.keyPrefix).lock)).toBeNull(); // a failed open lets go of the lock
  });
});

describe('the quarantine registry, rebuilt from the ledger alone', () => {
  it('wipe Redis and rebuild: the registry equals what it was', async () => {
    const config = await setup('ledger-rebuild');
    const prefix = config.redis.keyPrefix;
    const ledger = await open(config);
    await appendAll(ledger, [...mixedEntries(8), ...quarantineHistory()]);
    const leases = await ledger.registry.all();
    await ledger.close();

    // What the history leaves (fixtures.ts).
    const byTarget = Object.fromEntries(leases.map((l) => [l.target, l]));
    expect(Object.keys(byTarget)).toEqual(['pod:a', 'pod:b', 'pod:c', 'pod:d', 'pod:e', 'pod:f']);
    expect(byTarget['pod:a']).toMatchObject({ state: 'applied', holders: ['inc-2'], expiresAt: T0 + 30 * 60_000 });
    expect(byTarget['pod:b']).toMatchObject({ state: 'applied', holders: ['inc-3'], expiresAt: T0 + 120 * 60_000 });
    expect(byTarget['pod:c']).toMatchObject({ state: 'released', holders: [] });
    expect(byTarget['pod:d']).toMatchObject({ state: 'expired' });
    expect(byTarget['pod:e']).toMatchObject({ state: 'failed' });
    expect(byTarget['pod:f']).toMatchObject({ state: 'pending', holders: ['inc-7'] });
    const before = await registrySnapshot(prefix);
    // Who ever held what, applied: a pending lease (pod:f) or one that failed (pod:e) holds nobody.
    expect(Object.keys(before.held)).toEqual(expect.arrayContaining(['inc-2 pod:a', 'inc-3 pod:b']));
    expect(Object.keys(before.held).filter((f) => /pod:[ef]$/.test(f))).toEqual([]);
    expect(before.byExpiry).toEqual(['pod:f', String(T0 + 10 * 60_000), 'pod:a', String(T0 + 30 * 60_000), 'pod:b', String(T0 + 120 * 60_000)]);

    expect(await wipe(prefix)).toBeGreaterThanOrEqual(4);
    expect(await registrySnapshot(prefix)).toEqual({ leases: {}, byExpiry: [], held: {}, head: null });

    const rebuilt = await cordon(config, 'audit', 'rebuild', '--no-record', '--json');
    expect(rebuilt.exitCode).toBe(0);
    expect(JSON.parse(rebuilt.stdout)).toMatchObject({
      records: 24,
      leases: 6,
      byState: { pending: 1, applied: 2, failed: 1, released: 1, expired: 1 },
      reschedule: 2,
      unresolved: 1,
      head: { seq: 24 },
    });
    expect(await registrySnapshot(prefix)).toEqual(before);

    // The service's own start after a wipe: the same registry, and the expiries to re-schedule.
    await wipe(prefix);
    const restarted = await open(config);
    try {
      expect(await registrySnapshot(prefix)).toEqual(before);
      if (restarted.startup.registry !== 'rebuilt') throw new Error(`expected a rebuild, got ${restarted.startup.registry}`);
      expect(restarted.startup.rebuild.reschedule.map((l) => [l.target, l.expiresAt, l.ledgerSeq])).toEqual([
        ['pod:a', byTarget['pod:a']!.expiresAt, byTarget['pod:a']!.ledgerSeq],
        ['pod:b', byTarget['pod:b']!.expiresAt, byTarget['pod:b']!.ledgerSeq],
      ]);
      expect(restarted.startup.rebuild.unresolved.map((l) => l.target)).toEqual(['pod:f']);
      expect(await restarted.registry.dueBy(T0 + 30 * 60_000)).toEqual([byTarget['pod:f'], byTarget['pod:a']]);
    } finally {
      await restarted.close();
    }

    // Rebuilding is itself recorded, unless told not to.
    const recorded = await cordon(config, 'audit', 'rebuild', '--actor', 'user:oncall', '--json');
    expect(JSON.parse(recorded.stdout)).toMatchObject({ records: 24, recordedSeq: 25 });
    const lines: string[] = [];
    await exportLedger(kafka, config.kafka.topics.ledger, (l) => void lines.push(l));
    expect(JSON.parse(lines[24]!)).toMatchObject({ seq: 25, action: 'rebuild', actor: 'user:oncall', after: { leases: 6, reschedule: 2 } });
    expect(verify(lines)).toMatchObject({ ok: true, count: 25 });
    expect((await registrySnapshot(prefix)).leases).toEqual(before.leases);
  });

  it('a registry that lags the ledger catches up at start', async () => {
    const config = await setup('ledger-catchup');
    const keys = ledgerKeys(config.redis.keyPrefix);
    const ledger = await open(config);
    const history = quarantineHistory();
    await appendAll(ledger, history.slice(0, 8));
    const lagging = await redis.get(keys.head);
    const leasesThen = await redis.hgetall(keys.leases);
    await appendAll(ledger, history.slice(8));
    await ledger.close();
    const complete = await registrySnapshot(config.redis.keyPrefix);

    // Redis as it was after record 8 (a crash between the Kafka ack and the Redis update, many times over).
    await redis.del(keys.leases, keys.byExpiry);
    await redis.hset(keys.leases, leasesThen);
    for (const [target, json] of Object.entries(leasesThen)) {
      const lease = JSON.parse(json);
      if (lease.state === 'applied' || lease.state === 'pending') await redis.zadd(keys.byExpiry, lease.expiresAt, target);
    }
    await redis.set(keys.head, lagging!);

    const reopened = await open(config);
    try {
      expect(reopened.startup).toEqual({ registry: 'caught-up', applied: history.length - 8 });
      expect(await registrySnapshot(config.redis.keyPrefix)).toEqual(complete);
      // The service's own rebuild, between appends, lands on the same registry.
      await redis.hdel(keys.leases, 'pod:a');
      expect(await reopened.rebuild()).toMatchObject({ records: history.length, leases: 6, reschedule: [{ target: 'pod:a' }, { target: 'pod:b' }] });
      expect(await registrySnapshot(config.redis.keyPrefix)).toEqual(complete);
      expect((await reopened.append(mixedEntries(2)[1]!)).seq).toBe(history.length + 1);
    } finally {
      await reopened.close();
    }
  });

  it('refuses a registry that is ahead of the ledger, and a rebuild of a broken ledger leaves the registry untouched', async () => {
    const config = await setup('ledger-diverged');
    const keys = ledgerKeys(config.redis.keyPrefix);
    const ledger = await open(config);
    await appendAll(ledger, quarantineHistory().slice(0, 4));
    await ledger.close();
    const head = JSON.parse((await redis.get(keys.head))!);
    await redis.set(keys.head, JSON.stringify({ ...head, seq: 9 }));
    await expect(open(config)).rejects.toThrow(LedgerStateError);
    await expect(open(config)).rejects.toThrow(/ahead of the ledger topic \(seq 4\)/);
    await redis.set(keys.head, JSON.stringify(head));

    const before = await registrySnapshot(config.redis.keyPrefix);
    const records = chain(quarantineHistory().slice(0, 6));
    await produceRaw(config.kafka.topics.ledger, [canonicalJson(records[5]!)]); // seq 6 after seq 4: seq 5 missing
    const refused = await cordon(config, 'audit', 'rebuild');
    expect(refused).toMatchObject({ stdout: '', exitCode: 1 });
    expect(refused.stderr).toMatch(/refused, the registry is left as it was: rebuild: ledger broken at seq 5 \(offset 7\): missing record \(gap from 4 to 6\)/);
    expect(await registrySnapshot(config.redis.keyPrefix)).toEqual(before);
  });
});
