import { generateKeyPairSync } from 'node:crypto';
import { loadConfig, type Config } from '../../src/config';
import { signCheckpoint, type Checkpoint } from '../../src/ledger/checkpoint';
import { ElasticsearchCheckpointStore, SplunkCheckpointStore, checkpointStoreFrom, type CheckpointStore } from '../../src/ledger/checkpoint-stores';
import { createEsClient } from '../../src/siem/es-client';
import { SplunkContractServer } from '../contract/splunk-server';
import { ES_URL, testLog, uniq } from '../support/stack';

/** The Elasticsearch store against the real cluster, the Splunk store against the Splunk contract server. */

const { privateKey } = generateKeyPairSync('ed25519');
const HEC_TOKEN = '6d0f3c1e-2b4a-4f1d-9e8c-7a6b5c4d3e2f';
const SEARCH_TOKEN = 'cordon-checkpoint-reader';

function checkpoint(topic: string, seq: number, at: number): Checkpoint {
  return signCheckpoint({ topic, partition: 0, offset: String(seq - 1), seq, head: seq.toString(16).padStart(64, '0'), at }, privateKey);
}

function config(overrides: Record<string, unknown>): Config {
  return loadConfig({ env: {}, overrides: { log: { level: 'silent' }, ...overrides } });
}

describe('Elasticsearch checkpoint store', () => {
  const index = uniq('cordon-cp-test');
  const es = createEsClient({ node: ES_URL });
  let store: CheckpointStore;

  beforeAll(() => {
    store = checkpointStoreFrom(
      { kind: 'elasticsearch', index },
      config({ elasticsearch: { url: ES_URL }, ledger: { checkpoint: { privateKeyFile: '/k', store: { kind: 'elasticsearch', index } } } }),
      testLog,
    );
  });

  afterAll(async () => {
    await store.close?.();
    await es.indices.delete({ index }).catch(() => undefined);
    await es.close();
  });

  it('keeps checkpoints in a dedicated index with a strict mapping, readable at once, in seq order', async () => {
    expect(store).toBeInstanceOf(ElasticsearchCheckpointStore);
    expect(await store.list()).toEqual([]);
    const written = [checkpoint('t.ledger', 7, 2000), checkpoint('t.ledger', 3, 1000), checkpoint('u.ledger', 5, 1500)];
    for (const c of written) await store.append(c);
    await store.append(written[0]!); // the same checkpoint again is the same document
    expect(await store.list()).toEqual([written[1], written[2], written[0]]);
    const mapping = await es.indices.getMapping({ index });
    expect(mapping[index]!.mappings.dynamic).toBe('strict');
    await expect(es.index({ index, document: { topic: 'x', extra: 1 } })).rejects.toThrow(/strict_dynamic_mapping_exception/);
  });

  it('names a document that is not a checkpoint (the index is input like any other)', async () => {
    await es.index({ index, id: 'forged', document: { topic: 't.ledger', partition: 0, offset: '1', seq: 2, head: 'zz', at: 1, sig: 'AAAA' }, refresh: 'wait_for' });
    await expect(store.list()).rejects.toThrow(`elasticsearch index ${index} document forged: not a checkpoint: head: `);
    await es.delete({ index, id: 'forged', refresh: 'wait_for' });
  });
});

describe('Splunk checkpoint store', () => {
  let splunk: SplunkContractServer;

  beforeAll(async () => {
    splunk = await SplunkContractServer.start({ hecTokens: [{ token: HEC_TOKEN, indexes: ['audit'] }], authTokens: [SEARCH_TOKEN] });
  });
  afterAll(async () => {
    await splunk.close();
  });

  function splunkStore(index = 'audit'): CheckpointStore {
    const c = config({
      splunk: { hecUrl: splunk.url, token: HEC_TOKEN, index, search: { url: splunk.url, token: SEARCH_TOKEN } },
      ledger: { checkpoint: { privateKeyFile: '/k', store: { kind: 'splunk' } } },
    });
    return checkpointStoreFrom(c.ledger.checkpoint!.store, c, testLog);
  }

  it('sends each checkpoint as one HEC event and reads them back with a oneshot search', async () => {
    const store = splunkStore();
    try {
      const a = checkpoint('t.ledger', 4, 1_700_000_000_000);
      const b = checkpoint('t.ledger', 9, 1_700_000_060_000);
      await store.append(a);
      await store.append(b);
      expect(splunk.indexed.map((e) => ({ index: e.index, sourcetype: e.sourcetype, time: e.time, event: e.event }))).toEqual([
        { index: 'audit', sourcetype: 'cordon:ledger:checkpoint', time: 1_700_000_000, event: a },
        { index: 'audit', sourcetype: 'cordon:ledger:checkpoint', time: 1_700_000_060, event: b },
      ]);
      // Splunk returns the newest first; verify does not depend on the order.
      expect(await store.list()).toEqual([b, a]);
      expect(splunk.searches.at(-1)).toBe((store as SplunkCheckpointStore).query);
      expect((store as SplunkCheckpointStore).query).toBe('search index="audit" sourcetype="cordon:ledger:checkpoint" earliest=0 | table _raw');
    } finally {
      await store.close?.();
    }
  });

  it('an append Splunk refuses throws with Splunk\'s reason', async () => {
    const store = splunkStore('elsewhere');
    try {
      await expect(store.append(checkpoint('t.ledger', 10, 1_700_000_120_000))).rejects.toThrow(
        'splunk index elsewhere sourcetype cordon:ledger:checkpoint: Splunk refused the checkpoint at seq 10: Incorrect index',
      );
    } finally {
      await store.close?.();
    }
  });

  it('needs a HEC token to write and search credentials to read back', () => {
    const base = { ledger: { checkpoint: { privateKeyFile: '/k', store: { kind: 'splunk' } } } };
    const noToken = config({ ...base, splunk: { search: { token: SEARCH_TOKEN } } });
    expect(() => checkpointStoreFrom(noToken.ledger.checkpoint!.store, noToken, testLog)).toThrow('splunk.token (the HEC token) is required');
    const noSearch = config({ ...base, splunk: { token: HEC_TOKEN } });
    expect(() => checkpointStoreFrom(noSearch.ledger.checkpoint!.store, noSearch, testLog)).toThrow(
      'reading checkpoints back needs splunk.search.token or splunk.search.username and password',
    );
  });
});
