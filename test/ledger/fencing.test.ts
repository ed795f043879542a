import { Writable } from 'node:stream';
import Redis from 'ioredis';
import type { Kafka } from 'kafkajs';
import type { Config } from '../../src/config';
import { generateKeyPairSync } from 'node:crypto';
import { exportLedger, takeCheckpoint, verifyLedger } from '../../src/ledger/audit';
import { nextRecord, type ChainHead } from '../../src/ledger/chain';
import { canonicalJson } from '../../src/ledger/canonical';
import { fenceMarker, WRITER_HEADER } from '../../src/ledger/fence';
import { LedgerIndex } from '../../src/ledger/incident-index';
import { Ledger } from '../../src/ledger/ledger';
import { LedgerLockLostError } from '../../src/ledger/lock';
import { readLedger } from '../../src/ledger/reader';
import type { LedgerEntry } from '../../src/ledger/records';
import { ledgerKeys } from '../../src/ledger/registry';
import { createLogger, type Logger } from '../../src/logger';
import { createLedgerTopic, testKafka } from '../support/kafka';
import { REDIS_URL, testConfig, testLog } from '../support/stack';
import { mixedEntries } from './fixtures';

/**
 * The writer side of fencing (docs/high-availability.md): a writer that lost its lock logs every
 * late write it refuses (so a paused leader's attempts show), each record names its writer, and the
 * fencing epoch keeps growing when Redis loses its data (the counter is raised past the epoch the
 * ledger's last record was written with).
 */
let kafka: Kafka;
let redis: Redis;
const configs: Config[] = [];
const ledgers: Ledger[] = [];

beforeAll(() => {
  kafka = testKafka();
  redis = new Redis(REDIS_URL);
});

afterAll(async () => {
  for (const l of ledgers) await l.close().catch(() => undefined);
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: configs.map((c) => c.kafka.topics.ledger) }).catch(() => undefined);
  await admin.disconnect();
  for (const c of configs) await wipe(c.redis.keyPrefix);
  redis.disconnect();
});

async function setup(name: string): Promise<Config> {
  const config = testConfig(name);
  await createLedgerTopic(kafka, config);
  configs.push(config);
  return config;
}

async function open(config: Config, owner: string, log: Logger = testLog): Promise<Ledger> {
  const ledger = await Ledger.open({ kafka, redis, log, topic: config.kafka.topics.ledger, prefix: config.redis.keyPrefix, owner, lockTtlMs: 3_000 });
  ledgers.push(ledger);
  return ledger;
}

/** A logger whose JSON lines land in `lines`. */
function capturing(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { log: createLogger('warn', 'test', { destination }), lines };
}

async function writers(config: Config): Promise<Array<string | undefined>> {
  const out: Array<string | undefined> = [];
  for await (const m of readLedger(kafka, config.kafka.topics.ledger)) out.push(m.writer);
  return out;
}

/** What a writer paused between its lock check and its send puts on the topic when it resumes: its next record, with its token. */
async function lateWrite(config: Config, token: string, head: ChainHead, entry: LedgerEntry): Promise<void> {
  const record = nextRecord(head, entry, Date.now());
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic: config.kafka.topics.ledger, acks: -1, messages: [{ key: record.target, value: canonicalJson(record), headers: { [WRITER_HEADER]: token } }] });
  await producer.disconnect();
}

async function rawMessages(config: Config): Promise<Array<{ writer?: string; marker?: boolean; seq?: number }>> {
  const out: Array<{ writer?: string; marker?: boolean; seq?: number }> = [];
  for await (const m of readLedger(kafka, config.kafka.topics.ledger, { raw: true })) {
    out.push({ writer: m.writer, ...(m.marker ? { marker: true } : { seq: (JSON.parse(String(m.value)) as { seq: number }).seq }) });
  }
  return out;
}

async function wipe(prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}

const [first, second, third] = mixedEntries(3);

describe('ledger writer fencing', () => {
  it('logs each late append and enforcer call it refuses once a newer writer holds the lock; records name their writer', async () => {
    const config = await setup('fencing-late');
    const { log, lines } = capturing();
    const old = await open(config, 'paused', log);
    await old.append(first!);
    // Its lock lapses (paused past the TTL) and another writer takes over.
    await redis.del(ledgerKeys(config.redis.keyPrefix).lock);
    const next = await open(config, 'successor');

    await expect(old.append(second!)).rejects.toThrow(LedgerLockLostError);
    await expect(old.fence()).rejects.toThrow(LedgerLockLostError);
    await next.append(third!);

    const refused = lines.filter((l) => String(l.msg).startsWith('late write refused'));
    expect(refused.map((l) => l.write)).toEqual(['append', 'enforcer call']);
    expect(refused[0]).toMatchObject({ token: old.token, entries: [`${second!.action} ${second!.target}`] });
    expect(await writers(config)).toEqual([old.token, next.token]);
    expect(await verifyLedger(kafka, config.kafka.topics.ledger)).toMatchObject({ ok: true, count: 2 });
  }, 60_000);

  it('keeps the epoch growing when Redis loses its data: a new writer starts above the epoch of the last record', async () => {
    const config = await setup('fencing-epoch');
    const keys = ledgerKeys(config.redis.keyPrefix);
    await redis.set(keys.epoch, '41');
    const before = await open(config, 'before-the-loss');
    expect(before.epoch).toBe(42);
    await before.append(first!);
    await before.close();

    await wipe(config.redis.keyPrefix); // Redis lost everything: the counter would restart at 1
    const { log, lines } = capturing();
    const after = await open(config, 'after-the-loss', log);
    expect(after.epoch).toBe(43);
    expect(after.token).toBe('after-the-loss#43');
    expect(after.startup.registry).toBe('rebuilt');
    expect(lines.some((l) => String(l.msg).includes('raised past 42'))).toBe(true);
    await after.append(second!);
    await after.close();

    // A writer that finds the counter ahead of the ledger leaves it alone.
    const again = await open(config, 'next');
    expect(again.epoch).toBe(44);
    expect(await writers(config)).toEqual(['before-the-loss#42', 'after-the-loss#43']);
  }, 60_000);
});

describe('read-side fencing: late writes that reach the topic', () => {
  const entries = mixedEntries(6);

  it('skips a late write that lands after the new writer\'s fence marker: the new writer goes on, every reader and a later writer ignore it', async () => {
    const config = await setup('fencing-read');
    const old = await open(config, 'paused');
    const r1 = await old.append(entries[0]!);
    await redis.del(ledgerKeys(config.redis.keyPrefix).lock);
    const { log, lines } = capturing();
    const next = await open(config, 'successor', log);
    await lateWrite(config, old.token, old.head, entries[1]!);

    const r2 = await next.append(entries[2]!);
    expect(r2).toMatchObject({ seq: 2, prevHash: r1.hash });
    expect(lines.some((l) => String(l.msg).startsWith('1 fenced late write(s)'))).toBe(true);
    expect(await verifyLedger(kafka, config.kafka.topics.ledger)).toMatchObject({ ok: true, count: 2, head: r2.hash, fenced: 1 });
    expect(await rawMessages(config)).toEqual([
      { writer: old.token, marker: true },
      { writer: old.token, seq: 1 },
      { writer: next.token, marker: true },
      { writer: old.token, seq: 2 },
      { writer: next.token, seq: 2 },
    ]);

    // Another late write at the very end of the log: a writer opened later still continues from r2.
    await lateWrite(config, old.token, r2, entries[3]!);
    const exported: string[] = [];
    expect(await exportLedger(kafka, config.kafka.topics.ledger, (l) => void exported.push(l))).toBe(2);
    expect(exported).toEqual([canonicalJson(r1), canonicalJson(r2)]);
    const checkpoint = await takeCheckpoint(kafka, config.kafka.topics.ledger, generateKeyPairSync('ed25519').privateKey, []);
    expect(checkpoint).toMatchObject({ seq: 2, head: r2.hash, offset: '4' });
    await next.close();
    const later = await open(config, 'later');
    expect(later.head).toEqual({ seq: 2, hash: r2.hash });
    expect(later.startup.registry).toBe('in-sync');
    const r3 = await later.append(entries[4]!);
    expect(r3).toMatchObject({ seq: 3, prevHash: r2.hash });
    expect(await verifyLedger(kafka, config.kafka.topics.ledger)).toMatchObject({ ok: true, count: 3, fenced: 2 });
    expect(await writers(config)).toEqual([old.token, next.token, later.token]);

    // Redis lost: the registry rebuilt from the log replays the three records, not the late writes.
    await later.close();
    await wipe(config.redis.keyPrefix);
    const rebuilt = await open(config, 'rebuilt');
    expect(rebuilt.startup).toMatchObject({ registry: 'rebuilt', rebuild: { records: 3 } });
    expect(rebuilt.head).toEqual({ seq: 3, hash: r3.hash });
    await rebuilt.close();
  }, 90_000);

  it('continues the chain from a late write that landed before the new writer\'s marker, as if it came just before the lease ended', async () => {
    const config = await setup('fencing-adopt');
    const old = await open(config, 'paused');
    await old.append(entries[0]!);
    await redis.del(ledgerKeys(config.redis.keyPrefix).lock);
    await lateWrite(config, old.token, old.head, entries[1]!);
    const next = await open(config, 'successor');
    expect(next.head.seq).toBe(2);
    expect(next.startup).toMatchObject({ registry: 'caught-up', applied: 1 });
    const adopted = next.head;
    const r3 = await next.append(entries[2]!);
    expect(r3).toMatchObject({ seq: 3, prevHash: adopted.hash });
    expect(await verifyLedger(kafka, config.kafka.topics.ledger)).toEqual({ ok: true, count: 3, head: r3.hash, seq: 3 });
  }, 60_000);

  it('stops a writer that finds a newer writer\'s message in the log: it is fenced, and logs the refused append', async () => {
    const config = await setup('fencing-newer');
    const { log, lines } = capturing();
    const writer = await open(config, 'unaware', log);
    await writer.append(entries[0]!);
    const newer = fenceMarker(`elsewhere#${writer.epoch + 1}`, Date.now());
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: config.kafka.topics.ledger, acks: -1, messages: [newer] });
    await producer.disconnect();

    await expect(writer.append(entries[1]!)).rejects.toThrow(LedgerLockLostError);
    await expect(writer.append(entries[1]!)).rejects.toThrow(/newer ledger writer \(elsewhere#\d+\) wrote at offset 2/);
    expect(writer.unwritable).toMatch(/is fenced and stops appending/);
    expect(lines.filter((l) => String(l.msg).startsWith('late write refused')).map((l) => l.write)).toEqual(['append', 'append']);
    expect(await verifyLedger(kafka, config.kafka.topics.ledger)).toMatchObject({ ok: true, count: 1 });
  }, 60_000);

  it('leaves markers and fenced late writes out of the incident index, also after a restart from its stored position', async () => {
    const config = await setup('fencing-index');
    const old = await open(config, 'paused');
    const incident = (n: number): LedgerEntry => ({ actor: 'service:cordon', action: 'incident_raised', target: `pod:x-${n}`, reason: `raised ${n}`, incidentId: 'inc-fenced' }) as LedgerEntry;
    await old.append(incident(1));
    await redis.del(ledgerKeys(config.redis.keyPrefix).lock);
    const next = await open(config, 'successor');
    await next.append(incident(2));
    const index = new LedgerIndex({ kafka, redis, topic: config.kafka.topics.ledger, prefix: config.redis.keyPrefix, log: testLog });
    await index.start();
    await eventually(async () => (await index.forIncident('inc-fenced')).length === 2);
    await index.stop();

    await lateWrite(config, old.token, old.head, incident(3));
    await next.append(incident(4));
    const again = new LedgerIndex({ kafka, redis, topic: config.kafka.topics.ledger, prefix: config.redis.keyPrefix, log: testLog });
    await again.start();
    try {
      await eventually(async () => (await again.forIncident('inc-fenced')).length >= 3);
      await new Promise((r) => setTimeout(r, 500));
      expect((await again.forIncident('inc-fenced')).map((r) => r.reason)).toEqual(['raised 1', 'raised 2', 'raised 4']);
    } finally {
      await again.stop();
    }
  }, 60_000);
});

async function eventually(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}
