// What global-setup hands to integration test files through vitest's provide/inject.
// Plain serializable data only: workers rebuild clients from the kubeconfig path.

export type ControlPlaneInfo =
  | { available: true; kubeconfigPath: string; server: string; version: string; binDir: string }
  | { available: false; reason: string };

declare module 'vitest' {
  export interface ProvidedContext {
    controlPlane: ControlPlaneInfo;
  }
}
