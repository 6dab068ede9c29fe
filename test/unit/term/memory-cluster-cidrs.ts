// An in-memory ClusterCIDRStore: objects a test puts, watched as the API server would show them.

import type { ClusterCIDRHandlers, ClusterCIDRObject, ClusterCIDRStatus, ClusterCIDRStore } from '../../../src/controller/ports.js';

export class MemoryClusterCIDRs implements ClusterCIDRStore {
  readonly objects = new Map<string, ClusterCIDRObject>();
  readonly statuses = new Map<string, ClusterCIDRStatus>();
  readonly #watchers = new Set<ClusterCIDRHandlers>();
  #version = 1;

  /** Creates or replaces an object; watchers see it. */
  put(object: Omit<ClusterCIDRObject, 'resourceVersion' | 'uid' | 'generation' | 'finalizers'> & Partial<ClusterCIDRObject>): ClusterCIDRObject {
    const stored: ClusterCIDRObject = {
      uid: `uid-${object.name}`,
      generation: 1,
      finalizers: [],
      ...object,
      resourceVersion: String(++this.#version),
    };
    this.objects.set(stored.name, stored);
    for (const w of this.#watchers) w.changed(stored);
    return stored;
  }

  /** Deletes as the API server does: marked while finalizers remain, gone once none do. */
  delete(name: string): void {
    const object = this.objects.get(name);
    if (!object) return;
    if (object.finalizers.length === 0) return this.#remove(name);
    this.put({ ...object, deletionTimestamp: object.deletionTimestamp ?? '2025-01-01T12:00:00Z' });
  }

  async watch(handlers: ClusterCIDRHandlers, signal: AbortSignal): Promise<void> {
    handlers.listed([...this.objects.values()]);
    this.#watchers.add(handlers);
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    this.#watchers.delete(handlers);
  }

  async setFinalizers(name: string, resourceVersion: string, finalizers: readonly string[]): Promise<void> {
    const object = this.objects.get(name);
    if (!object || object.resourceVersion !== resourceVersion) throw new Error(`ClusterCIDR ${name} changed`);
    if (object.deletionTimestamp !== undefined && finalizers.length === 0) return this.#remove(name);
    this.put({ ...object, finalizers });
  }

  async writeStatus(name: string, status: ClusterCIDRStatus): Promise<void> {
    if (!this.objects.has(name)) throw new Error(`ClusterCIDR ${name} not found`);
    this.statuses.set(name, status);
  }

  #remove(name: string): void {
    this.objects.delete(name);
    for (const w of this.#watchers) w.deleted(name);
  }
}
