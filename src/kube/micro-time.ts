// metav1.MicroTime on the wire: RFC 3339 with exactly six fractional digits.
// The API server rejects the three digits of Date.toISOString() in Lease and Event times.

/** 2026-12-01T10:00:00.123000Z for a Date at .123 seconds. */
export function microTime(date: Date = new Date()): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
