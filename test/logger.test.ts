import pkg from '../package.json';
import { ConfigError, loadConfig } from '../src/config';
import { createHttpServer } from '../src/http/server';
import { createLogger } from '../src/logger';
import { Metrics } from '../src/metrics';

function capture() {
  const lines: string[] = [];
  return { lines, destination: { write: (s: string) => void lines.push(s) } };
}

describe('logs', () => {
  it('log.format ecs writes Elastic Common Schema through @elastic/ecs-pino-format: @timestamp, log.level, message, service, process, error', () => {
    const { lines, destination } = capture();
    const log = createLogger('info', 'cordon', { format: 'ecs', destination });
    log.info({ target: 'ip:10.0.0.5' }, 'quarantine applied');
    log.error({ err: new Error('enforcer refused') }, 'release failed');
    log.debug('not at info');
    expect(lines).toHaveLength(2);
    const [applied, failed] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(applied).toMatchObject({
      'log.level': 'info',
      message: 'quarantine applied',
      'ecs.version': expect.stringMatching(/^\d+\.\d+/),
      'service.name': 'cordon',
      'service.version': pkg.version,
      'process.pid': process.pid,
      'log.logger': 'cordon',
      target: 'ip:10.0.0.5',
    });
    expect(new Date(applied!['@timestamp'] as string).getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(applied).not.toHaveProperty('msg');
    expect(applied).not.toHaveProperty('level');
    expect(failed).toMatchObject({ 'log.level': 'error', error: { type: 'Error', message: 'enforcer refused', stack_trace: expect.stringContaining('Error: enforcer refused') } });
  });

  it('the default format stays pino\'s own lines', () => {
    const { lines, destination } = capture();
    createLogger('info', 'cordon', { destination }).info('hello');
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 30, msg: 'hello', name: 'cordon', pid: process.pid });
  });

  it('log.format is checked: json (default) or ecs, from the file or CORDON_LOG_FORMAT', () => {
    expect(loadConfig({ env: {} }).log.format).toBe('json');
    expect(loadConfig({ env: { CORDON_LOG_FORMAT: 'ecs' } }).log.format).toBe('ecs');
    expect(loadConfig({ env: {}, overrides: { log: { format: 'ecs' } } }).log.format).toBe('ecs');
    expect(() => loadConfig({ env: {}, overrides: { log: { format: 'gelf' } } })).toThrow(ConfigError);
    expect(() => loadConfig({ env: { CORDON_LOG_FORMAT: 'gelf' } })).toThrow(/log\.format = "gelf": Invalid option: expected one of "json"\|"ecs"/);
  });
});

describe('ECS logs from the HTTP server', () => {
  it('a route that fails logs an ECS line with the error (type, message, stack_trace); every line is ECS', async () => {
    const { lines, destination } = capture();
    const app = createHttpServer({ log: createLogger('info', 'cordon', { format: 'ecs', destination }), metrics: new Metrics({ defaultMetrics: false }), checks: [] });
    app.get('/boom', async () => {
      throw new Error('kaboom');
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const res = await fetch(`http://127.0.0.1:${(app.server.address() as { port: number }).port}/boom`);
      expect(res.status).toBe(500);
    } finally {
      await app.close();
    }
    const docs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const failed = docs.find((d) => (d.error as { message?: string } | undefined)?.message === 'kaboom');
    expect(failed).toMatchObject({ 'log.level': 'error', 'service.name': 'cordon', error: { type: 'Error', message: 'kaboom', stack_trace: expect.stringContaining('Error: kaboom') } });
    expect(docs.every((d) => typeof d['@timestamp'] === 'string' && typeof d['ecs.version'] === 'string')).toBe(true);
  });
});
