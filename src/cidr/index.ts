// The CIDR toolkit's public surface: parse/format CIDRs and map node subnets to indices and back.
// Nothing here knows about Kubernetes or allocation; the allocator builds on it.

export {
  CidrParseError,
  canonicalCidr,
  cidrOf,
  contains,
  formatAddress,
  formatCidr,
  lastAddress,
  makeCidr,
  overlaps,
  parseCidr,
  sameCidr,
  subnetsOf,
  tryParseCidr,
  type Cidr,
  type IpFamily,
} from './cidr.js';
export { MAX_INDEX_BITS, SubnetCodec, type IndexSpan } from './subnets.js';
