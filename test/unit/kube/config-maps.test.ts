// Unit tests of the Events about the controller's ConfigMaps: body shape, de-duplication within the window,
// and failures that are logged, never thrown.

import { describe, expect, it } from 'vitest';
import { KubeObjectEvents } from '../../../src/kube/config-maps.js';
import type { KubeRequest } from '../../../src/kube/client.js';
import type { EventBody } from '../../../src/kube/event-sink.js';
import type { HttpMethod } from '../../../src/kube/transport.js';
import { json, status } from './fake-rest.js';
import { memoryLogger } from '../controller/reconciler-fakes.js';
import { ManualClock } from '../../support/manual-clock.js';

function sink(fail = false) {
  const bodies: EventBody[] = [];
  const paths: string[] = [];
  const clock = new ManualClock();
  const { logger, lines } = memoryLogger();
  const events = new KubeObjectEvents({
    api: {
      request: (method: HttpMethod, path: string, request: KubeRequest = {}) => {
        paths.push(`${method} ${path}`);
        bodies.push(request.body as EventBody);
        return Promise.resolve(fail ? status(403, 'Forbidden', 'refused') : json(201, request.body));
      },
    },
    namespace: 'kube-system',
    identity: 'replica-1',
    log: logger,
    windowMs: 1000,
    now: clock.now,
  });
  return { events, bodies, paths, lines, advance: (ms: number) => clock.jump(ms) };
}

const regarding = { kind: 'ConfigMap', name: 'podcidr-allocator-config', uid: 'u-1' };

describe('KubeObjectEvents', () => {
  it('writes an events.k8s.io Event regarding the object in the controller namespace', () => {
    const s = sink();
    s.events.emit(regarding, 'Warning', 'PodCIDRRangeNearlyFull', 'range is 80 % used');
    expect(s.bodies).toHaveLength(1);
    expect(s.bodies[0]).toMatchObject({
      reason: 'PodCIDRRangeNearlyFull',
      type: 'Warning',
      note: 'range is 80 % used',
      reportingController: 'podcidr-allocator',
      reportingInstance: 'replica-1',
      metadata: { namespace: 'kube-system' },
      regarding: { kind: 'ConfigMap', name: 'podcidr-allocator-config', namespace: 'kube-system', uid: 'u-1' },
    });
    expect(s.bodies[0]?.eventTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(s.paths).toEqual(['POST /apis/events.k8s.io/v1/namespaces/kube-system/events']);
  });

  it('writes the same reason and note once per window, a different note at once', () => {
    const s = sink();
    s.events.emit(regarding, 'Warning', 'R', 'a');
    s.events.emit(regarding, 'Warning', 'R', 'a');
    s.events.emit(regarding, 'Warning', 'R', 'b');
    expect(s.bodies.map((b) => b.note)).toEqual(['a', 'b']);
    s.advance(1000);
    s.events.emit(regarding, 'Warning', 'R', 'a');
    expect(s.bodies.map((b) => b.note)).toEqual(['a', 'b', 'a']);
  });

  it('logs a failed creation instead of throwing', async () => {
    const s = sink(true);
    s.events.emit(regarding, 'Normal', 'PodCIDRRangesAppended', 'added');
    await new Promise((resolve) => setImmediate(resolve));
    expect(s.lines.some((l) => l.msg === 'could not record event' && l.error === 'HTTP 403 Forbidden: refused')).toBe(true);
  });
});
