import Redis from 'ioredis';
import { changesChannel, IncidentStore, type StoreItem } from '../../src/incidents/store';
import { eventually, REDIS_URL, uniq } from '../support/stack';

/** What the store publishes on `<prefix>:changes` (docs/api.md, Live updates: `incident` `{ ids, count }`). */
const incident = (id: string): StoreItem => ({ kind: 'incident', id, version: 1, lastSeen: 1000, json: JSON.stringify({ id }) });

describe('incident changes announced in the real Redis', () => {
  const redis = new Redis(REDIS_URL);
  const subscriber = new Redis(REDIS_URL);
  const prefix = uniq('changes');
  const store = new IncidentStore(redis, prefix);
  const messages: unknown[] = [];

  beforeAll(async () => {
    await subscriber.subscribe(changesChannel(prefix));
    subscriber.on('message', (_channel, text: string) => messages.push(JSON.parse(text)));
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    subscriber.disconnect();
    redis.disconnect();
  });

  it('a batch of 150 incidents is one message naming the first 100 and counting all; policy gaps alone announce nothing', async () => {
    await store.putAll([{ kind: 'policy_gap', id: 'gap-1', json: '{"id":"gap-1"}' }]);
    const ids = Array.from({ length: 150 }, (_, i) => `inc-${i}`);
    await store.putAll(ids.map(incident));
    await eventually(async () => (messages.length > 0 ? true : undefined), 3_000, 'the change message');
    await new Promise((r) => setTimeout(r, 200));
    expect(messages).toEqual([{ ids: ids.slice(0, 100), count: 150 }]);
  });
});
