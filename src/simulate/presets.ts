import { ScenarioConfig, type AttackSpec, type ScenarioConfigInput } from './config';

/**
 * Named scenarios:
 * - `small`: unit tests and the detection-quality check. ~50 hosts plus two small clusters,
 *   24 hours, ~20k records, 11 attacks covering every kind, pace, propagation and anomaly mix.
 * - `enterprise`: benchmarks. Thousands of entities, a steady background at a configurable rate
 *   (default 40 connections/s, ~60-70 records/s, ~6M records a day), 4 attacks of each kind.
 * - `quickstart`: the demo. Two hours, a few dozen entities, four fast attacks.
 * - `credentialed`: the small enterprise and its benign populations, with attackers that hold
 *   valid credentials and move over permitted flows only (WFP 5156, Zeek SF): no denial at all.
 */

export const PRESETS = ['small', 'enterprise', 'quickstart', 'credentialed'] as const;
export type PresetName = (typeof PRESETS)[number];

const SMALL_ATTACKS: AttackSpec[] = [
  { kind: 'smb', pace: 'fast', hops: 1, anomalies: false },
  { kind: 'wmi', pace: 'slow', hops: 1, anomalies: true },
  { kind: 'winrm', pace: 'fast', hops: 2, anomalies: true },
  { kind: 'kubelet', pace: 'fast', hops: 1, anomalies: false },
  { kind: 'rdp', pace: 'slow', hops: 1, anomalies: false },
  { kind: 'discovery', pace: 'fast', hops: 1, anomalies: false },
  { kind: 'etcd', pace: 'slow', hops: 1, anomalies: true },
  { kind: 'ssh', pace: 'fast', hops: 1, anomalies: false },
  { kind: 'dc', pace: 'slow', hops: 1, anomalies: false },
  { kind: 'pod_pivot', pace: 'fast', hops: 2, anomalies: false },
  { kind: 'smb', pace: 'slow', hops: 3, anomalies: true },
];

const CREDENTIALED_ATTACKS: AttackSpec[] = [
  { kind: 'smb', pace: 'fast', hops: 1, anomalies: false, access: 'credentialed' },
  { kind: 'wmi', pace: 'slow', hops: 1, anomalies: false, access: 'credentialed' },
  { kind: 'winrm', pace: 'fast', hops: 2, anomalies: false, access: 'credentialed' },
  { kind: 'rdp', pace: 'fast', hops: 1, anomalies: true, access: 'credentialed' },
  { kind: 'ssh', pace: 'fast', hops: 1, anomalies: false, access: 'credentialed' },
  { kind: 'dc', pace: 'fast', hops: 1, anomalies: false, access: 'credentialed' },
  { kind: 'ssh', pace: 'slow', hops: 2, anomalies: false, access: 'credentialed' },
  { kind: 'smb', pace: 'slow', hops: 3, anomalies: false, access: 'credentialed' },
];

const SMALL: ScenarioConfigInput = {
  name: 'small',
  duration: '24h',
  warmup: '2h',
  topology: { workstations: 24, servers: 9, domainControllers: 2, jumpHosts: 1, scanners: 1, monitors: 1, namespaces: 3, pods: 14 },
  background: {
    rate: 0.1,
    noisePerHour: 1.5,
    benignAnomaliesPerHour: 0.5,
    broadcastPerHostHour: 0.3,
    policyGapRetry: '10m',
    scannerSweepEvery: '8h',
    monitorEvery: '30m',
  },
  attacks: SMALL_ATTACKS,
};

const BASE: Record<PresetName, ScenarioConfigInput> = {
  small: SMALL,
  credentialed: { ...SMALL, name: 'credentialed', attacks: CREDENTIALED_ATTACKS },
  enterprise: {
    name: 'enterprise',
    duration: '24h',
    warmup: '2h',
    topology: { workstations: 3000, servers: 400, domainControllers: 6, jumpHosts: 4, scanners: 2, monitors: 2, namespaces: 40, pods: 1500 },
    background: {
      rate: 40,
      noisePerHour: 60,
      benignAnomaliesPerHour: 20,
      broadcastPerHostHour: 0.2,
      scannerSweepEvery: '6h',
      scannerTargets: 400,
      scannerPorts: 16,
      scannerProbeRate: 40,
      monitorTargets: 600,
    },
    attackCounts: { smb: 4, wmi: 4, winrm: 4, rdp: 4, ssh: 4, kubelet: 4, etcd: 4, pod_pivot: 4, discovery: 4, dc: 4 },
  },
  quickstart: {
    name: 'quickstart',
    duration: '2h',
    warmup: '15m',
    topology: { workstations: 12, servers: 4, domainControllers: 1, jumpHosts: 1, scanners: 1, monitors: 1, namespaces: 2, pods: 8 },
    background: { rate: 0.5, noisePerHour: 2, scannerSweepEvery: '1h', monitorEvery: '10m' },
    attacks: [
      { kind: 'smb', pace: 'fast', hops: 1, anomalies: true },
      { kind: 'winrm', pace: 'fast', hops: 2, anomalies: false },
      { kind: 'kubelet', pace: 'fast', hops: 1, anomalies: true },
      { kind: 'discovery', pace: 'fast', hops: 1, anomalies: false },
    ],
  },
};

/** A preset's config, with overrides merged in (objects deeply, lists replaced). */
export function presetConfig(name: PresetName, overrides: Record<string, unknown> = {}): ScenarioConfig {
  const base = BASE[name];
  if (!base) throw new Error(`unknown scenario preset "${name}" (known: ${PRESETS.join(', ')})`);
  return ScenarioConfig.parse(merge(base as Record<string, unknown>, overrides));
}

export function isPreset(name: string): name is PresetName {
  return (PRESETS as readonly string[]).includes(name);
}

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    if (k === '__proto__' || k === 'constructor' || k === 'prototype' || v === undefined) continue;
    const prev = out[k];
    out[k] = isObject(prev) && isObject(v) ? merge(prev, v) : v;
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
