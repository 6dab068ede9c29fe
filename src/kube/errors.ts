// ApiError for answers other than success, with the metav1.Status reason and message when the body is one.
// Classifies network failures into "the request may have reached the server" and "it did not".

import { RequestTimeoutError } from './transport.js';

/** The API server answered with an error status; code is the HTTP status. */
export class ApiError extends Error {
  readonly code: number;
  readonly reason: string | undefined;
  readonly statusMessage: string | undefined;

  constructor(code: number, body: string | Uint8Array) {
    const status = parseStatus(typeof body === 'string' ? body : Buffer.from(body).toString('utf8'));
    super(`HTTP ${code}${status.reason ? ` ${status.reason}` : ''}${status.message ? `: ${status.message}` : ''}`);
    this.name = 'ApiError';
    this.code = code;
    this.reason = status.reason;
    this.statusMessage = status.message;
  }
}

/** The parts of a failed API call worth logging: HTTP code and the metav1.Status reason and message. */
export interface ApiFailure {
  readonly code: number;
  readonly reason?: string;
  readonly message?: string;
}

/** The HTTP failure behind err, when err is an ApiError. */
export function apiFailure(err: unknown): ApiFailure | undefined {
  if (!(err instanceof ApiError)) return undefined;
  return { code: err.code, reason: err.reason, message: err.statusMessage };
}

/** reason and message of a metav1.Status given as JSON text or an object; {} when it is neither. */
export function parseStatus(body: unknown): { reason?: string; message?: string } {
  let value: unknown = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body);
    } catch {
      return {};
    }
  }
  if (typeof value !== 'object' || value === null) return {};
  const { reason, message } = value as Record<string, unknown>;
  return {
    reason: typeof reason === 'string' ? reason : undefined,
    message: typeof message === 'string' ? message : undefined,
  };
}

/**
 * Errors after which the request may or may not have been applied: our timeout, an abort, or a
 * connection that broke once the request could have been sent.
 */
export function isOutcomeUnknown(err: unknown): boolean {
  if (err instanceof RequestTimeoutError) return true;
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) return true;
  const code = networkCode(err);
  return code !== undefined && UNKNOWN_OUTCOME_CODES.has(code);
}

/** Connection broke mid-request (undici and libuv codes); refused or unresolvable hosts are not here: nothing was sent. */
const UNKNOWN_OUTCOME_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_ABORTED',
]);

/** The system or undici error code, looking through fetch's "fetch failed" TypeError to its cause. */
export function networkCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    if (typeof e !== 'object') return undefined;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** One line for logs: "HTTP 409 Conflict: message", or the error's name, code and first line. */
export function describeKubeError(err: unknown): string {
  const api = apiFailure(err);
  if (api !== undefined) {
    return `HTTP ${api.code}${api.reason ? ` ${api.reason}` : ''}${api.message ? `: ${api.message}` : ''}`;
  }
  if (err instanceof Error) {
    const code = networkCode(err);
    const first = err.message.split('\n', 1)[0] ?? '';
    return `${err.name}${code ? ` ${code}` : ''}: ${first}`;
  }
  return String(err);
}
