// Go-style durations for flags ("15s", "1m30s", "500ms", "0"), parsed to milliseconds.
// Accepts exactly Go's time.ParseDuration syntax without a sign; never throws.

const unitMs: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3, // U+00B5 micro sign
  'μs': 1e-3, // U+03BC Greek mu; Go accepts both
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};

const whole = /^(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+$/;
const part = /(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)/g;

/** Milliseconds, or undefined when the text is not a duration. Negative durations are refused. */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  if (!whole.test(text)) return undefined;
  let total = 0;
  for (const [, amount, unit] of text.matchAll(part)) {
    const scale = unit === undefined ? undefined : unitMs[unit];
    if (amount === undefined || scale === undefined) return undefined;
    total += Number(amount) * scale;
  }
  return Number.isFinite(total) ? total : undefined;
}
