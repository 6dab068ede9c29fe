// The leader gauge, read from the elector on every scrape so it can never disagree with it.
// Registered into the registry passed in; never the global one.

import { Gauge, type Registry } from 'prom-client';

export interface LeaderState {
  isLeader(): boolean;
}

export interface LeaderMetrics {
  readonly leader: Gauge;
}

export function createLeaderMetrics(registry: Registry, state: LeaderState): LeaderMetrics {
  const leader = new Gauge({
    name: 'podcidr_allocator_leader',
    help: '1 while this replica holds the leader Lease and runs the allocator, 0 otherwise.',
    registers: [registry],
    collect() {
      this.set(state.isLeader() ? 1 : 0);
    },
  });
  return { leader };
}
