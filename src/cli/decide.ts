import type { Command } from 'commander';
import { z } from 'zod';
import { duration, formatDuration } from '../playbook/duration';
import { ApiOptions, apiInput, callApi, expectBody, print, Reason, withApiOptions } from './api-client';
import { parseOptions } from './options';
import { paletteFor, type Terminal } from './terminal';

/** `cordon approve|deny ID`: a person's decision on a pending approval, through the on-call API. */

const ApproveOptions = ApiOptions.extend({ id: z.string().min(1).max(256), reason: Reason, ttl: duration().optional() });
const DenyOptions = ApiOptions.extend({ id: z.string().min(1).max(256), reason: Reason });

const Decided = z.object({
  id: z.string(),
  incidentId: z.string(),
  state: z.string(),
  decidedBy: z.string().optional(),
  reason: z.string().optional(),
  approvedTtlMs: z.number().optional(),
  targets: z.array(z.object({ key: z.string() })).default([]),
});
type Decided = z.infer<typeof Decided>;

export function registerDecide(program: Command, term: Terminal): void {
  withApiOptions(
    program
      .command('approve')
      .description('approve a pending approval (role approver, in one of its groups); the playbook run goes on')
      .argument('<id>', 'the approval id (GET /api/approvals, the console, or the notification)')
      .requiredOption('-r, --reason <text>', 'why: kept in the ledger with your token\'s name')
      .option('--ttl <duration>', 'keep the quarantine this long instead of the playbook\'s TTL (at most that), e.g. 30m'),
  ).action(async (id: string, raw) => {
    const opts = parseOptions('approve', ApproveOptions, { ...raw, ...apiInput(raw, term.env), id });
    const body = await callApi(opts, { command: 'approve', method: 'POST', path: `api/approvals/${encodeURIComponent(opts.id)}/approve`, body: { reason: opts.reason, ...(opts.ttl ? { ttl: opts.ttl } : {}) } });
    print(term, opts.json, body, (b) => describeDecision(term, expectBody('approve', Decided, b)));
  });

  withApiOptions(
    program
      .command('deny')
      .description('deny a pending approval (role approver, in one of its groups); a quarantine it would keep is released')
      .argument('<id>', 'the approval id')
      .requiredOption('-r, --reason <text>', 'why: kept in the ledger with your token\'s name'),
  ).action(async (id: string, raw) => {
    const opts = parseOptions('deny', DenyOptions, { ...raw, ...apiInput(raw, term.env), id });
    const body = await callApi(opts, { command: 'deny', method: 'POST', path: `api/approvals/${encodeURIComponent(opts.id)}/deny`, body: { reason: opts.reason } });
    print(term, opts.json, body, (b) => describeDecision(term, expectBody('deny', Decided, b)));
  });
}

function describeDecision(term: Terminal, a: Decided): string {
  const p = paletteFor(term);
  const state = a.state === 'approved' ? p.green(a.state) : a.state === 'denied' ? p.red(a.state) : p.yellow(a.state);
  const kept = a.approvedTtlMs ? `, quarantine kept for ${formatDuration(a.approvedTtlMs)}` : '';
  const targets = a.targets.length ? `\n  targets: ${a.targets.map((t) => t.key).join(', ')}` : '';
  return `${p.bold(a.id)} ${state} by ${a.decidedBy ?? '?'} (incident ${a.incidentId})${kept}\n  reason:  ${a.reason ?? ''}${targets}`;
}
