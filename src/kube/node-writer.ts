// NodeWriter over the API server: one strategic-merge patch of spec.podCIDR + spec.podCIDRs, and fresh reads.
// Every failure becomes a PatchError whose kind tells the reconciler whether the write may have happened.

import type { V1Node } from '@kubernetes/client-node';
import { toNodeInfo } from './node-info.js';
import { type NodeInfo, type NodeWriter, PatchError, type PatchFailure } from '../controller/ports.js';
import { type RestClient, jsonBody } from './client.js';
import { apiFailure, describeKubeError, isOutcomeUnknown } from './errors.js';

export interface KubeNodeWriterOptions {
  /** Recorded in managedFields as the owner of podCIDRs. Default "podcidr-allocator". */
  readonly fieldManager?: string;
}

const STRATEGIC_MERGE_PATCH = 'application/strategic-merge-patch+json';
/**
 * The patch is answered with the Node's metadata only: the reply is not used, and a whole Node
 * (status.images can be tens of KB) costs the server to encode and us to read, per patch.
 */
const METADATA_ONLY = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';

export class KubeNodeWriter implements NodeWriter {
  readonly #api: RestClient;
  readonly #fieldManager: string;

  constructor(api: RestClient, options: KubeNodeWriterOptions = {}) {
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
      const response = await this.#api.request('PATCH', nodePath(name), {
        query: { fieldManager: this.#fieldManager },
        body,
        contentType: STRATEGIC_MERGE_PATCH,
        accept: METADATA_ONLY,
      });
      jsonBody(response);
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
      return toNodeInfo(jsonBody<V1Node>(await this.#api.request('GET', nodePath(name))));
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

function nodePath(name: string): string {
  return `/api/v1/nodes/${encodeURIComponent(name)}`;
}
