import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import type { Config } from '../../src/config';
import { exportLedger } from '../../src/ledger/audit';
import type { LedgerRecord } from '../../src/ledger/records';
import { Service } from '../../src/service';
import { NotifyWebhookReceiver } from '../contract/notify-webhook-server';
import { SlackWebhookServer, render as renderSlack } from '../contract/slack-server';
import { SplunkContractServer } from '../contract/splunk-server';
import { TeamsWebhookServer, render as renderTeams } from '../contract/teams-server';
import { createTopics, deleteTopics, testKafka } from '../support/kafka';
import { eventually, testConfig, testLog } from '../support/stack';
import { publishIncident, syntheticIncident } from './support';

/** The root's name, as telemetry reported it: SPL, Slack and Markdown syntax. */
const HOSTILE = 'ws9" | ] <!channel> *x* [c](https://evil.example/)';
const HEC_TOKEN = '0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0';
const SEARCH_TOKEN = 'enrich-search-token';
const SLACK_HOOK = '/services/T0/B0/e2e';
const TEAMS_HOOK = '/webhookb2/e2e/IncomingWebhook/x/y';
const SECRET = 'e2e-notify-secret-0123456789abcdef012345';
const LINK_SECRET = 'e2e-link-secret-0123456789abcdef0123456';

const ASKING = `apiVersion: cordon.io/v1
kind: Playbook
name: ask-then-contain
description: ask soc-oncall, then security-leads, before quarantining the root
priority: 100
mode: approve-then-contain
match:
  severity: high
steps:
  - id: ask
    type: approve
    approvers: [soc-oncall]
    deadline: 3s
    on_timeout: escalate
    escalate_to: [security-leads]
  - id: quarantine-root
    type: quarantine
    target: root
    enforcer: labelstore
    ttl: 1h
`;

const PLAYBOOK = `apiVersion: cordon.io/v1
kind: Playbook
name: tell-look-contain
description: notify four channels, search Splunk for the root, quarantine it
priority: 100
mode: auto
match:
  severity: high
safety:
  protected_approval:
    approvers: [soc-oncall]
    deadline: 15m
steps:
  - id: tell
    type: notify
    channels: [splunk, soc-slack, soc-teams, pager]
    message: Quarantining {{ root.name }} ({{ incident.id }})
  - id: look
    type: enrich
    source: splunk
    query: search index=fw src={{ root.name }} | stats count by dest_port | sort dest_port
  - id: quarantine-root
    type: quarantine
    target: root
    enforcer: labelstore
    ttl: 1h
`;

describe('notify and enrich steps in a run (real Kafka, Redis, BullMQ; Slack, Teams, webhook and Splunk contract servers)', () => {
  let kafka: Kafka;
  let splunk: SplunkContractServer;
  let slack: SlackWebhookServer;
  let teams: TeamsWebhookServer;
  let pager: NotifyWebhookReceiver;
  const services: Service[] = [];
  const configs: Config[] = [];

  beforeAll(async () => {
    kafka = testKafka();
    splunk = await SplunkContractServer.start({ hecTokens: [{ token: HEC_TOKEN, indexes: ['fw'], defaultIndex: 'fw' }], authTokens: [SEARCH_TOKEN] });
    slack = await SlackWebhookServer.start({ hooks: [SLACK_HOOK] });
    teams = await TeamsWebhookServer.start({ hooks: [TEAMS_HOOK] });
    pager = await NotifyWebhookReceiver.start({ secret: SECRET });
    const now = Date.now() / 1000;
    const fw = (src: string, port: number) => JSON.stringify({ time: now - 60, sourcetype: 'pan:traffic', event: { src, dest: '10.9.0.1', dest_port: port } });
    // the hostile root's traffic, and a host whose name is where an unquoted value would stop
    const body = [fw(HOSTILE, 445), fw(HOSTILE, 445), fw(HOSTILE, 3389), fw(HOSTILE, 22), fw('ws9', 80)].join('');
    const res = await fetch(`${splunk.url}/services/collector/event`, { method: 'POST', headers: { Authorization: `Splunk ${HEC_TOKEN}` }, body });
    expect(res.status).toBe(200);
  });
  afterAll(async () => {
    for (const s of services) await s.stop();
    for (const c of configs) await deleteTopics(kafka, c);
    await Promise.all([splunk.close(), slack.close(), teams.close(), pager.close()]);
  });

  async function start(name: string, search: Record<string, unknown> = {}, contain: Record<string, unknown> = {}, more: { playbook?: string; oncall?: unknown[] } = {}) {
    while (services.length > 0) await services.pop()!.stop();
    const dir = mkdtempSync(join(tmpdir(), 'cordon-playbooks-'));
    writeFileSync(join(dir, 'playbook.yaml'), more.playbook ?? PLAYBOOK);
    const config = testConfig(name, {
      contain: { playbooks: dir, reconcileIntervalMs: 500, enforcers: { labelstore: true }, ...contain },
      splunk: { search: { enabled: true, url: splunk.url, token: SEARCH_TOKEN, limit: 2, ...search } },
      notify: {
        channels: {
          'soc-slack': { type: 'slack', url: slack.url(SLACK_HOOK) },
          'soc-teams': { type: 'teams', url: teams.url(TEAMS_HOOK) },
          pager: { type: 'webhook', url: pager.url, secret: SECRET },
        },
        retry: { attempts: 4, initialMs: 100, maxMs: 10_000 },
        oncall: more.oncall ?? [],
      },
      auth: { linkSecret: LINK_SECRET },
    });
    configs.push(config);
    await createTopics(kafka, config);
    const service = new Service(config, testLog);
    services.push(service);
    await service.start();
    return { config, service };
  }

  async function ledgerOf(config: Config): Promise<LedgerRecord[]> {
    const lines: string[] = [];
    await exportLedger(kafka, config.kafka.topics.ledger, (l) => void lines.push(l));
    return lines.map((l) => JSON.parse(l) as LedgerRecord);
  }
  const after = (r: LedgerRecord) => (r.after ?? {}) as Record<string, unknown>;
  const hostileIncident = (tag: string) => {
    const base = syntheticIncident(tag);
    const root = base.entities[0]!;
    return { ...base, entities: [{ ...root, kind: 'host', name: HOSTILE }, base.entities[1]!] };
  };

  it('delivers to Slack, Teams and the webhook (a 429 retried after Retry-After), and attaches the escaped search result', async () => {
    const { config } = await start('notify-enrich');
    slack.rateLimit(1, 1);
    const incident = hostileIncident('e2e-deliver');
    await publishIncident(kafka, config, incident);
    const records = await eventually(
      async () => {
        const all = await ledgerOf(config);
        const done = all.filter((r) => after(r).delivery !== undefined).length === 3 && all.some((r) => after(r).step === 'look');
        return done ? all : undefined;
      },
      30_000,
      'three deliveries and the enrich record',
    );
    const deliveries = Object.fromEntries(records.filter((r) => after(r).delivery !== undefined).map((r) => [after(r).channel, after(r)]));
    expect(deliveries['soc-slack']).toMatchObject({ outcome: 'delivered', attempts: 2, channelType: 'slack' });
    expect(deliveries['soc-teams']).toMatchObject({ outcome: 'delivered', attempts: 1, channelType: 'teams' });
    expect(deliveries.pager).toMatchObject({ outcome: 'delivered', attempts: 1, channelType: 'webhook' });
    const slackRequests = slack.requests.filter((r) => r.path === SLACK_HOOK);
    expect(slackRequests.map((r) => r.status)).toEqual([429, 200]);
    expect(slackRequests[1]!.at - slackRequests[0]!.at).toBeGreaterThanOrEqual(1_000);

    // what people see: the name as written, no mention, no link
    const seenSlack = renderSlack(slack.messages.at(-1)!.payload);
    expect(seenSlack.text).toContain(`Quarantining ${HOSTILE} (${incident.id})`);
    expect([seenSlack.mentions, seenSlack.links]).toEqual([[], []]);
    const seenTeams = renderTeams(teams.messages.at(-1)!.payload);
    expect(seenTeams.text).toContain(`Quarantining ${HOSTILE} (${incident.id})`);
    expect([seenTeams.links, seenTeams.formatted]).toEqual([[], []]);
    expect(pager.received.at(-1)).toMatchObject({ kind: 'incident', text: `Quarantining ${HOSTILE} (${incident.id})`, playbook: expect.stringMatching(/^tell-look-contain@/) });

    // the search ran with the name as one quoted value: only the hostile root's rows, at most search.limit
    const look = records.find((r) => r.action === 'playbook_step' && after(r).step === 'look')!;
    const query = 'search index=fw src="ws9\\" | ] <!channel> *x* [c](https://evil.example/)" | stats count by dest_port | sort dest_port';
    expect(splunk.searches).toContain(query);
    expect(after(look).search).toEqual({
      outcome: 'ok',
      source: 'splunk',
      query,
      rows: [
        { dest_port: '22', count: '1' },
        { dest_port: '445', count: '2' },
      ],
      truncated: true,
      searchedAt: expect.any(String),
    });
    expect(look.incidentId).toBe(incident.id);
    expect(look.reason).toContain('2 row(s) (truncated)');
  });

  it('a slow search does not hold containment up: the quarantine is applied first, the timeout is recorded', async () => {
    const { config } = await start('enrich-slow', { timeoutMs: 1_000 });
    splunk.delaySearches(4_000);
    try {
      const incident = hostileIncident('e2e-slow');
      await publishIncident(kafka, config, incident);
      const records = await eventually(async () => {
        const all = await ledgerOf(config);
        return all.some((r) => after(r).step === 'look') ? all : undefined;
      }, 30_000);
      const applied = records.find((r) => r.action === 'quarantine_applied' && r.incidentId === incident.id)!;
      const look = records.find((r) => after(r).step === 'look')!;
      expect(applied.seq).toBeLessThan(look.seq);
      expect(look.at - applied.at).toBeGreaterThanOrEqual(500);
      expect(after(look).search).toMatchObject({ outcome: 'failed', status: null, error: 'Splunk search gave no result within 1000 ms' });
      expect(look.reason).toContain('search failed: Splunk search gave no result within 1000 ms');
    } finally {
      splunk.delaySearches(0);
    }
  });

  it('a dry run records the notify step and delivers nothing', async () => {
    const { config } = await start('notify-dry', {}, { dryRun: true });
    const before = { slack: slack.requests.length, teams: teams.requests.length, pager: pager.requests.length };
    const incident = hostileIncident('e2e-dry');
    await publishIncident(kafka, config, incident);
    await eventually(async () => ((await ledgerOf(config)).some((r) => after(r).step === 'look') ? true : undefined), 30_000);
    await new Promise((r) => setTimeout(r, 1_000));
    const records = await ledgerOf(config);
    expect(records.find((r) => after(r).step === 'tell')).toMatchObject({ after: { dryRun: true } });
    expect(records.filter((r) => after(r).delivery !== undefined)).toEqual([]);
    expect({ slack: slack.requests.length, teams: teams.requests.length, pager: pager.requests.length }).toEqual(before);
    expect(records.some((r) => r.action === 'dry_run')).toBe(true);
  });

  it('an approval sends each on-call approver of its groups their own signed links; the escalation too; a delivered link decides', async () => {
    const oncall = [
      { approver: 'alice', groups: ['soc-oncall'], channel: 'pager' },
      { approver: 'bob', groups: ['security-leads'], channel: 'soc-slack' },
      { approver: 'carol', groups: ['network-team'], channel: 'soc-teams' },
    ];
    const { config, service } = await start('notify-links', {}, {}, { playbook: ASKING, oncall });
    const url = `http://127.0.0.1:${(service.http.server.address() as { port: number }).port}`;
    const before = { slack: slack.messages.length, teams: teams.messages.length, pager: pager.received.length };
    const incident = hostileIncident('e2e-links');
    await publishIncident(kafka, config, incident);

    const alice = await eventually(async () => pager.received.slice(before.pager).find((m) => m.kind === 'approval'), 20_000, "alice's links");
    expect(alice.approval).toMatchObject({ approver: 'alice', approvers: ['soc-oncall'], approve: expect.stringMatching(/^http:\/\/127\.0\.0\.1:8080\/a\//) }); // auth.publicUrl
    expect(alice.text).toContain(HOSTILE);
    expect(slack.messages.length).toBe(before.slack);

    // silence for 3 s: the approval escalates to security-leads, and bob gets links on Slack
    const bobMessage = await eventually(async () => slack.messages[before.slack], 20_000, "bob's links");
    const bob = renderSlack(bobMessage.payload);
    expect(bob.mentions).toEqual([]);
    expect(bob.links.map((l) => l.label)).toEqual(['Approve', 'Deny']);
    expect(bob.text).toContain('Links for*\nbob');
    expect(teams.messages.length).toBe(before.teams); // carol is in neither group

    // bob's approve link decides the approval, and the quarantine follows
    const res = await fetch(`${url}${new URL(bob.links[0]!.url).pathname}`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ state: 'approved', decidedBy: 'user:bob' });
    await eventually(async () => ((await service.containment!.quarantines.registry.get(incident.root))?.state === 'applied' ? true : undefined), 20_000, 'applied');

    const records = await ledgerOf(config);
    const linkRecords = records.filter((r) => after(r).kind === 'approval');
    expect(linkRecords.map((r) => [after(r).approver, after(r).channel, after(r).outcome, r.approvalId])).toEqual([
      ['alice', 'pager', 'delivered', alice.approval!.id],
      ['bob', 'soc-slack', 'delivered', alice.approval!.id],
    ]);
  });

  it('on-call links need auth.linkSecret', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cordon-playbooks-'));
    writeFileSync(join(dir, 'playbook.yaml'), ASKING);
    const config = testConfig('notify-nosecret', {
      contain: { playbooks: dir, enforcers: { labelstore: true } },
      notify: { channels: { pager: { type: 'webhook', url: pager.url } }, oncall: [{ approver: 'alice', groups: ['soc-oncall'], channel: 'pager' }] },
    });
    configs.push(config);
    await createTopics(kafka, config);
    await expect(new Service(config, testLog).start()).rejects.toThrow('notify.oncall sends signed approve/deny links: set auth.linkSecret');
  });

  it('a playbook naming a channel the config does not have is refused at start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cordon-playbooks-'));
    writeFileSync(join(dir, 'playbook.yaml'), PLAYBOOK);
    const config = testConfig('notify-missing', { contain: { playbooks: dir, enforcers: { labelstore: true } } });
    configs.push(config);
    await createTopics(kafka, config);
    const service = new Service(config, testLog);
    await expect(service.start()).rejects.toThrow(/tell-look-contain@\w+ step tell: no channel soc-slack in notify\.channels/);
  });
});
