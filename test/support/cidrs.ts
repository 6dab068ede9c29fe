// Parsed CIDRs from text, for tests that hand the allocator reserved or service ranges.

import { parseCidr, type Cidr } from '../../src/cidr/index.js';

export function cidrs(...texts: string[]): Cidr[] {
  return texts.map((text) => parseCidr(text));
}
