import Redis from 'ioredis';
import { IncidentStore, type StoreItem } from '../../src/incidents/store';
import { REDIS_URL, uniq } from '../support/stack';

const item = (id: string, version: number, lastSeen: number, note = ''): StoreItem => ({
  kind: 'incident',
  id,
  version,
  lastSeen,
  json: JSON.stringify({ id, version, lastSeen, note }),
});

describe('the incident store in the real Redis', () => {
  let redis: Redis;
  let store: IncidentStore;
  let prefix: string;

  beforeAll(() => {
    redis = new Redis(REDIS_URL);
  });
  beforeEach(() => {
    prefix = uniq('store');
    store = new IncidentStore(redis, prefix);
  });
  afterEach(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
  });
  afterAll(() => redis.disconnect());

  it('keeps the newest version of each incident even when an older one is written after it', async () => {
    await store.putAll([item('inc-a', 3, 1000, 'three')]);
    await store.putAll([item('inc-a', 2, 900, 'two'), item('inc-b', 1, 2000)]);
    expect(await store.get('inc-a')).toMatchObject({ version: 3, note: 'three' });
    await store.putAll([item('inc-a', 4, 3000, 'four')]);
    expect(await store.get('inc-a')).toMatchObject({ version: 4, note: 'four' });
  });

  it('lists incidents newest activity first, and keeps policy gaps apart', async () => {
    await store.putAll([item('old', 1, 1000), item('new', 1, 5000), { kind: 'policy_gap', id: 'gap-1', json: JSON.stringify({ id: 'gap-1' }) }]);
    expect((await store.list()).map((i) => i.id)).toEqual(['new', 'old']);
    expect(await store.policyGaps()).toEqual([{ id: 'gap-1' }]);
    expect(await store.get('gap-1')).toBeUndefined();
  });
});
