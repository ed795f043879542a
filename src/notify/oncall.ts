import { LinkRefused, mintLinks, type LinkAuth } from '../approvals/links';
import type { Approval } from '../approvals/store';
import type { Incident } from '../correlate/incident';
import { jobIdPart } from '../playbook/plan';
import type { NotifyConfig } from './config';
import { approvalNotice } from './notice';
import type { Delivery } from './notifier';

/**
 * The deliveries an open approval gets: for each approver of the on-call rota (notify.oncall) who
 * is in one of the groups the approval asks, a notice with that approver's own signed approve and
 * deny links, on that approver's channel. `mint` makes the links and may refuse (undefined): links
 * exist only for a pending approval and for approvers of its groups.
 */
export type MintLinks = (approval: Approval, approver: { name: string; groups: readonly string[] }) => { approve: string; deny: string } | undefined;

export function oncallDeliveries(
  run: { incident: Incident; actor: string },
  approval: Approval,
  step: string,
  config: NotifyConfig,
  mint: MintLinks,
): Delivery[] {
  if (approval.state !== 'pending') return [];
  const out: Delivery[] = [];
  for (const entry of config.oncall) {
    if (!entry.groups.some((g) => approval.approvers.includes(g))) continue;
    const links = mint(approval, { name: entry.approver, groups: entry.groups });
    if (!links) continue;
    out.push({
      id: `${approval.id}.links.${approval.deadline}.${entry.channel}.${jobIdPart(entry.approver)}`,
      channel: entry.channel,
      notice: approvalNotice(run.incident, approval, step, { approver: entry.approver, ...links }),
      actor: run.actor,
      incidentId: approval.incidentId,
      target: approval.id,
      approvalId: approval.id,
    });
  }
  return out;
}

/**
 * Mints one-click links with `mintLinks` (src/approvals/links.ts), as `POST /api/approvals/:id/links`
 * does; an approval it refuses (no link secret, not pending, approver outside its groups) gets none.
 */
export function linkMinter(auth: LinkAuth, clock: () => number = Date.now): MintLinks {
  return (approval, approver) => {
    try {
      const { approve, deny } = mintLinks(approval.id, approval, approver, auth, clock());
      return { approve, deny };
    } catch (err) {
      if (err instanceof LinkRefused) return undefined;
      throw err;
    }
  };
}
