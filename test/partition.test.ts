import { Partitioners } from 'kafkajs';
import { murmur2, partitionFor } from '../src/partition';

describe('partitionFor', () => {
  // The vectors of Kafka's own UtilsTest.testMurmur2 (Java client).
  it.each([
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107],
  ])('hashes %s as the Java client does', (key, hash) => {
    expect(murmur2(Buffer.from(key))).toBe(hash);
  });

  it('picks the partition kafkajs picks for the same key', () => {
    const kafkajs = Partitioners.DefaultPartitioner();
    const partitionMetadata = Array.from({ length: 6 }, (_, i) => ({ partitionId: i, leader: 0 }));
    for (const key of ['host:workstation5.theshire.local', 'pod:payments/api-7f9c', 'ip:10.0.0.1', 'ip:fe80::1']) {
      expect(partitionFor(key, 6)).toBe(kafkajs({ topic: 't', partitionMetadata, message: { key, value: null } } as never));
    }
  });
});
