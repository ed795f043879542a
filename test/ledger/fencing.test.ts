import { Writable } from 'node:stream';
import Redis from 'ioredis';
import type { Kafka } from 'kafkajs';
import type { Config } from '../../src/config';
import { verifyLedger } from '../../src/ledger/audit';
import { Ledger } from '../../src/ledger/ledger';
import { LedgerLockLostError } from '../../src/ledger/lock';
import { readLedger } from '../../src/ledger/reader';
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
