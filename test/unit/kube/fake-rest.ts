// A stand-in for KubeClient.request: records each call and answers from a script.

import type { KubeRequest, RawResponse, RestClient } from '../../../src/kube/client.js';
import type { HttpMethod } from '../../../src/kube/transport.js';

export interface RestCall {
  readonly method: HttpMethod;
  readonly path: string;
  readonly request: KubeRequest;
}

export class FakeRest implements RestClient {
  readonly calls: RestCall[] = [];
  answer: (call: RestCall) => RawResponse | Promise<RawResponse> = () => json(200, {});

  request(method: HttpMethod, path: string, request: KubeRequest = {}): Promise<RawResponse> {
    const call = { method, path, request };
    this.calls.push(call);
    return Promise.resolve().then(() => this.answer(call));
  }

  /** The JSON body of the call at index. */
  body(index: number): unknown {
    const body = this.calls[index]?.request.body;
    return typeof body === 'string' ? JSON.parse(body) : body;
  }
}

export function json(status: number, body: unknown): RawResponse {
  return { status, contentType: 'application/json', body: Buffer.from(JSON.stringify(body)) };
}

/** A metav1.Status failure as the API server sends it. */
export function status(code: number, reason: string, message = 'msg'): RawResponse {
  return json(code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code });
}
