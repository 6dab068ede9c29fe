// NodeWriter over the API server: one strategic-merge patch of spec.podCIDR + spec.podCIDRs, and fresh reads.
// Every failure becomes a PatchError whose kind tells the reconciler whether the write may have happened.

import * as k8s from '@kubernetes/client-node';
import { toNodeInfo } from '../controller/node-info.js';
import { type NodeInfo, type NodeWriter, PatchError, type PatchFailure } from '../controller/types.js';
import { apiFailure, describeKubeError, isOutcomeUnknown } from './errors.js';

/** The two calls used; a real CoreV1Api satisfies it. */
export type NodeApi = Pick<k8s.CoreV1Api, 'patchNode' | 'readNode'>;

export interface KubeNodeWriterOptions {
  /** Recorded in managedFields as the owner of podCIDRs. Default "podcidr-allocator". */
  readonly fieldManager?: string;
}

/**
 * Strategic merge patch, answered with the Node's metadata only: the reply is not used, and a whole
 * Node (status.images can be tens of KB) costs the server to encode and client-node milliseconds to
 * deserialize, per patch. The content type must be set: client-node would otherwise send a JSON Patch.
 */
const PATCH_OPTIONS = k8s.setHeaderOptions(
  'Accept',
  'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1',
  k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
);

export class KubeNodeWriter implements NodeWriter {
  readonly #api: NodeApi;
  readonly #fieldManager: string;

  constructor(api: NodeApi, options: KubeNodeWriterOptions = {}) {
    this.#api = api;
    this.#fieldManager = options.fieldManager ?? 'podcidr-allocator';
  }

  /**
   * Sets spec.podCIDR to podCIDRs[0] and spec.podCIDRs to podCIDRs, as upstream's PatchNodeCIDRs does.
   */
  async patchPodCIDRs(name: string, podCIDRs: readonly string[]): Promise<void> {
    const first = podCIDRs[0];
    if (first === undefined) throw new PatchError('failed', `patch node ${name}: no podCIDRs given`);
    const body = { spec: { podCIDR: first, podCIDRs: [...podCIDRs] } };
    try {
      await this.#api.patchNode({ name, body, fieldManager: this.#fieldManager }, PATCH_OPTIONS);
    } catch (err) {
      throw new PatchError(
        patchFailure(err),
        `patch node ${name} podCIDRs [${podCIDRs.join(',')}]: ${describeKubeError(err)}`,
        { cause: err },
      );
    }
  }

  async getNode(name: string): Promise<NodeInfo | undefined> {
    try {
      return toNodeInfo(await this.#api.readNode({ name }));
    } catch (err) {
      if (apiFailure(err)?.code === 404) return undefined;
      throw new Error(`read node ${name}: ${describeKubeError(err)}`, { cause: err });
    }
  }
}

/**
 * 422 Invalid / 409 Conflict: the Node already has other podCIDRs (validation forbids changing them).
 * 504 and Timeout reasons, aborts and connections lost mid-request: the write may have happened.
 */
export function patchFailure(err: unknown): PatchFailure {
  const api = apiFailure(err);
  if (api !== undefined) {
    if (api.code === 422 || api.code === 409) return 'conflict';
    if (api.code === 404) return 'not-found';
    if (api.code === 504 || api.reason === 'Timeout' || api.reason === 'ServerTimeout') return 'timeout';
    return 'failed';
  }
  return isOutcomeUnknown(err) ? 'timeout' : 'failed';
}
