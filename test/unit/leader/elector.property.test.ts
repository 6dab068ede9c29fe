import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LeaderElector } from '../../../src/leader/elector.js';
import { ManualClock } from '../../support/manual-clock.js';
import { FakeLeaseStore, memoryLogger, type Link } from './fakes.js';

const lock = { namespace: 'kube-system', name: 'podcidr-allocator' };
const STEP = 100;
const HORIZON = 60_000;

/** At a step, one replica's network changes: requests fail, hang, or take some time. */
interface Fault {
  readonly step: number;
  readonly replica: number;
  readonly link: Link;
  readonly latencyMs: number;
}

const faultArb = fc.record({
  step: fc.integer({ min: 0, max: HORIZON / STEP - 1 }),
  replica: fc.integer({ min: 0, max: 2 }),
  link: fc.constantFrom<Link>('up', 'up', 'down', 'hang'),
  latencyMs: fc.constantFrom(0, 100, 500, 1_500),
});

describe('the elector under random network faults', () => {
  it('never lets two replicas act as leader at the same time', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(faultArb, { maxLength: 25 }), async (faults) => {
        const clock = new ManualClock();
        const store = new FakeLeaseStore(clock);
        const replicas = ['a', 'b', 'c'].map((identity) => {
          const client = store.client(identity);
          const elector = new LeaderElector({
            lock,
            identity,
            leaseDurationMs: 15_000,
            renewDeadlineMs: 10_000,
            retryPeriodMs: 2_000,
            client,
            logger: memoryLogger().logger,
            clock,
            sleep: clock.sleep,
            random: () => 0.5,
            onStartedLeading: () => undefined,
          });
          void elector.run();
          return { client, elector };
        });
        const byStep = new Map<number, Fault[]>();
        for (const f of faults) byStep.set(f.step, [...(byStep.get(f.step) ?? []), f]);

        let everLed = false;
        for (let step = 0; step < HORIZON / STEP; step++) {
          for (const f of byStep.get(step) ?? []) {
            const r = replicas[f.replica];
            if (r === undefined) continue;
            r.client.link = f.link;
            r.client.latencyMs = f.latencyMs;
          }
          await clock.advance(STEP);
          const leaders = replicas.filter((r) => r.elector.isLeader()).length;
          expect(leaders).toBeLessThanOrEqual(1);
          everLed ||= leaders === 1;
        }
        // Without faults someone must have led; with them the property above is the point.
        if (faults.length === 0) expect(everLed).toBe(true);
        for (const r of replicas) {
          r.client.link = 'up';
          r.client.latencyMs = 0;
        }
        const stopping = Promise.all(replicas.map((r) => r.elector.stop()));
        await clock.advance(20_000);
        await stopping;
      }),
      { numRuns: 40 },
    );
  });
});
