// Logger factory: one pino JSON logger per process, built by main and passed down to every part.
// Every line is one JSON object with an ISO time, a level label and name "podcidr-allocator".

import { hostname } from 'node:os';
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

/** The levels an operator may choose, most verbose first. */
export const logLevels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof logLevels)[number];

export function isLogLevel(value: string): value is LogLevel {
  return (logLevels as readonly string[]).includes(value);
}

export interface LoggerOptions {
  readonly level: LogLevel;
  /** Where JSON lines go; stdout when absent. Tests pass an in-memory sink. */
  readonly destination?: DestinationStream;
}

/** Components take a child: `logger.child({ component: 'reconciler' })`. */
export function createLogger(options: LoggerOptions): Logger {
  const settings = {
    name: 'podcidr-allocator',
    level: options.level,
    base: { pid: process.pid, hostname: hostname() },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Labels rather than numbers: `level:"warn"` can be grepped and read without a lookup table.
    formatters: { level: (label: string) => ({ level: label }) },
  };
  // Synchronous stdout so that a fatal line written just before exit is not lost.
  return pino(settings, options.destination ?? pino.destination({ dest: 1, sync: true }));
}
