import { DEFAULT_PROTECTED } from '../playbook/model';
import { compileSelector, describeSelector, type EntityFacts, type EntitySelector } from '../playbook/selector';
import { EnforcerError, type ApplyRequest, type Target } from './enforcer';

/**
 * Protection on the live workload: before an enforcer changes anything, it checks the protected
 * selectors (the built-in ones, DEFAULT_PROTECTED, and the playbook's) against the workload as its
 * layer shows it now, and refuses a protected one unless a person approved it.
 *
 * Telemetry is hostile: a spoofed flow can name any pod, and the incident then knows nothing of its
 * labels. The layer's view (the pod's labels in the API server, the Illumio workload's labels) is
 * not written by telemetry. It is used here to add protection only: a target is protected when the
 * plan's facts or the live facts say so, and nothing the layer shows makes a target less protected.
 * A workload that labels itself protected does not escape containment either: it needs a person's
 * approval, as every protected target does.
 */

/** Label keys whose value names a workload's role (`cordon.io/role: domain-controller`). */
export const ROLE_LABEL_KEYS: readonly string[] = ['cordon.io/role'];

/** What a layer shows of a workload now. */
export interface LiveWorkload {
  name?: string;
  namespace?: string;
  labels: Readonly<Record<string, string>>;
  ip?: string;
  /** Roles the layer names besides the role labels (ROLE_LABEL_KEYS, checked always). */
  roles?: readonly string[];
}

/** The first protected selector the live workload matches, if any. */
export function protectingSelector(target: Target, live: LiveWorkload, playbook: readonly EntitySelector[] = []): EntitySelector | undefined {
  const base = liveFacts(target, live);
  const roles = liveRoles(live);
  for (const selector of [...DEFAULT_PROTECTED, ...playbook]) {
    const matches = compileSelector(selector);
    if (roles.some((role) => matches({ ...base, role }))) return selector;
  }
  return undefined;
}

/**
 * Throws `EnforcerError(…, false, 'protected')` when the live workload is protected and the request
 * carries no approval. `layer` names the enforcer in the message.
 */
export function guardProtected(layer: string, request: ApplyRequest, live: LiveWorkload): void {
  if (request.approvedBy !== undefined) return;
  const selector = protectingSelector(request.target, live, request.protected);
  if (!selector) return;
  throw new EnforcerError(
    `${layer}: ${request.target.entity} is protected as the layer shows it now (${describeSelector(selector)}): quarantining it needs a person's approval`,
    false,
    'protected',
  );
}

function liveFacts(target: Target, live: LiveWorkload): Omit<EntityFacts, 'role'> {
  const rest = target.entity.slice(target.entity.indexOf(':') + 1);
  const namespace = live.namespace ?? target.namespace;
  const id = namespace !== undefined && rest.startsWith(`${namespace}/`) ? rest.slice(namespace.length + 1) : rest;
  const name = live.name ?? target.name;
  const ip = live.ip ?? target.ip;
  return {
    key: target.entity,
    kind: target.kind,
    id,
    position: 'target',
    labels: live.labels,
    ...(name !== undefined && { name }),
    ...(namespace !== undefined && { namespace }),
    ...(ip !== undefined && { ip }),
  };
}

/** Every role the layer names; `unknown` when it names none (a selector without roles still applies). */
function liveRoles(live: LiveWorkload): string[] {
  const named = [...ROLE_LABEL_KEYS.map((k) => live.labels[k]), ...(live.roles ?? [])].filter((r): r is string => typeof r === 'string' && r !== '');
  return named.length > 0 ? [...new Set(named)] : ['unknown'];
}
