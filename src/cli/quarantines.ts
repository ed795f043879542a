import type { Command } from 'commander';
import { z } from 'zod';
import { parseEntity } from '../contain/manual';
import { duration } from '../playbook/duration';
import { ApiError, ApiOptions, apiInput, callApi, expectBody, print, Reason, withApiOptions } from './api-client';
import { parseOptions } from './options';
import { paletteFor, type Terminal } from './terminal';

/** `cordon quarantine|extend|release ENTITY`: a responder starts or acts on a quarantine, through the on-call API. */

const Entity = z.string().min(1).max(317);
const ExtendOptions = ApiOptions.extend({ entity: Entity, ttl: duration('how long from now: --ttl, e.g. 2h'), reason: Reason });
const ReleaseOptions = ApiOptions.extend({ entity: Entity, reason: Reason });
/** An entity a person may quarantine: its key names a target (pod:ns/name, ip:<address>, ...), as the API checks it. */
const Quarantinable = Entity.superRefine((key, ctx) => {
  const target = parseEntity(key);
  if (typeof target === 'string') ctx.addIssue({ code: 'custom', message: target });
});
const QuarantineOptions = ApiOptions.extend({
  entity: Quarantinable,
  ttl: duration('how long: --ttl, e.g. 2h'),
  reason: Reason,
  enforcer: z.string().min(1).max(64).regex(/^[a-z][a-z0-9-]*$/, 'expected an enforcer name such as kubernetes').optional(),
});

const LeaseBody = z.object({
  target: z.string(),
  state: z.string(),
  expiresAt: z.number(),
  holders: z.array(z.string()).default([]),
  outcome: z.string().optional(),
});
type LeaseBody = z.infer<typeof LeaseBody>;

export function registerQuarantines(program: Command, term: Terminal): void {
  withApiOptions(
    program
      .command('quarantine')
      .description('quarantine an entity by hand now (role responder), for a TTL bounded like an extension; protected entities are refused')
      .argument('<entity>', 'the entity key, e.g. ip:10.0.0.5 or pod:prod/web-1')
      .requiredOption('--ttl <duration>', 'how long, e.g. 2h (at most contain.maxExtensionMs)')
      .requiredOption('-r, --reason <text>', 'why: kept in the ledger with your token\'s name')
      .option('--enforcer <name>', 'the enforcement layer (needed when more than one is configured)'),
  ).action(async (entity: string, raw) => {
    const opts = parseOptions('quarantine', QuarantineOptions, { ...raw, ...apiInput(raw, term.env), entity });
    const body = await callApi(opts, { command: 'quarantine', method: 'POST', path: 'api/quarantines', body: { entity: opts.entity, ttl: opts.ttl, reason: opts.reason, ...(opts.enforcer ? { enforcer: opts.enforcer } : {}) } });
    print(term, opts.json, body, (b) => describeLease(term, 'quarantined', expectBody('quarantine', LeaseBody, b)));
  });

  withApiOptions(
    program
      .command('extend')
      .description('extend a live quarantine to end TTL from now (role responder), within contain.maxExtensionMs, maxLifetimeMs and the playbook\'s bounds')
      .argument('<entity>', 'the quarantined entity key, e.g. ip:10.0.0.5 or pod:prod/web-1')
      .requiredOption('--ttl <duration>', 'how long from now, e.g. 2h')
      .requiredOption('-r, --reason <text>', 'why: kept in the ledger with your token\'s name'),
  ).action(async (entity: string, raw) => {
    const opts = parseOptions('extend', ExtendOptions, { ...raw, ...apiInput(raw, term.env), entity });
    const body = await callApi(opts, { command: 'extend', method: 'POST', path: `api/quarantines/${encodeURIComponent(opts.entity)}/extend`, body: { ttl: opts.ttl, reason: opts.reason } });
    print(term, opts.json, body, (b) => describeLease(term, 'extended', expectBody('extend', LeaseBody, b)));
  });

  withApiOptions(
    program
      .command('release')
      .description('release a quarantine now (role responder): the enforcer reverts it and the ledger records who and why')
      .argument('<entity>', 'the quarantined entity key')
      .requiredOption('-r, --reason <text>', 'why: kept in the ledger with your token\'s name'),
  ).action(async (entity: string, raw) => {
    const opts = parseOptions('release', ReleaseOptions, { ...raw, ...apiInput(raw, term.env), entity });
    const body = await callApi(opts, { command: 'release', method: 'POST', path: `api/quarantines/${encodeURIComponent(opts.entity)}/release`, body: { reason: opts.reason } });
    if (body === undefined) throw new ApiError(`cordon release: no quarantine on ${opts.entity}`);
    print(term, opts.json, body, (b) => describeLease(term, 'released', expectBody('release', LeaseBody, b)));
  });
}

export function describeLease(term: Terminal, verb: string, l: LeaseBody): string {
  const p = paletteFor(term);
  const live = l.state === 'applied' || l.state === 'pending';
  const state = live ? p.red(l.state) : p.green(l.state);
  const until = live ? `, until ${new Date(l.expiresAt).toISOString()}` : '';
  const outcome = l.outcome ? ` (${l.outcome})` : '';
  const holders = l.holders.length ? `\n  held by: ${l.holders.join(', ')}` : '';
  return `${verb} ${p.bold(l.target)}: ${state}${outcome}${until}${holders}`;
}
