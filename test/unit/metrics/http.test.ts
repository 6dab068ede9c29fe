import { Agent, request } from 'node:http';
import { Gauge, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createLeaderMetrics } from '../../../src/metrics/leader.js';
import {
  ListenAddressError,
  parseListenAddress,
  startHttpServer,
  type HttpServer,
  type Probe,
} from '../../../src/metrics/http.js';
import { memoryLogger } from '../leader/fakes.js';

const servers: HttpServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(
  probes: { healthz?: Probe; readyz?: Probe } = {},
  registry = new Registry(),
): Promise<{ server: HttpServer; base: string; lines: Record<string, unknown>[] }> {
  const { logger, lines } = memoryLogger();
  const server = await startHttpServer({
    address: '127.0.0.1:0',
    registry,
    healthz: probes.healthz ?? (() => ({ ok: true })),
    readyz: probes.readyz ?? (() => ({ ok: true })),
    logger,
  });
  servers.push(server);
  return { server, base: `http://${server.address}`, lines };
}

describe('the health and metrics server', () => {
  it('binds an ephemeral port on 127.0.0.1 and reports it', async () => {
    const { server } = await serve();
    expect(server.port).toBeGreaterThan(0);
    expect(server.address).toBe(`127.0.0.1:${server.port}`);
  });

  it('answers /healthz with 200 ok while healthy', async () => {
    const { base } = await serve();
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok\n');
  });

  it('answers /healthz with 500 and the reason when unhealthy', async () => {
    const { base } = await serve({ healthz: () => ({ ok: false, reason: 'leader election stuck' }) });
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(500);
    expect(await res.text()).toBe('leader election stuck\n');
  });

  it('answers /readyz with 503 and the reason until ready, then 200', async () => {
    let synced = false;
    const { base } = await serve({
      readyz: () => (synced ? { ok: true } : { ok: false, reason: 'node cache not synced' }),
    });
    const before = await fetch(`${base}/readyz`);
    expect(before.status).toBe(503);
    expect(await before.text()).toBe('node cache not synced\n');

    synced = true;
    const after = await fetch(`${base}/readyz`);
    expect(after.status).toBe(200);
  });

  it('awaits asynchronous probes', async () => {
    const { base } = await serve({ readyz: () => Promise.resolve({ ok: false, reason: 'not yet' }) });
    const res = await fetch(`${base}/readyz?verbose=1`);
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('not yet\n');
  });

  it('serves the registry it was given, with its content type', async () => {
    const registry = new Registry();
    let leading = false;
    createLeaderMetrics(registry, { isLeader: () => leading });
    const { base } = await serve({}, registry);

    const first = await fetch(`${base}/metrics`);
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toBe(registry.contentType);
    expect(await first.text()).toContain('\npodcidr_allocator_leader 0\n');

    leading = true;
    expect(await (await fetch(`${base}/metrics`)).text()).toContain('\npodcidr_allocator_leader 1\n');
  });

  it('answers 500 and logs when the registry fails to collect', async () => {
    const registry = new Registry();
    new Gauge({
      name: 'broken',
      help: 'a collector that throws',
      registers: [registry],
      collect() {
        throw new Error('collector exploded');
      },
    });
    const { base, lines } = await serve({}, registry);
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(500);
    expect(lines.some((l) => l.msg === 'http handler failed')).toBe(true);
  });

  it('answers 404 for other paths and 405 for other methods', async () => {
    const { base } = await serve();
    expect((await fetch(`${base}/`)).status).toBe(404);
    expect((await fetch(`${base}/healthz/extra`)).status).toBe(404);
    const post = await fetch(`${base}/healthz`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('answers HEAD with headers only', async () => {
    const { base } = await serve();
    const res = await fetch(`${base}/healthz`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
  });

  it('closes promptly although a client keeps its connection alive', async () => {
    const { server } = await serve();
    const agent = new Agent({ keepAlive: true });
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: server.port, path: '/healthz', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(200);

    await servers.splice(0)[0]?.close();
    await expect(fetch(`http://${server.address}/healthz`)).rejects.toThrow();
    agent.destroy();
  });

  it('reports a port that is already taken', async () => {
    const { server } = await serve();
    await expect(
      startHttpServer({
        address: server.address,
        registry: new Registry(),
        healthz: () => ({ ok: true }),
        readyz: () => ({ ok: true }),
        logger: memoryLogger().logger,
      }),
    ).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });
});

describe('parseListenAddress', () => {
  it.each([
    ['127.0.0.1:10257', '127.0.0.1', 10257],
    [':8080', undefined, 8080],
    ['[::1]:0', '::1', 0],
    ['localhost:9000', 'localhost', 9000],
  ])('reads %s', (address, host, port) => {
    expect(parseListenAddress(address)).toEqual({ host, port });
  });

  it.each(['8080', '127.0.0.1', '127.0.0.1:65536', '::1:80', 'host:port', ''])(
    'rejects %j',
    (address) => {
      expect(() => parseListenAddress(address)).toThrow(ListenAddressError);
    },
  );
});
