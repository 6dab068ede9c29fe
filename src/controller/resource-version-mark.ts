// How far a watch has come, against a target resourceVersion read from the API server.
// resourceVersions are compared as the decimal integers kube-apiserver backed by etcd gives out (each
// write a higher one, one sequence across a resource); any other form is never taken to have arrived.

const DECIMAL = /^(0|[1-9]\d*)$/;

function parse(resourceVersion: string): bigint | undefined {
  return DECIMAL.test(resourceVersion) ? BigInt(resourceVersion) : undefined;
}

/** True when both are comparable and a is at or past b; false whenever either cannot be compared. */
export function isAtOrPast(a: string, b: string): boolean {
  const left = parse(a);
  const right = parse(b);
  return left !== undefined && right !== undefined && left >= right;
}

/** Resolves its waiters once a resourceVersion at or past the target has been seen. */
export class ResourceVersionMark {
  #target: bigint | undefined;
  #highest: bigint | undefined;
  #last = '';
  #arrived = false;
  readonly #waiters = new Set<(reached: boolean) => void>();

  /** The target; false when it cannot be compared, and then nothing ever arrives. */
  setTarget(resourceVersion: string): boolean {
    this.#target = parse(resourceVersion);
    this.#check();
    return this.#target !== undefined;
  }

  /** Records a resourceVersion the watch delivered (in order: it is the last one seen). */
  advance(resourceVersion: string): void {
    if (resourceVersion === '') return;
    this.#last = resourceVersion;
    const value = parse(resourceVersion);
    if (value !== undefined && (this.#highest === undefined || value > this.#highest)) this.#highest = value;
    this.#check();
  }

  /** The last resourceVersion seen, to watch on from; '' when none. */
  last(): string {
    return this.#last;
  }

  isReached(): boolean {
    return this.#arrived;
  }

  /** True once the target has been reached; false if signal aborts first. */
  reached(signal: AbortSignal): Promise<boolean> {
    if (this.#arrived) return Promise.resolve(true);
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (reached: boolean): void => {
        this.#waiters.delete(done);
        signal.removeEventListener('abort', aborted);
        resolve(reached);
      };
      const aborted = (): void => done(false);
      this.#waiters.add(done);
      signal.addEventListener('abort', aborted, { once: true });
    });
  }

  #check(): void {
    if (this.#arrived || this.#target === undefined || this.#highest === undefined) return;
    if (this.#highest < this.#target) return;
    this.#arrived = true;
    for (const done of [...this.#waiters]) done(true);
  }
}
