// ConfigMaps in memory behind the ConfigMapStore interface, with the API server's optimistic concurrency:
// a write names the resourceVersion it read, and a stale one fails with a conflict.

import { ConfigMapConflictError, type ConfigMapData, type ConfigMapStore } from '../../../src/controller/ports.js';

export class MemoryConfigMaps implements ConfigMapStore {
  readonly maps = new Map<string, ConfigMapData>();
  #version = 0;
  writes = 0;

  set(name: string, data: Record<string, string>): ConfigMapData {
    const cm = { name, uid: `${name}-uid`, resourceVersion: String(++this.#version), data };
    this.maps.set(name, cm);
    return cm;
  }
  read(name: string): Promise<ConfigMapData | undefined> {
    return Promise.resolve(this.maps.get(name));
  }
  write(name: string, data: Record<string, string>, resourceVersion: string | undefined, _signal?: AbortSignal): Promise<string> {
    if (this.maps.get(name)?.resourceVersion !== resourceVersion) return Promise.reject(new ConfigMapConflictError(name));
    this.writes++;
    return Promise.resolve(this.set(name, data).resourceVersion);
  }
  /** Delivers the current object once, as a list would. */
  watch(name: string, onChange: (cm: ConfigMapData | undefined) => void): Promise<void> {
    onChange(this.maps.get(name));
    return Promise.resolve();
  }
}
