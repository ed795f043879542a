import type { Approval } from '../approvals/store';
import type { Incident } from '../correlate/incident';

/**
 * What one notification says, before any channel formats it. Names in it come from telemetry and
 * are hostile: each channel escapes them for its own markup (Slack mrkdwn, Teams Markdown); the
 * generic webhook sends them as JSON strings.
 */
export interface Notice {
  kind: 'incident' | 'approval';
  title: string;
  /** The step's rendered message, or the approval's question. */
  text: string;
  incident: {
    id: string;
    severity: string;
    score: number;
    confidence: number;
    techniques: string[];
    root: { key: string; name?: string; ip?: string };
  };
  playbook: string;
  step: string;
  approval?: {
    id: string;
    approvers: string[];
    /** ISO 8601. */
    deadline: string;
    /** The approver these links were minted for. */
    approver: string;
    approve: string;
    deny: string;
  };
}

/** Longest text a notice carries: well inside Slack's 3000-character section and Teams' 28 KB message. */
const MAX_TEXT = 2_000;

export function incidentNotice(incident: Incident, playbook: string, step: string, message: string): Notice {
  return {
    kind: 'incident',
    title: `Cordon: ${incident.severity} incident ${incident.id}`,
    text: clip(message),
    incident: incidentPart(incident),
    playbook,
    step,
  };
}

export function approvalNotice(
  incident: Incident,
  approval: Pick<Approval, 'id' | 'playbookId' | 'question' | 'approvers' | 'deadline'>,
  step: string,
  links: { approver: string; approve: string; deny: string },
): Notice {
  return {
    kind: 'approval',
    title: `Cordon: approval needed for ${incident.severity} incident ${incident.id}`,
    text: clip(approval.question),
    incident: incidentPart(incident),
    playbook: approval.playbookId,
    step,
    approval: { id: approval.id, approvers: [...approval.approvers], deadline: new Date(approval.deadline).toISOString(), ...links },
  };
}

function incidentPart(incident: Incident): Notice['incident'] {
  const root = incident.entities.find((e) => e.key === incident.root);
  return {
    id: incident.id,
    severity: incident.severity,
    score: incident.score,
    confidence: incident.confidence,
    techniques: incident.techniques.slice(0, 20),
    root: { key: incident.root, ...(root?.name ? { name: root.name } : {}), ...(root?.ip ? { ip: root.ip } : {}) },
  };
}

function clip(text: string): string {
  return text.length <= MAX_TEXT ? text : `${text.slice(0, MAX_TEXT - 1)}…`;
}

/** The facts every channel shows under the text, as label and value (values are hostile). */
export function facts(n: Notice): [string, string][] {
  const root = n.incident.root;
  const out: [string, string][] = [
    ['Severity', n.incident.severity],
    ['Score', String(n.incident.score)],
    ['Confidence', String(n.incident.confidence)],
    ['Root', root.name ? `${root.name}${root.ip ? ` (${root.ip})` : ''}` : (root.ip ?? root.key)],
    ['Techniques', n.incident.techniques.join(', ') || 'none'],
    ['Playbook', n.playbook],
  ];
  if (n.approval) out.push(['Approvers', n.approval.approvers.join(', ')], ['Deadline', n.approval.deadline], ['Links for', n.approval.approver]);
  return out;
}
