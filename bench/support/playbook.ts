import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatIssue, loadPlaybooks } from '../../src/playbook/load';
import { OUTPUT_DIR } from './cordon-process';

export interface RootQuarantine {
  name: string;
  description: string;
  enforcer: 'labelstore' | 'kubernetes';
  ttl: string;
}

/**
 * A benchmark's playbook: quarantine every incident's root at once, with limits no benchmark
 * reaches. Written under test-output/ and loaded once, so a playbook Cordon would refuse fails here.
 */
export function writeRootQuarantinePlaybook(id: string, p: RootQuarantine): string {
  mkdirSync(OUTPUT_DIR, { recursive: true });
  const file = join(OUTPUT_DIR, `${id}.playbook.yaml`);
  writeFileSync(
    file,
    [
      'apiVersion: cordon.io/v1',
      'kind: Playbook',
      `name: ${p.name}`,
      `description: ${p.description}`,
      'priority: 900',
      'mode: auto',
      'match: { severity: low }',
      'steps:',
      `  - { id: quarantine-root, type: quarantine, target: root, enforcer: ${p.enforcer}, ttl: ${p.ttl} }`,
      'safety:',
      '  protected_approval: { approvers: [soc-oncall], deadline: 15m }',
      '  max_concurrent_quarantines: 100000',
      '  circuit_breaker: { max_new_quarantines: 100000, per: 10m }',
      '',
    ].join('\n'),
  );
  const loaded = loadPlaybooks([file]);
  if (loaded.issues.length > 0) throw new Error(`${p.name} playbook refused:\n${loaded.issues.map(formatIssue).join('\n')}`);
  return file;
}
