import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Service } from '../src/service';
import { eventually, testConfig, testLog } from './support/stack';

describe('the service as a whole', () => {
  it('a stage that fails to start stops the stages already started and says why', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cordon-bad-playbooks-'));
    writeFileSync(join(dir, 'broken.yaml'), 'apiVersion: cordon.io/v1\nkind: Playbook\nname: broken\nsteps: 12\n');
    const service = new Service(testConfig('badstart', { contain: { playbooks: dir, enforcers: { labelstore: true } } }), testLog);
    await expect(service.start()).rejects.toThrow(/playbooks refused:[\s\S]*broken\.yaml/);
    await eventually(async () => (service.redis.status === 'end' ? true : undefined), 5_000, 'the Redis connection closed');
  });
});
