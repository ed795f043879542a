import { createReadStream, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { Transform } from 'node:stream';
import { createGunzip } from 'node:zlib';

/** Reads a telemetry file line by line, gzip or plain (by its magic bytes), reporting compressed bytes read. */
export async function* readLines(file: string, onBytes?: (bytesRead: number) => void): AsyncGenerator<string> {
  let read = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      read += chunk.length;
      onBytes?.(read);
      done(null, chunk);
    },
  });
  const gzip = await isGzip(file);
  const source = createReadStream(file);
  const raw = source.pipe(counter);
  const input = gzip ? raw.pipe(createGunzip()) : raw;
  source.on('error', (err) => input.destroy(err));
  const lines = createInterface({ input, crlfDelay: Infinity });
  for await (const line of lines) if (line.length > 0) yield line;
}

export function fileSize(file: string): number {
  return statSync(file).size;
}

async function isGzip(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(2), 0, 2, 0);
    return bytesRead === 2 && buffer[0] === 0x1f && buffer[1] === 0x8b;
  } finally {
    await fh.close();
  }
}
