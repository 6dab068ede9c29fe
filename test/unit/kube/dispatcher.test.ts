import { Agent, ProxyAgent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionPool } from '../../../src/kube/dispatcher.js';

const pools: ConnectionPool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

function pool(proxyUrl?: string): ConnectionPool {
  const p = new ConnectionPool(proxyUrl);
  pools.push(p);
  return p;
}

describe('ConnectionPool', () => {
  it('gives every request the same connection pool', () => {
    const p = pool();
    const first = p.dispatcher({ ca: 'ca', cert: 'cert', key: 'key' });
    expect(first).toBeInstanceOf(Agent);
    expect(p.dispatcher({ ca: 'ca', cert: 'cert', key: 'key' })).toBe(first);
  });

  it('opens a new pool when the client certificate changes', () => {
    const p = pool();
    const first = p.dispatcher({ ca: 'ca', cert: 'cert-1', key: 'key' });
    const second = p.dispatcher({ ca: 'ca', cert: 'cert-2', key: 'key' });
    expect(second).not.toBe(first);
    expect(p.dispatcher({ ca: 'ca', cert: 'cert-2', key: 'key' })).toBe(second);
  });

  it.each([
    ['the CA', { ca: 'other' }],
    ['verification', { rejectUnauthorized: false }],
    ['the server name', { servername: 'api.internal' }],
  ])('opens a new pool when %s changes', (_what, change) => {
    const p = pool();
    const first = p.dispatcher({ ca: 'ca' });
    expect(p.dispatcher({ ca: 'ca', ...change })).not.toBe(first);
  });

  it('goes through the proxy when one is named, sharing it too', () => {
    const p = pool('http://127.0.0.1:3128');
    const first = p.dispatcher({ ca: 'ca' });
    expect(first).toBeInstanceOf(ProxyAgent);
    expect(p.dispatcher({ ca: 'ca' })).toBe(first);
  });
});
