import { formatDuration } from '../playbook/duration';
import { HARD_MAX_TTL_MS } from '../playbook/model';

/** One upper bound on extensions, and where it comes from (named in a refusal). */
export interface Bound {
  ms: number;
  source: string;
}

export interface ExtensionBounds {
  /** The longest one extension may ask, from now. */
  extension: Bound[];
  /** How long after its first apply a quarantine may be kept in place. */
  lifetime: Bound[];
}

export interface ExtensionAsk {
  ttlMs: number;
  /** The ttl as the person wrote it, for the message. */
  ttlText: string;
  now: number;
  /** When the quarantine was first applied. */
  since: number;
}

/** The bounds every quarantine has from the service config (the hard TTL limit is always checked). */
export function configBounds(contain: { maxExtensionMs: number; maxLifetimeMs: number }): ExtensionBounds {
  return {
    extension: [{ ms: contain.maxExtensionMs, source: 'contain.maxExtensionMs' }],
    lifetime: [{ ms: contain.maxLifetimeMs, source: 'contain.maxLifetimeMs' }],
  };
}

const lowest = (bounds: Bound[]): Bound | undefined => bounds.reduce<Bound | undefined>((low, b) => (low === undefined || b.ms < low.ms ? b : low), undefined);

/**
 * Why an extension is refused, or undefined when it is within every bound: the ttl is at most the
 * hard limit and the lowest extension bound, and now + ttl at most the first apply + the lowest
 * lifetime bound. The refusal names the hard limit, else the lowest bound broken.
 */
export function extensionRefusal(ask: ExtensionAsk, bounds: ExtensionBounds): string | undefined {
  if (ask.ttlMs > HARD_MAX_TTL_MS) return `body.ttl: ${ask.ttlText} is above the hard limit of a quarantine, ${formatDuration(HARD_MAX_TTL_MS)}`;
  const ext = lowest(bounds.extension);
  if (ext && ask.ttlMs > ext.ms) return `body.ttl: ${ask.ttlText} is longer than the longest extension, ${formatDuration(ext.ms)} (${ext.source})`;
  const life = lowest(bounds.lifetime);
  if (life && ask.now + ask.ttlMs > ask.since + life.ms) {
    const until = new Date(ask.since + life.ms).toISOString();
    return `body.ttl: ${ask.ttlText} would keep the quarantine past its longest lifetime, ${formatDuration(life.ms)} from its first apply at ${new Date(ask.since).toISOString()} (${life.source}): at most until ${until}`;
  }
  return undefined;
}

/** A quarantine step's own bounds (max_extension, max_lifetime), named by playbook and step. */
export function stepBounds(playbookId: string, step: { id: string; max_extension?: string | undefined; max_lifetime?: string | undefined }, ms: (d: string) => number): ExtensionBounds {
  const source = (field: string) => `playbook ${playbookId} step ${step.id} ${field}`;
  return {
    extension: step.max_extension ? [{ ms: ms(step.max_extension), source: source('max_extension') }] : [],
    lifetime: step.max_lifetime ? [{ ms: ms(step.max_lifetime), source: source('max_lifetime') }] : [],
  };
}

export function mergeBounds(...all: ExtensionBounds[]): ExtensionBounds {
  return { extension: all.flatMap((b) => b.extension), lifetime: all.flatMap((b) => b.lifetime) };
}
