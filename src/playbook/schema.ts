import { z } from 'zod';
import { PlaybookObject } from './model';

/**
 * The JSON Schema of playbook files, generated from the model (field descriptions included), for
 * editors: `cordon playbook schema > playbooks/playbook.schema.json`, referenced by the
 * `# yaml-language-server: $schema=./playbook.schema.json` line of each playbook. It describes the
 * shape of every field; the cross-field rules (modes, TTL limits, unique step ids) are checked
 * only by `cordon playbook validate`.
 */
export function playbookJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(PlaybookObject, { target: 'draft-07', io: 'input', unrepresentable: 'throw' });
  const { $schema, ...rest } = schema;
  return { $schema, $id: 'https://cordon.io/schemas/playbook-v1.json', title: 'Cordon playbook (cordon.io/v1)', ...rest };
}
