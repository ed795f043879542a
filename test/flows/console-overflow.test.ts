import Redis from 'ioredis';
import { Kafka } from 'kafkajs';
import { chromium, type Browser } from 'playwright-core';
import { registerConsole } from '../../src/console/console';
import type { Containment } from '../../src/contain/containment';
import type { CordonEvent } from '../../src/events';
import { FlowHistory } from '../../src/flows/history';
import { sha256Hex } from '../../src/http/auth';
import { registerConsoleApi } from '../../src/http/console-api';
import { createHttpServer } from '../../src/http/server';
import { IncidentStore } from '../../src/incidents/store';
import { LedgerIndex } from '../../src/ledger/incident-index';
import { Metrics } from '../../src/metrics';
import { KAFKA_BROKERS, REDIS_URL, testLog, uniq } from '../support/stack';

const CHROMIUM = process.env.CORDON_CHROMIUM ?? '/usr/bin/chromium';
const VIEWER = 'viewer-token-0123456789abcdef';
const tokens = [{ name: 'viewer-1', role: 'viewer' as const, sha256: sha256Hex(VIEWER) }];

function flow(src: string, dst: string, port: number): CordonEvent {
  return { id: 'f', time: Date.now(), src: { ip: src }, dst: { ip: dst }, protocol: 'tcp', dstPort: port, action: 'allowed', observer: { type: 'test', name: 'test' } } as CordonEvent;
}

/**
 * The approval page of the real console (real Chromium) over the real impact route and flow history
 * on Redis; only the approval itself comes from a stand-in for the containment stage.
 */
describe('impact preview past the bound, in the console (real Redis, real Chromium)', () => {
  const redis = new Redis(REDIS_URL);
  const prefix = uniq('flow-console');
  const history = new FlowHistory(redis, prefix, { maxPerHour: 3 });
  const approval = {
    id: 'ap-1',
    incidentId: 'inc-1',
    playbookId: 'pb',
    question: 'Quarantine 10.60.0.1?',
    targets: [{ key: 'ip:10.60.0.1', ip: '10.60.0.1' }],
    ttlMs: 3_600_000,
    deadline: Date.now() + 3_600_000,
    onTimeout: 'deny',
    approvers: ['soc'],
    labels: {},
    state: 'pending',
  };
  const containment = { approvals: { get: async (id: string) => (id === approval.id ? approval : undefined) } } as unknown as Containment;
  const app = createHttpServer({ log: testLog, metrics: new Metrics({ defaultMetrics: false }), checks: [] });
  const ledger = new LedgerIndex({ kafka: new Kafka({ brokers: KAFKA_BROKERS }), redis, topic: `${prefix}.ledger`, prefix, log: testLog });
  registerConsoleApi(app, { containment: () => containment, incidents: new IncidentStore(redis, prefix), tokens, flows: history, ledger });
  registerConsole(app);
  for (const path of ['/api/incidents', '/api/quarantines']) app.get(path, async () => []);
  app.get('/api/approvals', async () => [approval]);
  let browser: Browser;
  let url = '';

  beforeAll(async () => {
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });

  afterAll(async () => {
    await browser?.close();
    await app.close();
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  it('says how many flows were not kept past the bound, next to the flows kept', async () => {
    // 5 peers, one flow each; the key keeps the first 3
    await history.record(['10.60.0.2', '10.60.0.3', '10.60.0.4', '10.60.0.5', '10.60.0.6'].map((src) => flow(src, '10.60.0.1', 445)));
    const page = await browser.newPage();
    await page.goto(`${url}/console#/approvals`);
    await page.fill('#login-token', VIEWER);
    await page.click('#login-submit');
    const card = page.locator('section.approval[data-approval="ap-1"]');
    await card.locator('.impact-flows tbody tr').first().waitFor({ timeout: 30_000 });
    expect(await card.locator('.impact-flows tbody tr').count()).toBe(3);
    expect(await card.locator('.impact .overflow').textContent()).toBe('2 more flows not kept (past the bound of distinct flows per hour)');
    expect(await card.locator('.impact').textContent()).toMatch(/3 allowed connections will be cut/);
    await page.close();
  }, 60_000);
});
