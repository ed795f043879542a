import { loadConfig } from '../src/config';

/**
 * Topic and consumer-group names that belong to one run alone: every topic and group the config
 * knows (today's and any added later) gets the run's prefix, so no run shares a default-named
 * topic (such as `cordon.lifecycle`) with other work on the same broker.
 */
export function isolatedKafka(run: string): { topics: Record<string, string>; groups: Record<string, string> } {
  const defaults = loadConfig({ env: {} }).kafka;
  return {
    topics: Object.fromEntries(Object.keys(defaults.topics).map((k) => [k, `${run}.${k}`])),
    groups: Object.fromEntries(Object.keys(defaults.groups).map((k) => [k, `${run}-${k}`])),
  };
}
