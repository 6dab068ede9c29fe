// The Kubernetes adapters: client factory, kubeconfig loading, and implementations of the controller's ports.
// Everything here talks to the API server; the controller itself only sees NodeSource, NodeWriter and EventSink.

export { KubeConfigError, loadKubeConfig, type KubeConfigEnvironment, type KubeConfigSource } from './config.js';
export { type ClusterAccess, type Credentials, type TlsMaterial } from './access.js';
export {
  createKubeClient,
  packageVersion,
  type KubeClient,
  type KubeClientOptions,
  type KubeRequest,
  type RestClient,
} from './client.js';
export { RequestTimeoutError, WriteFencedError } from './transport.js';
export { ApiError, apiFailure, describeKubeError, type ApiFailure } from './errors.js';
export { KubeNodeWriter, patchFailure, type KubeNodeWriterOptions } from './node-writer.js';
export { KubeEventSink, type EventOutcome, type KubeEventSinkOptions } from './event-sink.js';
export { KubeNodeSource, type KubeNodeSourceOptions } from './node-source.js';
