import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An HTTP server on a free loopback port, for the contract servers of the vendors' incoming
 * webhooks: it starts, names its port, reads a whole request body, and closes with its
 * connections.
 */
export class LoopbackServer {
  private constructor(
    private readonly server: http.Server,
    readonly port: number,
  ) {}

  static async start(handle: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>): Promise<LoopbackServer> {
    const server = http.createServer((req, res) => void handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new LoopbackServer(server, (server.address() as AddressInfo).port);
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
