import { createServer, type Server } from 'node:http';
import type { Config } from '../../src/config';
import { sha256Hex } from '../../src/http/auth';
import type { Lease } from '../../src/ledger/records';
import { Service } from '../../src/service';
import { autoPlaybook, ledgerRecords, leaseStep, playbookDir } from '../contain/support';
import { createTopics, deleteTopics, testKafka } from '../support/kafka';
import { eventually, testConfig, testLog } from '../support/stack';

/**
 * A manual quarantine with two enforcement layers configured: the layer must be named, and one
 * that refuses the apply is a 502 with the failure in the ledger. The refusing layer is a webhook
 * receiver on loopback that shows every target unlabelled and answers every apply 422.
 */
const TOKEN = 'enforcer-responder-token-0123456789';
const PLAYBOOK = autoPlaybook('manual-enforcer', `  - id: quarantine-root
    type: quarantine
    target: root
    enforcer: labelstore
    ttl: 1h
`);

describe('manual quarantine with two layers (real Kafka, Redis; label store and a refusing webhook receiver)', () => {
  const kafka = testKafka();
  let config: Config;
  let service: Service;
  let receiver: Server;
  let base = '';
  const asked: string[] = [];
  const quarantine = async (body: unknown) => {
    const res = await fetch(`${base}/api/quarantines`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(body) });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => {
        const { action } = JSON.parse(text) as { action: string };
        asked.push(action);
        res.setHeader('content-type', 'application/json');
        if (action === 'observe') return void res.end(JSON.stringify({ labels: {}, contained: false }));
        res.statusCode = 422;
        res.end(JSON.stringify({ error: 'the firewall policy refuses this change' }));
      });
    });
    await new Promise<void>((ok) => receiver.listen(0, '127.0.0.1', ok));
    const port = (receiver.address() as { port: number }).port;
    config = testConfig('manual-enforcer', {
      contain: { playbooks: playbookDir('manual-enforcer', PLAYBOOK), reconcileIntervalMs: 500, enforcers: { labelstore: true, webhook: { url: `http://127.0.0.1:${port}/cordon`, secret: 'w'.repeat(32) } } },
      auth: { tokens: [{ name: 'rita', role: 'responder', sha256: sha256Hex(TOKEN) }] },
    });
    await createTopics(kafka, config);
    service = new Service(config, testLog);
    await service.start();
    base = `http://127.0.0.1:${(service.http.server.address() as { port: number }).port}`;
  }, 60_000);
  afterAll(async () => {
    await service?.stop();
    await new Promise((ok) => receiver.close(ok));
    await deleteTopics(kafka, config);
  });

  it('with two layers the request names one: 400 listing them otherwise', async () => {
    const r = await quarantine({ entity: 'ip:10.91.0.1', ttl: '1h', reason: 'which layer?' });
    expect(r).toEqual({ status: 400, json: expect.objectContaining({ detail: 'body.enforcer: say which enforcement layer (configured: labelstore, webhook)' }) });
  });

  it('a layer that refuses the apply is a 502 naming it, the failure on record; the same target may then be contained through another layer', async () => {
    const target = 'ip:10.91.0.2';
    const refused = await quarantine({ entity: target, ttl: '1h', reason: 'through the firewall', enforcer: 'webhook' });
    expect(refused.status).toBe(502);
    expect(refused.json.detail).toMatch(/^webhook could not apply the quarantine: .*receiver answered 422: .*the firewall policy refuses this change/);
    expect(asked.filter((a) => a !== 'observe')).toEqual(['apply']);
    expect((await service.containment!.quarantines.registry.get(target))?.state).toBe('failed');

    const ok = await quarantine({ entity: target, ttl: '1h', reason: 'through the label store', enforcer: 'labelstore' });
    expect(ok.status).toBe(201);
    expect(ok.json as unknown as Lease).toMatchObject({ state: 'applied', enforcer: 'labelstore' });
    const steps = await eventually(async () => {
      const rs = (await ledgerRecords(kafka, config)).filter((r) => r.target === target).map(leaseStep);
      return rs.length === 4 ? rs : undefined;
    }, 20_000, 'four lease records');
    expect(steps).toEqual(['quarantine_applied:pending', 'quarantine_failed:failed', 'quarantine_applied:pending', 'quarantine_applied:applied']);
  }, 30_000);
});
