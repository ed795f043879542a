import { subjectKey } from '../events';
import { partitionFor } from '../partition';
import type { Admitted } from './intake';

/** A normalized event as the events topic carries it: keyed and partitioned by its subject entity. */
export interface EventRecord {
  key: string;
  partition: number;
  value: string;
}

export function eventRecord({ event }: Admitted, partitions: number): EventRecord {
  const key = subjectKey(event);
  return { key, partition: partitionFor(key, partitions), value: JSON.stringify(event) };
}
