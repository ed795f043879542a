import { ecsFormat } from '@elastic/ecs-pino-format';
import pino, { type DestinationStream, type Logger } from 'pino';
import pkg from '../package.json';

export type { Logger };

export const LOG_FORMATS = ['json', 'ecs'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface LoggerOptions {
  /** `json`: pino's own lines; `ecs`: Elastic Common Schema (@timestamp, log.level, message, service.*, error.*). */
  format?: LogFormat;
  /** Where lines go (default stderr, so stdout stays free for command output). */
  destination?: DestinationStream;
}

/** The service's structured logger: JSON lines on stderr, pino's shape or ECS. */
export function createLogger(level: string = process.env.CORDON_LOG_LEVEL ?? 'info', name = 'cordon', opts: LoggerOptions = {}): Logger {
  const destination = opts.destination ?? pino.destination({ fd: 2, sync: false });
  if (opts.format === 'ecs') {
    const ecs = ecsFormat({ serviceName: name, serviceVersion: pkg.version, convertReqRes: true, apmIntegration: false });
    return pino({ ...ecs, name, level }, destination);
  }
  return pino({ name, level, base: { pid: process.pid } }, destination);
}
