import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Kafka } from 'kafkajs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { Config } from '../../src/config';
import type { Incident } from '../../src/correlate/incident';
import { sha256Hex } from '../../src/http/auth';
import { produceFile } from '../../src/produce';
import { Service } from '../../src/service';
import { createTopics, deleteTopics, testKafka } from '../support/kafka';
import { eventually, testConfig, testLog } from '../support/stack';

/**
 * The console end to end: real headless Chromium (Debian's, scripts/browser.sh) driving the page
 * served by a real Service on real Kafka and Redis. A recorded lateral-movement attack raises an
 * incident; an approve-then-contain playbook asks for approval; the approver sees the impact,
 * approves for a shorter TTL, sees the quarantine applied, releases it and reads the ledger. A
 * viewer sees no decision buttons and the API refuses the forced call. Every page is screenshotted
 * at desktop and phone width into test-output/screenshots/.
 */

const CHROMIUM = process.env.CORDON_CHROMIUM ?? '/usr/bin/chromium';
const RECORDING = resolve(__dirname, '../../../shared/datasets/otrf-lateral-movement/covenant_sharpsc_create_dcerpc_smb_svcctl.jsonl.gz');
const SHOTS = resolve(__dirname, '../../test-output/screenshots');
const TOKENS = { viewer: 'viewer-token-0123456789abcdef', responder: 'responder-token-0123456789abcdef', approver: 'approver-token-0123456789abcdef' };
const ROOT = 'host:workstation5.theshire.local';
const PHONE = { width: 390, height: 844 };

const PLAYBOOK = `apiVersion: cordon.io/v1
kind: Playbook
name: console-approve
description: console test, approve then contain
priority: 100
mode: approve-then-contain
match:
  severity: low
steps:
  - id: notify-soc
    type: notify
    channels: [splunk]
    message: approval needed for {{ incident.id }}
  - id: ask-oncall
    type: approve
    approvers: [soc-oncall]
    deadline: 1h
    on_timeout: release
  - id: quarantine-root
    type: quarantine
    target: root
    enforcer: labelstore
    ttl: 4h
`;

jest.setTimeout(120_000);

/** A script run before the page's own: the token as the login form would have stored it. */
const loginScript = (token: string) => `sessionStorage.setItem('cordon.token', ${JSON.stringify(token)});`;

describe('console in headless Chromium (real Service, Kafka, Redis)', () => {
  let kafka: Kafka;
  let config: Config;
  let service: Service;
  let url: string;
  let browser: Browser;
  let desktop: BrowserContext;
  let phone: BrowserContext;
  let page: Page;
  let phonePage: Page;
  let incident: Incident;
  let approvalId: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    kafka = testKafka();
    const dir = mkdtempSync(join(tmpdir(), 'cordon-console-'));
    writeFileSync(join(dir, 'console.yaml'), PLAYBOOK);
    config = testConfig('console', {
      contain: { playbooks: dir, reconcileIntervalMs: 1000, enforcers: { labelstore: true } },
      correlate: { snapshotIntervalMs: 1000 },
      auth: { tokens: Object.entries(TOKENS).map(([role, token]) => ({ name: `${role}-1`, role, sha256: sha256Hex(token), groups: role === 'approver' ? ['soc-oncall'] : [] })) },
    });
    await createTopics(kafka, config);
    service = new Service(config, testLog);
    await service.start();
    url = `http://127.0.0.1:${(service.http.server.address() as { port: number }).port}`;

    const producer = kafka.producer();
    await producer.connect();
    await produceFile(producer, RECORDING, config.kafka.inputs[0]!.topic, { format: 'auto', timestamp: 'event' }, config.kafka.partitions);
    await producer.disconnect();

    mkdirSync(SHOTS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    desktop = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    phone = await browser.newContext({ viewport: PHONE, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    await phone.addInitScript(loginScript(TOKENS.approver));
    page = await desktop.newPage();
    phonePage = await phone.newPage();
    for (const p of [page, phonePage]) p.on('pageerror', (e) => pageErrors.push(e.message));
  });

  afterAll(async () => {
    await browser?.close();
    await service?.stop();
    if (config) await deleteTopics(kafka, config).catch(() => undefined);
  });

  /** The current desktop page, and the same view at phone width (which must not scroll sideways). */
  async function shoot(name: string, ready: string): Promise<void> {
    await page.screenshot({ path: join(SHOTS, `${name}-desktop.png`), fullPage: true });
    await phonePage.goto(page.url());
    await phonePage.waitForSelector(ready, { timeout: 30_000 });
    await phonePage.screenshot({ path: join(SHOTS, `${name}-phone.png`), fullPage: true });
    const overflow = (await phonePage.evaluate('document.documentElement.scrollWidth - window.innerWidth')) as number;
    expect(overflow).toBeLessThanOrEqual(0);
  }

  const forced = (p: Page, path: string, token: string, body: unknown) =>
    p.evaluate(
      async ([path, token, body]) => (await fetch(path as string, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })).status,
      [path, token, body] as const,
    );

  it('refuses a wrong token, logs in with a good one and lists the incident', async () => {
    await page.goto(`${url}/console`);
    await page.waitForSelector('#login-token');
    await page.screenshot({ path: join(SHOTS, 'login-desktop.png') });
    await page.fill('#login-token', 'not-a-valid-token-0123456789');
    await page.click('#login-submit');
    await page.waitForSelector('#login-error .flash');
    expect(await page.textContent('#login-error')).toContain('refused');

    await page.fill('#login-token', TOKENS.approver);
    await page.click('#login-submit');
    await page.waitForSelector('#whoami');
    expect(await page.textContent('#whoami')).toBe('approver-1 (approver)');
    const row = await page.waitForSelector('table.incidents tr[data-id]', { timeout: 60_000 });
    incident = (await service.correlator.incidents.list(10)).find((i) => i.root === ROOT)!;
    expect(incident).toBeDefined();
    expect(await row.getAttribute('data-id')).toBe(incident.id);
    expect(await row.textContent()).toContain('workstation5');
    await shoot('incidents', 'table.incidents tr[data-id]');
  });

  it('filters the incident list', async () => {
    await page.selectOption('#f-severity', 'critical');
    await page.waitForSelector('text=No incident matches the filter.');
    await page.selectOption('#f-severity', '');
    await page.fill('#f-q', 'workstation5');
    await page.waitForSelector('table.incidents tr[data-id]');
    await page.fill('#f-q', '');
  });

  it('opens the incident: attack path graph, techniques, evidence, the playbook run waiting for approval', async () => {
    await page.click(`table.incidents tr[data-id="${incident.id}"] a`);
    await page.waitForSelector('#graph svg g.node');
    expect(await page.locator('#graph g.node').count()).toBe(incident.path.nodes.length);
    const edge = page.locator('#graph g.edge').first();
    expect(await edge.getAttribute('data-from')).toBe(ROOT);
    const label = await edge.locator('text').first().textContent();
    expect(label).toMatch(new RegExp(`port ${incident.path.edges[0]!.ports.join(',')} · ${incident.path.edges[0]!.denied} denied`));
    expect(await page.textContent('#techniques')).toContain(incident.techniques[0]!);
    expect(await page.locator('#evidence tbody tr').count()).toBe(incident.evidence.items.length);
    await page.waitForSelector('#run li[data-step="ask-oncall"][data-state="waiting"]', { timeout: 30_000 });
    expect(await page.getAttribute('#run li[data-step="notify-soc"]', 'data-state')).toBe('done');
    expect(await page.getAttribute('#run li[data-step="quarantine-root"]', 'data-state')).toBe('not reached');
    await shoot('incident', '#run li[data-step="ask-oncall"]');
  });

  it('a viewer sees the pending approval without decision buttons, and the API refuses the forced call', async () => {
    const viewer = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const vp = await viewer.newPage();
    vp.on('pageerror', (e) => pageErrors.push(e.message));
    await vp.goto(`${url}/console#/approvals`);
    await vp.fill('#login-token', TOKENS.viewer);
    await vp.click('#login-submit');
    const card = await vp.waitForSelector('section.approval', { timeout: 30_000 });
    approvalId = (await card.getAttribute('data-approval'))!;
    expect(await vp.locator('button[data-action="approve"]').count()).toBe(0);
    expect(await vp.locator('button[data-action="deny"]').count()).toBe(0);
    expect(await vp.textContent('section.approval')).toContain('Only an approver can decide');
    await vp.screenshot({ path: join(SHOTS, 'approvals-viewer-desktop.png'), fullPage: true });
    expect(await forced(vp, `/api/approvals/${approvalId}/approve`, TOKENS.viewer, { reason: 'forced by a viewer' })).toBe(403);
    expect(await forced(vp, `/api/approvals/${approvalId}/approve`, TOKENS.responder, { reason: 'forced by a responder' })).toBe(403);
    expect((await service.containment!.approvals.get(approvalId))?.state).toBe('pending');
    await viewer.close();
  });

  it('shows the approval with its impact preview; the approver approves for a shorter TTL', async () => {
    await page.goto(`${url}/console#/approvals`);
    const card = page.locator(`section.approval[data-approval="${approvalId}"]`);
    await card.waitFor();
    expect(await card.textContent()).toContain('4h');
    expect(await card.textContent()).toContain('cordon.io/quarantine');
    await card.locator('.impact-flows tbody tr').first().waitFor({ timeout: 30_000 });
    const impact = await card.locator('.impact').textContent();
    expect(impact).toMatch(/[1-9]\d* allowed connections will be cut/);
    expect(impact).toMatch(/[1-9]\d* already denied/);
    expect(await card.locator('.impact-flows tr[data-verdict="denied"]').count()).toBeGreaterThan(0);
    await shoot('approvals', 'section.approval .impact-flows');

    // Deny needs a reason: the form says so and nothing is sent.
    await card.locator('button[data-action="deny"]').click();
    await card.locator('.flash.error').waitFor();
    expect((await service.containment!.approvals.get(approvalId))?.state).toBe('pending');

    await card.locator('textarea[name="reason"]').fill('checked with the workstation owner: not them');
    await card.locator('select[name="ttl"]').selectOption('1h');
    const before = Date.now();
    await card.locator('button[data-action="approve"]').click();
    await page.waitForSelector('#no-approvals', { timeout: 30_000 });
    const approval = await service.containment!.approvals.get(approvalId);
    expect(approval).toMatchObject({ state: 'approved', decidedBy: 'user:approver-1', reason: 'checked with the workstation owner: not them', approvedTtlMs: 3_600_000 });
    const lease = await eventually(async () => {
      const l = await service.containment!.quarantines.registry.get(ROOT);
      return l?.state === 'applied' ? l : undefined;
    }, 30_000, 'lease applied');
    expect(lease.expiresAt).toBeGreaterThanOrEqual(before + 3_600_000 - 1000);
    expect(lease.expiresAt).toBeLessThan(before + 2 * 3_600_000);
  });

  it('shows the quarantine applied (time left, holders); a viewer gets no release button; the approver releases it', async () => {
    await page.goto(`${url}/console#/quarantines`);
    const card = page.locator(`section.lease[data-target="${ROOT}"][data-state="applied"]`);
    await card.waitFor({ timeout: 30_000 });
    expect(await card.locator('.timeleft').textContent()).toMatch(/^(59m|1h 0m)/);
    expect(await card.locator('a.chip').textContent()).toBe(incident.id);
    expect(await service.redis.hgetall(`${config.redis.keyPrefix}:labelstore:${ROOT}`)).toMatchObject({ 'cordon.io/quarantine': 'true' });
    await shoot('quarantines', 'section.lease');

    const viewer = await browser.newContext();
    await viewer.addInitScript(loginScript(TOKENS.viewer));
    const vp = await viewer.newPage();
    await vp.goto(`${url}/console#/quarantines`);
    await vp.waitForSelector('section.lease');
    expect(await vp.locator('button[data-action="release"]').count()).toBe(0);
    expect(await forced(vp, `/api/quarantines/${encodeURIComponent(ROOT)}/release`, TOKENS.viewer, { reason: 'forced by a viewer' })).toBe(403);
    await viewer.close();

    await card.locator('textarea[name="reason"]').fill('owner confirmed the service install; false positive');
    await card.locator('button[data-action="release"]').click();
    await page.waitForSelector('#no-quarantines', { timeout: 30_000 });
    await page.waitForSelector(`#ended tr[data-target="${ROOT}"]`);
    expect(await page.textContent(`#ended tr[data-target="${ROOT}"]`)).toContain('released');
    expect((await service.containment!.quarantines.registry.get(ROOT))?.state).toBe('released');
    expect(await service.redis.hgetall(`${config.redis.keyPrefix}:labelstore:${ROOT}`)).not.toHaveProperty('cordon.io/quarantine');
    await shoot('quarantines-released', '#ended');
  });

  it('the incident page lists the ledger records of the whole story', async () => {
    await page.goto(`${url}/console#/incident/${encodeURIComponent(incident.id)}`);
    await page.waitForSelector('#ledger tr[data-action="quarantine_released"]', { timeout: 30_000 });
    const actions = await page.locator('#ledger tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-action')));
    expect(actions).toEqual(expect.arrayContaining(['incident_raised', 'playbook_started', 'playbook_step', 'approval_requested', 'approval_given', 'quarantine_applied', 'quarantine_released']));
    expect(actions.indexOf('approval_given')).toBeLessThan(actions.indexOf('quarantine_released'));
    const released = page.locator('#ledger tr[data-action="quarantine_released"]');
    expect(await released.textContent()).toContain('user:approver-1');
    expect(await released.textContent()).toContain('false positive');
    expect(await page.getAttribute('#run li[data-step="quarantine-root"]', 'data-state')).toBe('done');
    await shoot('incident-ledger', '#ledger tr[data-action="quarantine_released"]');
  });

  it('is pushed changes over server-sent events: no polling while the stream is up, a change made elsewhere shows at once', async () => {
    await page.goto(`${url}/console#/quarantines`);
    await page.waitForSelector('body[data-updates="stream"]', { timeout: 15_000 });
    expect(await page.textContent('#updates')).toBe('live');
    const reads: string[] = [];
    const onRequest = (r: { url(): string; method(): string }) => {
      if (r.method() === 'GET' && new URL(r.url()).pathname === '/api/quarantines') reads.push(r.url());
    };
    page.on('request', onRequest);
    await page.waitForTimeout(6_000);
    expect(reads).toEqual([]);

    // A quarantine started from the CLI or API (here: the API) shows up with no reload and no poll.
    const target = 'ip:10.80.0.7';
    const started = await forced(page, '/api/quarantines', TOKENS.responder, { entity: target, ttl: '30m', reason: 'started elsewhere' });
    expect(started).toBe(201);
    await page.waitForSelector(`section.lease[data-target="${target}"][data-state="applied"]`, { timeout: 4_000 });
    expect(reads.length).toBeGreaterThan(0);
    page.off('request', onRequest);
    expect(await page.textContent(`section.lease[data-target="${target}"] .manual-hold`)).toBe('by hand: responder-1');
  });

  it('falls back to polling when the stream cannot be opened, and 10 s later opens it again with a new ticket', async () => {
    const ctx = await browser.newContext();
    await ctx.addInitScript(loginScript(TOKENS.viewer));
    const blocked = '**/api/events/stream**';
    await ctx.route(blocked, (route) => route.abort());
    const p = await ctx.newPage();
    p.on('pageerror', (e) => pageErrors.push(e.message));
    const tickets: number[] = [];
    p.on('request', (r) => {
      if (new URL(r.url()).pathname === '/api/events/ticket') tickets.push(Date.now());
    });
    await p.goto(`${url}/console#/quarantines`);
    await p.waitForSelector('body[data-updates="poll"]', { timeout: 15_000 });
    expect(await p.textContent('#updates')).toBe('polling every 5 s');
    expect(await p.locator('#manual').count()).toBe(0);
    const polled = await p.waitForRequest((r) => new URL(r.url()).pathname === '/api/quarantines', { timeout: 8_000 });
    expect(polled.method()).toBe('GET');

    await ctx.unroute(blocked);
    await p.waitForSelector('body[data-updates="stream"]', { timeout: 15_000 });
    expect(await p.textContent('#updates')).toBe('live');
    expect(tickets.length).toBeGreaterThanOrEqual(2);
    expect(tickets[1]! - tickets[0]!).toBeGreaterThanOrEqual(9_000);
    await ctx.close();
  }, 40_000);

  it('a responder quarantines an entity by hand: the impact preview first, then a reason; the ledger names who and why', async () => {
    const target = incident.path.nodes.find((n) => n !== ROOT)!;
    await page.goto(`${url}/console#/quarantines`);
    const form = page.locator('#manual');
    await form.waitFor();
    await form.locator('input[name="entity"]').fill(target);
    await form.locator('button[data-action="quarantine"]').click();
    await form.locator('.flash.error', { hasText: 'Check the impact preview first' }).waitFor();
    await form.locator('.impact').waitFor({ timeout: 10_000 });
    expect(await form.locator('.impact').textContent()).toMatch(/allowed connections will be cut/);
    await form.locator('button[data-action="quarantine"]').click();
    await form.locator('.flash.error', { hasText: 'Say why' }).waitFor();
    expect(await service.containment!.quarantines.registry.get(target)).toBeUndefined();
    await shoot('quarantine-by-hand', '#manual');

    await form.locator('textarea[name="reason"]').fill('second host of the same campaign; contain it now');
    await form.locator('select[name="ttl"]').selectOption('2h');
    await form.locator('button[data-action="quarantine"]').click();
    const card = page.locator(`section.lease[data-target="${target}"][data-state="applied"]`);
    await card.waitFor({ timeout: 15_000 });
    expect(await card.locator('.manual-hold').textContent()).toBe('by hand: approver-1');
    expect(await page.textContent('#flash')).toContain(`Quarantined by hand: ${target}`);
    const lease = (await service.containment!.quarantines.registry.get(target))!;
    expect(lease).toMatchObject({ state: 'applied', enforcer: 'labelstore', holders: [expect.stringMatching(/^manual\.approver-1\./)] });
    expect(lease.expiresAt - Date.now()).toBeGreaterThan(2 * 3_600_000 - 60_000);
  });

  it('a viewer gets no close button; the responder closes the incident with a reason, and the ledger names who and why', async () => {
    const viewer = await browser.newContext();
    await viewer.addInitScript(loginScript(TOKENS.viewer));
    const vp = await viewer.newPage();
    await vp.goto(`${url}/console#/incident/${encodeURIComponent(incident.id)}`);
    await vp.waitForSelector('#summary');
    expect(await vp.locator('button[data-action="close"]').count()).toBe(0);
    await viewer.close();

    await page.goto(`${url}/console#/incident/${encodeURIComponent(incident.id)}`);
    const close = page.locator('#close');
    await close.locator('button[data-action="close"]').click();
    expect(await close.textContent()).toContain('Say why (at least 3 characters).');
    await close.locator('textarea[name="reason"]').fill('contained and cleaned; service account rotated');
    await close.locator('button[data-action="close"]').click();
    await eventually(async () => ((await service.correlator.incidents.get(incident.id))?.status === 'closed' ? true : undefined), 30_000, 'the incident closed');
    const decided = page.locator('#ledger tr[data-action="incident_updated"]', { hasText: 'service account rotated' });
    await eventually(async () => {
      await page.reload();
      await page.waitForSelector('#summary');
      return (await decided.count()) > 0 ? true : undefined;
    }, 30_000, 'the close decision in the ledger table');
    expect(await decided.textContent()).toContain('user:approver-1');
    expect(await page.locator('#close').count()).toBe(0);
  });

  it('raised no script error in any page', () => {
    expect(pageErrors).toEqual([]);
  });
});
