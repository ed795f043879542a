import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Incident, IncidentEntity } from '../../src/correlate/incident';
import { parsePlaybook, type LoadedPlaybook } from '../../src/playbook/load';

/** A fresh temporary directory for fixture files. */
export function tmpDir(): string {
  return mkdtempSync(join(tmpdir(), 'cordon-playbook-'));
}

export function writeFixture(dir: string, name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/**
 * A valid auto playbook; line numbers are relied on by the tests:
 *  14 `  - id: contain`, 18 `    ttl: 1h`, 19 `safety:`.
 */
export const BASE = `apiVersion: cordon.io/v1
kind: Playbook
name: auto
description: test playbook
priority: 10
mode: auto
match:
  severity: high
steps:
  - id: tell
    type: notify
    channels: [splunk]
    message: hi {{ incident.id }}
  - id: contain
    type: quarantine
    target: root
    enforcer: nftables
    ttl: 1h
safety:
  protected_approval:
    approvers: [soc]
    deadline: 15m
`;

/** Parse a playbook text that must be valid. */
export function playbook(text: string, file = 'test.yaml'): LoadedPlaybook {
  const r = parsePlaybook(text, file);
  if (!r.ok) throw new Error(r.issues.map((i) => `${i.file}:${i.line}:${i.col}: ${i.path}: ${i.message}`).join('\n'));
  return r.playbook;
}

/** The issues of a playbook text that must be invalid, formatted as the CLI prints them. */
export function problems(text: string, file = 'bad.yaml'): string[] {
  const r = parsePlaybook(text, file);
  if (r.ok) throw new Error('expected the playbook to be refused');
  return r.issues.map((i) => `${i.file}:${i.line}:${i.col}: ${i.path}: ${i.message}`);
}

export function entity(key: string, over: Partial<IncidentEntity> = {}): IncidentEntity {
  const kind = key.slice(0, key.indexOf(':'));
  return { key, kind, role: 'unknown', roleSource: 'default', position: 'target', ...over };
}

const T0 = Date.UTC(2024, 4, 1, 12, 0, 0);

/** A synthetic incident in the engine's shape: root ws1 (workstation) -> ws2 (pivot) -> dc1 (domain controller). */
export function incident(over: Partial<Incident> = {}): Incident {
  const root = 'host:ws1.corp.local';
  return {
    id: 'inc-0123456789abcdef0123',
    status: 'open',
    severity: 'high',
    score: 30,
    confidence: 0.9,
    root,
    entities: [
      entity(root, { name: 'WS1', ip: '10.0.0.1', role: 'workstation', roleSource: 'inventory', position: 'root' }),
      entity('host:ws2.corp.local', { name: 'WS2', ip: '10.0.0.2', role: 'workstation', roleSource: 'inventory', position: 'pivot' }),
      entity('ip:10.0.9.5', { ip: '10.0.9.5', role: 'domain-controller', roleSource: 'observed' }),
    ],
    path: { nodes: [root, 'host:ws2.corp.local', 'ip:10.0.9.5'], edges: [], edgesDropped: 0 },
    techniques: ['T1021.002', 'T1570'],
    evidence: { items: [], total: 0, dropped: 0, byRule: {} },
    counters: { denied: 12, allowed: 0, anomalies: 0, entitiesDropped: 0 },
    windowStart: T0 - 600_000,
    firstSeen: T0 - 600_000,
    lastSeen: T0,
    version: 3,
    summary: 'WS1 attempted SMB against 2 hosts.',
    ...over,
  };
}

export const NOW = T0;
