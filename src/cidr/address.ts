// Hand-rolled IPv4/IPv6 address parsing and formatting on 32-bit words (no objects, no bigint).
// Strict: dotted quads without leading zeros, hex groups of 1-4 digits, at most one "::", no zones.

// Measured on the project's 2-core build machine: ip-address 10.x takes about 4 µs (IPv4) and
// 10 µs (IPv6) to parse and 7 µs to format an IPv6 address, more than a whole upstream allocation;
// the functions here take 70-170 ns. The tests check them against ip-address on random input.

/** Parses a dotted quad in s[start, end); returns it as an unsigned 32-bit number, or -1. */
export function parseIPv4(s: string, start: number, end: number): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      // "0" followed by another digit: a leading zero, which some parsers read as octal.
      if (digits > 0 && octet === 0) return -1;
      octet = octet * 10 + (c - 48);
      digits++;
      if (octet > 255) return -1;
    } else if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else {
      return -1;
    }
  }
  if (digits === 0 || dots !== 3) return -1;
  return value * 256 + octet;
}

/** Output buffer for the formatters: the longest text is 39 characters plus "/128". */
const text = Buffer.alloc(48);

/**
 * Dotted quad, plus "/prefix" when given, written byte by byte into one flat string. A string
 * concatenated from pieces is cheaper to build but is copied again when first read, by then
 * usually in the old generation: in the release+allocate benchmark that costs more than it saves.
 */
export function formatIPv4(value: number, prefix = -1): string {
  let n = 0;
  for (let shift = 24; shift >= 0; shift -= 8) {
    const octet = (value >>> shift) & 255;
    if (octet >= 100) text[n++] = 48 + Math.floor(octet / 100);
    if (octet >= 10) text[n++] = 48 + (Math.floor(octet / 10) % 10);
    text[n++] = 48 + (octet % 10);
    if (shift > 0) text[n++] = 46;
  }
  return finish(n, prefix);
}

/** Appends "/prefix" when prefix >= 0 and returns text[0, end) as a string. */
function finish(end: number, prefix: number): string {
  let n = end;
  if (prefix >= 0) {
    text[n++] = 47;
    if (prefix >= 100) text[n++] = 48 + Math.floor(prefix / 100);
    if (prefix >= 10) text[n++] = 48 + (Math.floor(prefix / 10) % 10);
    text[n++] = 48 + (prefix % 10);
  }
  return text.toString('latin1', 0, n);
}

const groups = new Uint16Array(8);

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const lower = c | 32;
  if (lower >= 97 && lower <= 102) return lower - 87;
  return -1;
}

/**
 * Parses an IPv6 address in s[start, end) into four big-endian 32-bit words in `out`.
 * Returns false (leaving `out` undefined) when the text is not a valid address.
 */
export function parseIPv6(s: string, start: number, end: number, out: Uint32Array): boolean {
  let n = 0;
  let gap = -1;
  let i = start;
  if (i + 1 < end && s.charCodeAt(i) === 58 && s.charCodeAt(i + 1) === 58) {
    gap = 0;
    i += 2;
  }
  while (i < end) {
    let value = 0;
    let j = i;
    while (j < end && j - i < 5) {
      const h = hexValue(s.charCodeAt(j));
      if (h < 0) break;
      value = value * 16 + h;
      j++;
    }
    if (j < end && s.charCodeAt(j) === 46) {
      // Trailing dotted quad (e.g. ::ffff:10.0.0.1): it fills the last two groups.
      const v4 = parseIPv4(s, i, end);
      if (v4 < 0 || n > 6) return false;
      groups[n++] = v4 >>> 16;
      groups[n++] = v4 & 0xffff;
      i = end;
      break;
    }
    if (j === i || j - i > 4 || n === 8) return false;
    groups[n++] = value;
    if (j === end) {
      i = end;
      break;
    }
    if (s.charCodeAt(j) !== 58) return false;
    j++;
    if (j < end && s.charCodeAt(j) === 58) {
      if (gap >= 0) return false;
      gap = n;
      j++;
    } else if (j === end) {
      return false;
    }
    i = j;
  }
  if (gap < 0) {
    if (n !== 8) return false;
  } else {
    // "::" stands for at least one zero group.
    if (n > 7) return false;
    const tail = n - gap;
    for (let k = 0; k < tail; k++) groups[7 - k] = groups[n - 1 - k] ?? 0;
    for (let k = gap; k < 8 - tail; k++) groups[k] = 0;
  }
  for (let k = 0; k < 4; k++) {
    out[k] = (((groups[2 * k] ?? 0) << 16) | (groups[2 * k + 1] ?? 0)) >>> 0;
  }
  return true;
}

const HEX_DIGITS = [48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 97, 98, 99, 100, 101, 102];

/**
 * RFC 5952 text: lowercase, no leading zeros, the first longest run of two or more zero groups as
 * "::". With `prefix`, "/prefix" is appended. Written into one flat string like formatIPv4.
 */
export function formatIPv6(words: Uint32Array, prefix = -1): string {
  for (let k = 0; k < 4; k++) {
    const w = words[k] ?? 0;
    groups[2 * k] = w >>> 16;
    groups[2 * k + 1] = w & 0xffff;
  }
  let bestStart = -1;
  let bestLength = 1;
  for (let k = 0; k < 8; ) {
    if (groups[k] !== 0) {
      k++;
      continue;
    }
    let e = k;
    while (e < 8 && groups[e] === 0) e++;
    if (e - k > bestLength) {
      bestStart = k;
      bestLength = e - k;
    }
    k = e;
  }
  let n = 0;
  for (let k = 0; k < 8; k++) {
    if (k === bestStart) {
      if (k === 0) text[n++] = 58;
      text[n++] = 58;
      k += bestLength - 1;
      continue;
    }
    const g = groups[k] ?? 0;
    if (g >= 0x1000) text[n++] = HEX_DIGITS[g >>> 12] ?? 0;
    if (g >= 0x100) text[n++] = HEX_DIGITS[(g >>> 8) & 15] ?? 0;
    if (g >= 0x10) text[n++] = HEX_DIGITS[(g >>> 4) & 15] ?? 0;
    text[n++] = HEX_DIGITS[g & 15] ?? 0;
    if (k < 7) text[n++] = 58;
  }
  return finish(n, prefix);
}
