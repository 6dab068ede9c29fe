// Where requests go and what they carry: the API server URL, TLS material and authentication headers.
// Plain data, so the process never needs a Kubernetes client library to send a request.

import { readFile } from 'node:fs/promises';

/** What a TLS connection to the API server uses; strings are PEM. */
export interface TlsMaterial {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  /** false only with insecure-skip-tls-verify. */
  readonly rejectUnauthorized?: boolean;
  /** tls-server-name: the name the server's certificate must carry, when not the URL's host. */
  readonly servername?: string;
}

export interface Credentials {
  readonly tls: TlsMaterial;
  /** Authorization, Impersonate-User and the like, sent on every request. */
  readonly headers: Readonly<Record<string, string>>;
}

export interface ClusterAccess {
  /** The API server's base URL. */
  readonly server: string;
  /** An http(s) proxy every connection goes through (the kubeconfig's proxy-url). */
  readonly proxyUrl?: string;
  /** The credentials for the next request. */
  credentials(): Promise<Credentials>;
  /**
   * Called after a 401: gets the credential anew (a rotated token, a new exec credential). True when
   * it changed, so that the refused request is worth sending once more.
   */
  renew(): Promise<boolean>;
}

/** Credentials that never change: a static token, a client certificate, or none. */
export function fixedAccess(server: string, credentials: Credentials, proxyUrl?: string): ClusterAccess {
  return {
    server,
    ...(proxyUrl !== undefined ? { proxyUrl } : {}),
    credentials: () => Promise.resolve(credentials),
    renew: () => Promise.resolve(false),
  };
}

/**
 * A bearer token read from a file that the kubelet rotates (a projected service-account token):
 * re-read when a minute old, like client-go, and at once after a 401.
 */
export class TokenFileAccess implements ClusterAccess {
  readonly server: string;
  readonly #tls: TlsMaterial;
  readonly #tokenFile: string;
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  #token: { value: string; readAt: number } | undefined;

  constructor(options: { server: string; tls: TlsMaterial; tokenFile: string; maxAgeMs?: number; now?: () => number }) {
    this.server = options.server;
    this.#tls = options.tls;
    this.#tokenFile = options.tokenFile;
    this.#maxAgeMs = options.maxAgeMs ?? 60_000;
    this.#now = options.now ?? (() => performance.now());
  }

  async credentials(): Promise<Credentials> {
    const token = this.#token;
    const value = token !== undefined && this.#now() - token.readAt < this.#maxAgeMs ? token.value : await this.#read();
    return { tls: this.#tls, headers: value === '' ? {} : { Authorization: `Bearer ${value}` } };
  }

  async renew(): Promise<boolean> {
    const before = this.#token?.value;
    try {
      return (await this.#read()) !== before;
    } catch {
      return false;
    }
  }

  async #read(): Promise<string> {
    try {
      const value = (await readFile(this.#tokenFile, 'utf8')).trim();
      this.#token = { value, readAt: this.#now() };
      return value;
    } catch (err) {
      // A token read before stays usable: a failed re-read is not worth failing a request for.
      if (this.#token !== undefined) return this.#token.value;
      throw err;
    }
  }
}

/** What one resolution of a kubeconfig gives. */
export interface Resolved {
  readonly server: string;
  readonly proxyUrl?: string;
  readonly credentials: Credentials;
}

/**
 * Credentials that only a fresh resolution can update (exec plugins, auth providers): resolved again
 * after a 401, once for all requests refused at the same time.
 */
export class ResolvingAccess implements ClusterAccess {
  readonly server: string;
  readonly proxyUrl?: string;
  readonly #resolve: () => Promise<Resolved>;
  #credentials: Credentials;
  #renewing: Promise<boolean> | undefined;

  constructor(first: Resolved, resolve: () => Promise<Resolved>) {
    this.server = first.server;
    if (first.proxyUrl !== undefined) this.proxyUrl = first.proxyUrl;
    this.#credentials = first.credentials;
    this.#resolve = resolve;
  }

  credentials(): Promise<Credentials> {
    return Promise.resolve(this.#credentials);
  }

  renew(): Promise<boolean> {
    this.#renewing ??= this.#renew().finally(() => {
      this.#renewing = undefined;
    });
    return this.#renewing;
  }

  async #renew(): Promise<boolean> {
    try {
      const next = (await this.#resolve()).credentials;
      const changed = JSON.stringify(next) !== JSON.stringify(this.#credentials);
      this.#credentials = next;
      return changed;
    } catch {
      return false;
    }
  }
}
