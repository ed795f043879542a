import { createHttpServer } from '../../src/http/server';
import { Metrics } from '../../src/metrics';
import { testLog } from '../support/stack';

describe('HTTP server on current fastify', () => {
  it('starts without a deprecation warning, and takes long path parameters', async () => {
    const emitWarning = jest.spyOn(process, 'emitWarning');
    const app = createHttpServer({ log: testLog, metrics: new Metrics(), checks: [] });
    const longId = 'a'.repeat(1500);
    app.get('/echo/:id', async (req) => ({ length: (req.params as { id: string }).id.length }));
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    const res = await fetch(`${base}/echo/${longId}`);
    const body: unknown = await res.json();
    await app.close();
    expect(body).toEqual({ length: 1500 });
    expect(emitWarning.mock.calls.map((args) => String(args[0]))).toEqual([]);
    emitWarning.mockRestore();
  });
});
