import pino, { type Logger } from 'pino';

export type { Logger };

/** The service's structured logger: JSON lines on stderr, so stdout stays free for command output. */
export function createLogger(level: string = process.env.CORDON_LOG_LEVEL ?? 'info', name = 'cordon'): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: false }));
}
