// How the podCIDRs nodes already carry are judged: who holds a range first, and what is wrong with a CIDR.
// Shared by the reconciler's rebuild and the read-only audit, so both report exactly the same conflicts.

import { CidrOutOfRangeError } from '../allocator/errors.js';
import type { PodCidrAllocator } from '../allocator/types.js';
import { CidrParseError, formatCidr, sameCidr, tryParseCidr, type Cidr } from '../cidr/index.js';
import type { Claim, ClaimIndex } from './ownership.js';

/** What claiming needs of an index: the audit passes one that holds nothing when no two claims can overlap. */
export type ClaimLookup = Pick<ClaimIndex, 'overlapping' | 'add'>;

/** An index that holds nothing: claiming through it only occupies, and judges no overlap. */
export const NO_OVERLAPS: ClaimLookup = { overlapping: () => [], add: () => undefined };

/** What claiming one podCIDR text found; `claim` is present once the CIDR is occupied and indexed. */
export type ClaimOutcome =
  | { readonly kind: 'owned'; readonly claim: Claim }
  | { readonly kind: 'out-of-range'; readonly detail: string }
  /** claim: the network a lenient reader takes the text for (host bits, leading zeros), held for the node. */
  | { readonly kind: 'malformed'; readonly detail: string; readonly claim?: Claim }
  | {
      readonly kind: 'duplicate' | 'overlap';
      readonly claim: Claim;
      /** The other nodes' claims sharing addresses with this one; they keep the range. */
      readonly holders: readonly Claim[];
      readonly detail: string;
    };

/**
 * The order in which nodes claim their podCIDRs; of overlapping ones the first holder keeps the
 * range: nodes patched by our field manager first, then name order (the API server's list order).
 * NodeInfo has no creation time; name order makes every reader pick the same holder whatever
 * order it lists nodes in.
 */
export function firstHolderOrder<T extends { readonly name: string; readonly podCIDRManager?: string }>(
  nodes: readonly T[],
  fieldManager: string | undefined,
): T[] {
  const rank = (n: T): number => (fieldManager !== undefined && n.podCIDRManager === fieldManager ? 0 : 1);
  return [...nodes].sort((a, b) => rank(a) - rank(b) || compareNames(a.name, b.name));
}

/**
 * Occupies `text` for `node` and indexes it unless it is malformed or outside every range. A CIDR
 * another node already holds is occupied and indexed too (shadowed): nothing a live node carries
 * may be handed out. Throws only what the allocator throws besides its range and parse errors.
 */
export function claimPodCIDR(
  index: ClaimLookup,
  allocator: Pick<PodCidrAllocator, 'occupy'>,
  node: { readonly name: string; readonly uid: string },
  text: string,
): ClaimOutcome {
  const cidr = tryParseCidr(text);
  if (!cidr) return claimMalformed(index, allocator, node, text);
  try {
    allocator.occupy(text);
  } catch (err) {
    if (err instanceof CidrOutOfRangeError) return { kind: 'out-of-range', detail: 'is outside every cluster CIDR' };
    if (err instanceof CidrParseError) return { kind: 'malformed', detail: 'is not a valid CIDR' };
    throw err;
  }
  const holders = index.overlapping(cidr).filter((c) => c.node !== node.name);
  const claim: Claim = { node: node.name, uid: node.uid, text, cidr, state: holders.length > 0 ? 'shadowed' : 'owned' };
  index.add(claim);
  if (holders.length === 0) return { kind: 'owned', claim };
  const kind = holders.some((c) => sameCidr(c.cidr, cidr)) ? 'duplicate' : 'overlap';
  const relation = kind === 'duplicate' ? 'is already the podCIDR of' : 'overlaps the podCIDR of';
  const names = [...new Set(holders.map((c) => `${c.node} (${c.text})`))].join(', ');
  return { kind, claim, holders, detail: `${relation} ${names}, which keeps it` };
}

/**
 * The API server accepts "10.0.1.7/24" and "010.000.001.000/24", and kubelet and CNI plugins read
 * them as 10.0.1.0/24. That network is reported and still held: handing it to another node would
 * put two nodes' pods in one range.
 */
function claimMalformed(
  index: ClaimLookup,
  allocator: Pick<PodCidrAllocator, 'occupy'>,
  node: { readonly name: string; readonly uid: string },
  text: string,
): ClaimOutcome {
  const detail = 'is not a valid CIDR (or has host bits set)';
  const cidr = readLeniently(text);
  if (!cidr) return { kind: 'malformed', detail };
  const network = formatCidr(cidr);
  try {
    allocator.occupy(network);
  } catch (err) {
    if (err instanceof CidrOutOfRangeError || err instanceof CidrParseError) return { kind: 'malformed', detail };
    throw err;
  }
  const holders = index.overlapping(cidr).filter((c) => c.node !== node.name);
  const claim: Claim = { node: node.name, uid: node.uid, text: network, cidr, state: holders.length > 0 ? 'shadowed' : 'owned' };
  index.add(claim);
  return { kind: 'malformed', detail: `${detail}; ${network}, as it reads, is held for it`, claim };
}

/** Like Go's ParseCIDRSloppy (the API server's validation): decimal leading zeros, host bits masked off. */
export function readLeniently(text: string): Cidr | undefined {
  const match = /^([^/]+)\/(\d{1,3})$/.exec(text);
  if (!match?.[1] || !match[2]) return undefined;
  const prefix = Number(match[2]);
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(match[1]);
  const address = v4 ? v4.slice(1).map(Number).join('.') : match[1].toLowerCase();
  const host = tryParseCidr(`${address}/${v4 ? 32 : 128}`);
  if (!host || prefix > host.bits) return undefined;
  const hostBits = BigInt(host.bits - prefix);
  return { ...host, base: (host.base >> hostBits) << hostBits, prefix };
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
