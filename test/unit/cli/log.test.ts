import { describe, expect, it } from 'vitest';
import { createLogger, isLogLevel, logLevels } from '../../../src/log.js';

function memory(): { lines: Record<string, unknown>[]; write(chunk: string): void } {
  const lines: Record<string, unknown>[] = [];
  return { lines, write: (chunk: string) => void lines.push(JSON.parse(chunk) as Record<string, unknown>) };
}

describe('createLogger', () => {
  it('writes one JSON object per line with an ISO time, the level label and the program name', () => {
    const sink = memory();
    createLogger({ level: 'info', destination: sink }).info({ node: 'n1' }, 'occupied existing podCIDR');
    expect(sink.lines).toHaveLength(1);
    const [line] = sink.lines;
    expect(line).toMatchObject({ level: 'info', name: 'podcidr-allocator', node: 'n1', msg: 'occupied existing podCIDR' });
    expect(new Date(String(line?.time)).toISOString()).toBe(line?.time);
  });

  it('drops lines below the chosen level', () => {
    const sink = memory();
    const logger = createLogger({ level: 'warn', destination: sink });
    logger.info('hidden');
    logger.debug('hidden');
    logger.warn('shown');
    expect(sink.lines.map((l) => l.msg)).toEqual(['shown']);
  });

  it('tags a component child with its name', () => {
    const sink = memory();
    createLogger({ level: 'debug', destination: sink }).child({ component: 'reconciler' }).debug('synced');
    expect(sink.lines[0]).toMatchObject({ component: 'reconciler', level: 'debug', name: 'podcidr-allocator' });
  });

  it('knows exactly the levels from trace to fatal', () => {
    expect(logLevels).toEqual(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);
    expect(isLogLevel('warn')).toBe(true);
    expect(isLogLevel('silent')).toBe(false);
    expect(isLogLevel('WARN')).toBe(false);
  });
});
