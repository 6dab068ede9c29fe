import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { overlaps, parseCidr } from '../../../src/cidr/index.js';
import { ClaimIndex, type Claim } from '../../../src/controller/ownership.js';

function claim(node: string, text: string): Claim {
  return { node, uid: `${node}-uid`, text, cidr: parseCidr(text), state: 'owned' };
}

function names(claims: Claim[]): string[] {
  return claims.map((c) => c.node).sort();
}

describe('ClaimIndex', () => {
  it('finds claims that contain, equal or lie inside the queried range', () => {
    const index = new ClaimIndex();
    index.add(claim('wide', '10.0.0.0/23'));
    index.add(claim('same', '10.0.1.0/24'));
    index.add(claim('small', '10.0.1.128/25'));
    index.add(claim('apart', '10.0.2.0/24'));

    expect(names(index.overlapping(parseCidr('10.0.1.0/24')))).toEqual(['same', 'small', 'wide']);
    expect(names(index.overlapping(parseCidr('10.0.0.0/22')))).toEqual(['apart', 'same', 'small', 'wide']);
    expect(names(index.overlapping(parseCidr('10.0.3.0/24')))).toEqual([]);
  });

  it('keeps the families apart', () => {
    const index = new ClaimIndex();
    index.add(claim('v6', '::/64'));

    expect(index.overlapping(parseCidr('0.0.0.0/0'))).toEqual([]);
    expect(names(index.overlapping(parseCidr('::/0')))).toEqual(['v6']);
  });

  it('removes one claim object and leaves another on the same range', () => {
    const index = new ClaimIndex();
    const first = claim('a', 'fd00:0:0:1::/64');
    const second = claim('b', 'fd00:0:0:1::/64');
    index.add(first);
    index.add(second);

    expect(index.remove(first)).toBe(true);
    expect(index.remove(first)).toBe(false);
    expect(names(index.overlapping(parseCidr('fd00:0:0:1::/64')))).toEqual(['b']);
    expect(index.size).toBe(1);
  });

  it('answers overlap queries exactly like a scan of every claim', () => {
    const cidr = fc
      .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 20, max: 28 }))
      .map(([third, prefix]) => {
        const parsed = parseCidr(`10.0.${third}.0/24`);
        const base = parsed.base & ~((1n << BigInt(32 - prefix)) - 1n);
        return { ...parsed, base, prefix };
      });
    fc.assert(
      fc.property(fc.array(cidr, { maxLength: 30 }), fc.array(fc.nat()), cidr, (held, removals, query) => {
        const index = new ClaimIndex();
        const claims = held.map((c, i): Claim => ({ node: `n${i}`, uid: `u${i}`, text: '', cidr: c, state: 'owned' }));
        for (const c of claims) index.add(c);
        // Removed in an arbitrary order, so ranges go from several claims to one and to none.
        for (const r of removals) {
          const [gone] = claims.splice(r % Math.max(1, claims.length), 1);
          if (gone) expect(index.remove(gone)).toBe(true);
        }
        const expected = claims.filter((c) => overlaps(c.cidr, query)).map((c) => c.node).sort();
        expect(names(index.overlapping(query))).toEqual(expected);
        expect([...index.all()].map((c) => c.node).sort()).toEqual(claims.map((c) => c.node).sort());
        expect(index.size).toBe(claims.length);
      }),
    );
  });
});
