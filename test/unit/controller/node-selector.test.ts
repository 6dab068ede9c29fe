// A ClusterCIDR's nodeSelector as Kubernetes reads a Pod's node affinity: operators, terms, fields,
// the specificity count the pool order starts from, and the problems validation reports.
import { describe, expect, it } from 'vitest';
import {
  matchesNode,
  matchingRequirements,
  selectorText,
  validateNodeSelector,
  type NodeSelector,
  type NodeSelectorRequirement,
  type SelectableNode,
} from '../../../src/controller/node-selector.js';

const node = (labels: Record<string, string>, name = 'node-1'): SelectableNode => ({ name, labels });
const labelsOnly = (...matchExpressions: NodeSelectorRequirement[]): NodeSelector => ({
  nodeSelectorTerms: [{ matchExpressions }],
});
const fieldsOnly = (...matchFields: NodeSelectorRequirement[]): NodeSelector => ({ nodeSelectorTerms: [{ matchFields }] });

describe('matchesNode on labels', () => {
  it.each<[string, NodeSelectorRequirement, Record<string, string>, boolean]>([
    ['In matches a label whose value is listed', { key: 'zone', operator: 'In', values: ['a', 'b'] }, { zone: 'b' }, true],
    ['In refuses a label whose value is not listed', { key: 'zone', operator: 'In', values: ['a'] }, { zone: 'c' }, false],
    ['In refuses a node without the label', { key: 'zone', operator: 'In', values: ['a'] }, {}, false],
    ['In matches an empty value when it is listed', { key: 'zone', operator: 'In', values: [''] }, { zone: '' }, true],
    ['NotIn refuses a label whose value is listed', { key: 'zone', operator: 'NotIn', values: ['a'] }, { zone: 'a' }, false],
    ['NotIn matches a label whose value is not listed', { key: 'zone', operator: 'NotIn', values: ['a'] }, { zone: 'b' }, true],
    ['NotIn matches a node without the label', { key: 'zone', operator: 'NotIn', values: ['a'] }, {}, true],
    ['Exists matches a label with any value, even empty', { key: 'gpu', operator: 'Exists' }, { gpu: '' }, true],
    ['Exists refuses a node without the label', { key: 'gpu', operator: 'Exists' }, { other: 'x' }, false],
    ['DoesNotExist matches a node without the label', { key: 'gpu', operator: 'DoesNotExist' }, {}, true],
    ['DoesNotExist refuses a node with the label', { key: 'gpu', operator: 'DoesNotExist' }, { gpu: 'x' }, false],
    ['Gt matches a larger integer', { key: 'cores', operator: 'Gt', values: ['8'] }, { cores: '16' }, true],
    ['Gt refuses an equal integer', { key: 'cores', operator: 'Gt', values: ['8'] }, { cores: '8' }, false],
    ['Gt compares numbers, not text', { key: 'cores', operator: 'Gt', values: ['9'] }, { cores: '10' }, true],
    ['Gt reads leading zeros as Go does', { key: 'cores', operator: 'Gt', values: ['6'] }, { cores: '007' }, true],
    ['Gt reads a signed bound', { key: 'cores', operator: 'Gt', values: ['-1'] }, { cores: '0' }, true],
    ['Gt refuses a label that is not an integer', { key: 'cores', operator: 'Gt', values: ['1'] }, { cores: '2x' }, false],
    ['Gt refuses a decimal label', { key: 'cores', operator: 'Gt', values: ['1'] }, { cores: '2.5' }, false],
    ['Gt refuses a bound that is not an integer', { key: 'cores', operator: 'Gt', values: ['one'] }, { cores: '2' }, false],
    ['Gt refuses a label beyond 64 bits', { key: 'cores', operator: 'Gt', values: ['1'] }, { cores: '9223372036854775808' }, false],
    ['Gt accepts the largest 64-bit label', { key: 'cores', operator: 'Gt', values: ['1'] }, { cores: '9223372036854775807' }, true],
    ['Gt refuses two bounds', { key: 'cores', operator: 'Gt', values: ['1', '2'] }, { cores: '5' }, false],
    ['Gt refuses no bound', { key: 'cores', operator: 'Gt', values: [] }, { cores: '5' }, false],
    ['Gt refuses a node without the label', { key: 'cores', operator: 'Gt', values: ['1'] }, {}, false],
    ['Lt matches a smaller integer', { key: 'cores', operator: 'Lt', values: ['8'] }, { cores: '4' }, true],
    ['Lt refuses an equal integer', { key: 'cores', operator: 'Lt', values: ['8'] }, { cores: '8' }, false],
    ['Lt refuses a label that is not an integer', { key: 'cores', operator: 'Lt', values: ['8'] }, { cores: 'few' }, false],
    ['Lt refuses a node without the label', { key: 'cores', operator: 'Lt', values: ['8'] }, {}, false],
    ['an unknown operator matches nothing', { key: 'zone', operator: 'Equals', values: ['a'] }, { zone: 'a' }, false],
    ['In without values matches nothing', { key: 'zone', operator: 'In', values: [] }, { zone: 'a' }, false],
    ['NotIn without values matches nothing, as Kubernetes drops the term', { key: 'zone', operator: 'NotIn' }, {}, false],
    ['Exists with values matches nothing', { key: 'gpu', operator: 'Exists', values: ['x'] }, { gpu: 'x' }, false],
    ['DoesNotExist with values matches nothing', { key: 'gpu', operator: 'DoesNotExist', values: ['x'] }, {}, false],
    ['Exists does not see Object.prototype members as labels', { key: 'constructor', operator: 'Exists' }, {}, false],
    ['DoesNotExist holds for a key named like a prototype member', { key: 'toString', operator: 'DoesNotExist' }, {}, true],
  ])('%s', (_, requirement, labels, expected) => {
    expect(matchesNode(labelsOnly(requirement), node(labels))).toBe(expected);
  });
});

describe('matchesNode on fields', () => {
  it.each<[string, NodeSelectorRequirement, boolean]>([
    ['In on metadata.name matches the node of that name', { key: 'metadata.name', operator: 'In', values: ['node-1'] }, true],
    ['In on metadata.name refuses another node', { key: 'metadata.name', operator: 'In', values: ['node-2'] }, false],
    ['NotIn on metadata.name refuses the node of that name', { key: 'metadata.name', operator: 'NotIn', values: ['node-1'] }, false],
    ['NotIn on metadata.name matches another node', { key: 'metadata.name', operator: 'NotIn', values: ['node-2'] }, true],
    ['In with two names matches nothing, as Kubernetes allows one', { key: 'metadata.name', operator: 'In', values: ['node-1', 'node-2'] }, false],
    ['a field other than metadata.name matches nothing', { key: 'metadata.uid', operator: 'NotIn', values: ['x'] }, false],
    ['Exists on a field matches nothing', { key: 'metadata.name', operator: 'Exists' }, false],
    ['a field requirement does not read labels', { key: 'metadata.name', operator: 'In', values: ['labelled'] }, false],
  ])('%s', (_, requirement, expected) => {
    expect(matchesNode(fieldsOnly(requirement), node({ 'metadata.name': 'labelled' }, 'node-1'))).toBe(expected);
  });
});

describe('matchesNode on terms', () => {
  const zoneA: NodeSelectorRequirement = { key: 'zone', operator: 'In', values: ['a'] };
  const gpu: NodeSelectorRequirement = { key: 'gpu', operator: 'Exists' };

  it('matches every node without a selector', () => {
    expect(matchesNode(undefined, node({}))).toBe(true);
  });

  it('matches no node with a selector of no terms', () => {
    expect(matchesNode({ nodeSelectorTerms: [] }, node({ zone: 'a' }))).toBe(false);
  });

  it.each<[string, NodeSelector]>([
    ['with no lists', { nodeSelectorTerms: [{}] }],
    ['with empty lists', { nodeSelectorTerms: [{ matchExpressions: [], matchFields: [] }] }],
  ])('matches no node with an empty term %s', (_, selector) => {
    expect(matchesNode(selector, node({ zone: 'a' }))).toBe(false);
  });

  it('matches when any one term matches', () => {
    const selector: NodeSelector = { nodeSelectorTerms: [{ matchExpressions: [gpu] }, { matchExpressions: [zoneA] }] };
    expect(matchesNode(selector, node({ zone: 'a' }))).toBe(true);
    expect(matchesNode(selector, node({ zone: 'b' }))).toBe(false);
  });

  it('matches a term only when every requirement in it holds', () => {
    const selector = labelsOnly(zoneA, gpu);
    expect(matchesNode(selector, node({ zone: 'a', gpu: '1' }))).toBe(true);
    expect(matchesNode(selector, node({ zone: 'a' }))).toBe(false);
  });

  it('needs both the labels and the fields of a term to hold', () => {
    const selector: NodeSelector = {
      nodeSelectorTerms: [{ matchExpressions: [zoneA], matchFields: [{ key: 'metadata.name', operator: 'In', values: ['node-1'] }] }],
    };
    expect(matchesNode(selector, node({ zone: 'a' }, 'node-1'))).toBe(true);
    expect(matchesNode(selector, node({ zone: 'a' }, 'node-2'))).toBe(false);
    expect(matchesNode(selector, node({ zone: 'b' }, 'node-1'))).toBe(false);
  });

  it('lets a valid term match beside an invalid one', () => {
    const selector: NodeSelector = {
      nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'Bogus' }] }, { matchExpressions: [zoneA] }],
    };
    expect(matchesNode(selector, node({ zone: 'a' }))).toBe(true);
  });
});

describe('matchingRequirements', () => {
  const req = (key: string): NodeSelectorRequirement => ({ key, operator: 'Exists' });

  it('counts 0 for no selector', () => {
    expect(matchingRequirements(undefined, node({}))).toBe(0);
  });

  it('is undefined when no term matches', () => {
    expect(matchingRequirements(labelsOnly(req('a')), node({}))).toBeUndefined();
  });

  it('counts the requirements of the matching term with the most', () => {
    const selector: NodeSelector = {
      nodeSelectorTerms: [{ matchExpressions: [req('a')] }, { matchExpressions: [req('a'), req('b'), req('c')] }, { matchExpressions: [req('a'), req('b')] }],
    };
    expect(matchingRequirements(selector, node({ a: '', b: '', c: '' }))).toBe(3);
  });

  it('does not count a larger term that does not match', () => {
    const selector: NodeSelector = {
      nodeSelectorTerms: [{ matchExpressions: [req('a'), req('b'), req('c')] }, { matchExpressions: [req('a'), req('b')] }],
    };
    expect(matchingRequirements(selector, node({ a: '', b: '' }))).toBe(2);
  });

  it('counts field requirements with label requirements', () => {
    const selector: NodeSelector = {
      nodeSelectorTerms: [{ matchExpressions: [req('a')], matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: ['x'] }] }],
    };
    expect(matchingRequirements(selector, node({ a: '' }))).toBe(2);
  });
});

describe('validateNodeSelector', () => {
  it('finds nothing wrong with a selector using every operator correctly', () => {
    const selector: NodeSelector = {
      nodeSelectorTerms: [
        {
          matchExpressions: [
            { key: 'a', operator: 'In', values: ['x'] },
            { key: 'b', operator: 'NotIn', values: ['x', 'y'] },
            { key: 'c', operator: 'Exists' },
            { key: 'd', operator: 'DoesNotExist', values: [] },
            { key: 'e', operator: 'Gt', values: ['-3'] },
            { key: 'f', operator: 'Lt', values: ['0010'] },
          ],
          matchFields: [
            { key: 'metadata.name', operator: 'In', values: ['n1'] },
            { key: 'metadata.name', operator: 'NotIn', values: ['n2'] },
          ],
        },
        {},
      ],
    };
    expect(validateNodeSelector(selector)).toEqual([]);
  });

  it.each<[string, NodeSelectorRequirement, string]>([
    ['an unknown operator', { key: 'a', operator: 'Equals', values: ['x'] }, 'operator: "Equals" is not one of In, NotIn, Exists, DoesNotExist, Gt, Lt'],
    ['an operator in the wrong case', { key: 'a', operator: 'in', values: ['x'] }, 'operator: "in" is not one of In, NotIn, Exists, DoesNotExist, Gt, Lt'],
    ['In without values', { key: 'a', operator: 'In' }, 'values: must not be empty for In'],
    ['NotIn with an empty list', { key: 'a', operator: 'NotIn', values: [] }, 'values: must not be empty for NotIn'],
    ['Exists with values', { key: 'a', operator: 'Exists', values: ['x'] }, 'values: must be empty for Exists'],
    ['DoesNotExist with values', { key: 'a', operator: 'DoesNotExist', values: ['x'] }, 'values: must be empty for DoesNotExist'],
    ['Gt without a value', { key: 'a', operator: 'Gt' }, 'values: must hold exactly one integer for Gt, not 0 values'],
    ['Lt with two values', { key: 'a', operator: 'Lt', values: ['1', '2'] }, 'values: must hold exactly one integer for Lt, not 2 values'],
    ['Gt with a word', { key: 'a', operator: 'Gt', values: ['ten'] }, 'values: "ten" is not an integer (Gt compares 64-bit integers)'],
    ['Lt with a decimal', { key: 'a', operator: 'Lt', values: ['1.5'] }, 'values: "1.5" is not an integer (Lt compares 64-bit integers)'],
    ['Lt beyond 64 bits', { key: 'a', operator: 'Lt', values: ['-9223372036854775809'] }, 'values: "-9223372036854775809" is not an integer (Lt compares 64-bit integers)'],
    ['an empty key', { key: '', operator: 'Exists' }, 'key: must not be empty'],
  ])('reports %s on a label', (_, requirement, problem) => {
    expect(validateNodeSelector(labelsOnly(requirement))).toEqual([`nodeSelectorTerms[0].matchExpressions[0].${problem}`]);
  });

  it.each<[string, NodeSelectorRequirement, string]>([
    ['a key other than metadata.name', { key: 'spec.providerID', operator: 'In', values: ['x'] }, 'key: "spec.providerID" is not a node field a selector may use (only metadata.name)'],
    ['Exists on a field', { key: 'metadata.name', operator: 'Exists' }, 'operator: "Exists" cannot select on a field (only In, NotIn)'],
    ['Gt on a field', { key: 'metadata.name', operator: 'Gt', values: ['1'] }, 'operator: "Gt" cannot select on a field (only In, NotIn)'],
    ['In with two names', { key: 'metadata.name', operator: 'In', values: ['a', 'b'] }, 'values: must hold exactly one value for In on a field, not 2'],
    ['NotIn without a name', { key: 'metadata.name', operator: 'NotIn' }, 'values: must hold exactly one value for NotIn on a field, not 0'],
  ])('reports %s', (_, requirement, problem) => {
    expect(validateNodeSelector(fieldsOnly(requirement))).toEqual([`nodeSelectorTerms[0].matchFields[0].${problem}`]);
  });

  it('reports a selector without terms', () => {
    expect(validateNodeSelector({ nodeSelectorTerms: [] })).toEqual(['nodeSelectorTerms: must have at least one term']);
  });

  it('reports every problem at once, each at its own path', () => {
    const selector: NodeSelector = {
      nodeSelectorTerms: [
        { matchExpressions: [{ key: 'a', operator: 'In', values: ['x'] }, { key: 'b', operator: 'Exists', values: ['y'] }] },
        {
          matchExpressions: [{ key: 'c', operator: 'Near' }],
          matchFields: [{ key: 'metadata.uid', operator: 'Exists' }],
        },
      ],
    };
    expect(validateNodeSelector(selector)).toEqual([
      'nodeSelectorTerms[0].matchExpressions[1].values: must be empty for Exists',
      'nodeSelectorTerms[1].matchExpressions[0].operator: "Near" is not one of In, NotIn, Exists, DoesNotExist, Gt, Lt',
      'nodeSelectorTerms[1].matchFields[0].key: "metadata.uid" is not a node field a selector may use (only metadata.name)',
      'nodeSelectorTerms[1].matchFields[0].operator: "Exists" cannot select on a field (only In, NotIn)',
    ]);
  });
});

describe('selectorText', () => {
  it('is empty without a selector', () => {
    expect(selectorText(undefined)).toBe('');
  });

  it('writes every operator the way a label selector reads', () => {
    const selector = labelsOnly(
      { key: 'a', operator: 'In', values: ['y', 'x'] },
      { key: 'b', operator: 'NotIn', values: ['z'] },
      { key: 'c', operator: 'Exists' },
      { key: 'd', operator: 'DoesNotExist' },
      { key: 'e', operator: 'Gt', values: ['5'] },
      { key: 'f', operator: 'Lt', values: ['7'] },
    );
    expect(selectorText(selector)).toBe('!d,a in (x,y),b notin (z),c,e>5,f<7');
  });

  it('writes fields among the labels, by their key', () => {
    const selector: NodeSelector = {
      nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'Exists' }], matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n1'] }] }],
    };
    expect(selectorText(selector)).toBe('metadata.name in (n1),zone');
  });

  it('is the same for selectors that differ only in the order of terms, requirements and values', () => {
    const one: NodeSelector = {
      nodeSelectorTerms: [
        { matchExpressions: [{ key: 'a', operator: 'In', values: ['1', '2'] }, { key: 'b', operator: 'Exists' }] },
        { matchExpressions: [{ key: 'c', operator: 'DoesNotExist' }] },
      ],
    };
    const other: NodeSelector = {
      nodeSelectorTerms: [
        { matchExpressions: [{ key: 'c', operator: 'DoesNotExist' }] },
        { matchExpressions: [{ key: 'b', operator: 'Exists' }, { key: 'a', operator: 'In', values: ['2', '1'] }] },
      ],
    };
    expect(selectorText(one)).toBe('!c || a in (1,2),b');
    expect(selectorText(other)).toBe(selectorText(one));
  });

  it('tells apart selectors that differ in meaning', () => {
    expect(selectorText(labelsOnly({ key: 'a', operator: 'In', values: ['1'] }))).not.toBe(
      selectorText(labelsOnly({ key: 'a', operator: 'NotIn', values: ['1'] })),
    );
  });
});
