import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import { freePort, OUTPUT_DIR, writeConfig } from '../../bench/support/cordon-process';
import { loadConfig, type Config } from '../../src/config';
import { CHANGE_HEADER } from '../../src/correlate/correlator';
import type { Incident } from '../../src/correlate/incident';
import { exportLedger } from '../../src/ledger/audit';
import type { LedgerRecord } from '../../src/ledger/records';
import { KAFKA_BROKERS, REDIS_URL, uniq } from '../support/stack';

/** Helpers for containment tests that run the real `cordon run` as a child process. */

/** A high-severity, high-confidence incident from `root` (an ip: entity) to one target. */
export function syntheticIncident(tag: string, over: Partial<Incident> = {}): Incident {
  const root = `ip:10.77.${tag.length}.${(hash(tag) % 250) + 1}`;
  const target = 'ip:10.77.200.1';
  const t = Date.now();
  return {
    id: `inc-${tag}`,
    status: 'open',
    severity: 'high',
    score: 40,
    confidence: 0.9,
    root,
    entities: [
      { key: root, kind: 'ip', ip: root.slice(3), role: 'unknown', roleSource: 'default', position: 'root' },
      { key: target, kind: 'ip', ip: target.slice(3), role: 'unknown', roleSource: 'default', position: 'target' },
    ],
    path: {
      nodes: [root, target],
      edges: [{ from: root, to: target, ports: [445], services: ['smb'], denied: 5, allowed: 0, anomalies: [], firstSeen: t - 1000, lastSeen: t }],
      edgesDropped: 0,
    },
    techniques: ['T1021'],
    evidence: { items: [], total: 0, dropped: 0, byRule: {} },
    counters: { denied: 5, allowed: 0, anomalies: 0, entitiesDropped: 0 },
    windowStart: t - 1000,
    firstSeen: t - 1000,
    lastSeen: t,
    version: 1,
    summary: `synthetic lateral movement ${tag}`,
    ...over,
  } as Incident;
}

function hash(text: string): number {
  let h = 7;
  for (const c of text) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h;
}

/** A playbook directory under test-output/ holding one playbook. */
export function playbookDir(name: string, yaml: string): string {
  const dir = join(OUTPUT_DIR, `${name}.playbooks`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.yaml`), yaml);
  return dir;
}

/** An auto playbook (labelstore enforcer) with the given steps. */
export function autoPlaybook(name: string, steps: string): string {
  return `apiVersion: cordon.io/v1
kind: Playbook
name: ${name}
description: crash-test playbook ${name}
priority: 100
mode: auto
match:
  severity: high
safety:
  protected_approval:
    approvers: [soc-oncall]
    deadline: 15m
steps:
${steps}`;
}

/**
 * A config file for a child `cordon run`: its own topics, groups, Redis prefix and HTTP port, the
 * labelstore enforcer, and a writer-lock wait long enough to outlive a SIGKILLed predecessor's lock.
 */
export async function childConfig(name: string, playbooks: string): Promise<{ file: string; config: Config; id: string }> {
  const id = uniq(name);
  const raw = {
    log: { level: 'info' },
    kafka: {
      brokers: KAFKA_BROKERS,
      clientId: id,
      partitions: 1,
      inputs: [{ topic: `${id}.flows`, format: 'auto' }],
      ...ownTopicsAndGroups(id),
    },
    redis: { url: REDIS_URL, keyPrefix: id },
    http: { port: await freePort() },
    contain: { playbooks, reconcileIntervalMs: 500, lockWaitMs: 60_000, enforcers: { labelstore: true } },
  };
  const file = writeConfig(id, raw);
  return { file, config: loadConfig({ file, env: {} }), id };
}

/** Every topic and consumer group the config knows (defaults included), named after `id`. */
export function ownTopicsAndGroups(id: string): { topics: Record<string, string>; groups: Record<string, string> } {
  const defaults = loadConfig({ env: {} }).kafka;
  return {
    topics: Object.fromEntries(Object.keys(defaults.topics).map((k) => [k, `${id}.${k}`])),
    groups: Object.fromEntries(Object.keys(defaults.groups).map((k) => [k, `${id}-${k}`])),
  };
}

export async function publishIncident(kafka: Kafka, config: Config, incident: Incident): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({
    topic: config.kafka.topics.incidents,
    messages: [{ key: incident.id, value: JSON.stringify(incident), headers: { [CHANGE_HEADER]: 'incident_opened' } }],
  });
  await producer.disconnect();
}

export async function ledgerRecords(kafka: Kafka, config: Config): Promise<LedgerRecord[]> {
  const lines: string[] = [];
  await exportLedger(kafka, config.kafka.topics.ledger, (l) => void lines.push(l));
  return lines.map((l) => JSON.parse(l) as LedgerRecord);
}

/** The lease state a quarantine record leaves, e.g. `quarantine_applied:applied`. */
export function leaseStep(r: LedgerRecord): string {
  return `${r.action}:${(r.after as { state?: string } | null)?.state ?? ''}`;
}
