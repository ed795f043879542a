/**
 * Fault injection for the crash tests: when CORDON_FAULT names a point, the process kills itself
 * with SIGKILL there, the first time it gets there (CORDON_FAULT_ONCE_FILE marks that it did, so
 * the restarted process runs on). Unset in production: a point is then one env lookup.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { EnforcerError, type ApplyRequest, type Capabilities, type Enforcer, type Observation, type Snapshot, type Target } from '../enforcer/enforcer';

/**
 * run-claimed: a playbook run is claimed for the incident, nothing recorded or queued yet.
 * run-recorded: the run's start is in the ledger, its first step not yet queued.
 * before-apply: the lease is pending in the ledger, the enforcer not yet called.
 * after-apply: the enforcer applied, the ledger does not say so yet.
 * before-release: a release is decided, the enforcer not yet called.
 * during-release: the enforcer reverted, the ledger does not say so yet.
 */
export type FaultPoint = 'run-claimed' | 'run-recorded' | 'before-apply' | 'after-apply' | 'before-release' | 'during-release';
export const FAULT_POINTS: readonly FaultPoint[] = ['run-claimed', 'run-recorded', 'before-apply', 'after-apply', 'before-release', 'during-release'];

export async function faultPoint(point: FaultPoint): Promise<void> {
  if (process.env.CORDON_FAULT !== point) return;
  const marker = process.env.CORDON_FAULT_ONCE_FILE;
  if (marker) {
    if (existsSync(marker)) return;
    writeFileSync(marker, point);
  }
  // CORDON_FAULT_SIGNAL=SIGSTOP pauses the process there instead (a stalled leader); it goes on once continued.
  if (process.env.CORDON_FAULT_SIGNAL === 'SIGSTOP') return void process.kill(process.pid, 'SIGSTOP');
  process.kill(process.pid, 'SIGKILL');
  await new Promise(() => {});
}

/**
 * CORDON_FAULT=flaky-enforcer: every enforcer fails every other call (apply, revert, observe) with
 * a retriable error, as a layer whose API drops half its requests would. For the fault table
 * (bench/faults.ts): containment must still apply each quarantine once and release it on time.
 */
export function withInjectedFaults(enforcers: Map<string, Enforcer>): Map<string, Enforcer> {
  if (process.env.CORDON_FAULT !== 'flaky-enforcer') return enforcers;
  return new Map([...enforcers].map(([name, e]) => [name, new FlakyEnforcer(e)]));
}

export class FlakyEnforcer implements Enforcer {
  private calls = 0;

  constructor(private readonly inner: Enforcer) {}

  get name(): string {
    return this.inner.name;
  }

  get capabilities(): Capabilities {
    return this.inner.capabilities;
  }

  apply(request: ApplyRequest): Promise<Snapshot> {
    return this.flaky('apply', () => this.inner.apply(request));
  }

  revert(snapshot: Snapshot, leaseId: string): Promise<void> {
    return this.flaky('revert', () => this.inner.revert(snapshot, leaseId));
  }

  observe(target: Target): Promise<Observation> {
    return this.flaky('observe', () => this.inner.observe(target));
  }

  extend(target: Target, expiresAt: number, leaseId: string): Promise<void> {
    return this.flaky('extend', async () => this.inner.extend?.(target, expiresAt, leaseId));
  }

  private async flaky<T>(call: string, work: () => Promise<T>): Promise<T> {
    if (this.calls++ % 2 === 0) throw new EnforcerError(`injected fault: ${this.inner.name} ${call} failed (CORDON_FAULT=flaky-enforcer)`, true, 'injected');
    return work();
  }
}
