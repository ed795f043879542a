import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * The secure listeners scripts/stack.sh starts next to PLAINTEXT 9092, and the material it made for
 * them; the same environment variables as the script's pick another stack (scripts/compat.sh's).
 */
export const SASL_SSL_BROKERS = [`127.0.0.1:${process.env.KAFKA_SASL_SSL_PORT ?? '9094'}`];
export const MTLS_BROKERS = [`127.0.0.1:${process.env.KAFKA_MTLS_PORT ?? '9095'}`];

function stackDir(): string {
  if (process.env.CORDON_STACK_DIR) return process.env.CORDON_STACK_DIR;
  if (process.getuid?.() === 0) return '/var/cache/cordon';
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'cordon');
}

/** CA, broker and client certificates, SCRAM passwords: `<user>.crt`, `<user>.key`, `<user>.password`. */
export const SECURITY_DIR = join(stackDir(), 'kafka', 'security');

export function securityFile(name: string): string {
  const path = join(SECURITY_DIR, name);
  if (!existsSync(path)) throw new Error(`${path} is missing: run bash scripts/stack.sh up kafka (it makes the secure listeners' material)`);
  return path;
}
