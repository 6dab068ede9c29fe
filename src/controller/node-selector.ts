// A core v1 NodeSelector (the one in a Pod's node affinity and a ClusterCIDR's spec) over plain data.
// Matching has Kubernetes' semantics and never throws: a requirement validation refuses never holds.

/** What Kubernetes accepts; `operator` below is a plain string because objects read back may hold anything. */
export type NodeSelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Gt' | 'Lt';

export interface NodeSelectorRequirement {
  readonly key: string;
  readonly operator: string;
  readonly values?: readonly string[];
}

/** Every requirement must hold; a term with none matches no node. */
export interface NodeSelectorTerm {
  /** On the node's labels. */
  readonly matchExpressions?: readonly NodeSelectorRequirement[];
  /** On the node's fields; Kubernetes knows only metadata.name, with In or NotIn and one value. */
  readonly matchFields?: readonly NodeSelectorRequirement[];
}

/** The terms are ORed; no terms match no node. */
export interface NodeSelector {
  readonly nodeSelectorTerms: readonly NodeSelectorTerm[];
}

/** What a selector reads of a Node. */
export interface SelectableNode {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

const OPERATORS: readonly string[] = ['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt'] satisfies NodeSelectorOperator[];
const NAME_FIELD = 'metadata.name';
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** True when the selector picks the node; no selector picks every node. */
export function matchesNode(selector: NodeSelector | undefined, node: SelectableNode): boolean {
  return matchingRequirements(selector, node) !== undefined;
}

/**
 * How specific the selector is for this node: the requirement count (labels and fields) of the
 * matching term that has the most, 0 without a selector, undefined when no term matches.
 */
export function matchingRequirements(selector: NodeSelector | undefined, node: SelectableNode): number | undefined {
  if (selector === undefined) return 0;
  let most: number | undefined;
  for (const term of selector.nodeSelectorTerms) {
    if (!termMatches(term, node)) continue;
    const count = requirementCount(term);
    if (most === undefined || count > most) most = count;
  }
  return most;
}

function requirementCount(term: NodeSelectorTerm): number {
  return (term.matchExpressions?.length ?? 0) + (term.matchFields?.length ?? 0);
}

function termMatches(term: NodeSelectorTerm, node: SelectableNode): boolean {
  if (requirementCount(term) === 0) return false;
  return (
    (term.matchExpressions ?? []).every((r) => labelHolds(r, node.labels)) &&
    (term.matchFields ?? []).every((r) => fieldHolds(r, node))
  );
}

function labelHolds(requirement: NodeSelectorRequirement, labels: Readonly<Record<string, string>>): boolean {
  // hasOwn: a label named like an Object.prototype member ("constructor") must not appear to exist.
  const value = Object.hasOwn(labels, requirement.key) ? labels[requirement.key] : undefined;
  const values = requirement.values ?? [];
  switch (requirement.operator) {
    case 'In':
      return value !== undefined && values.includes(value);
    case 'NotIn':
      return values.length > 0 && (value === undefined || !values.includes(value));
    case 'Exists':
      return values.length === 0 && value !== undefined;
    case 'DoesNotExist':
      return values.length === 0 && value === undefined;
    case 'Gt':
    case 'Lt': {
      const bound = values.length === 1 && values[0] !== undefined ? parseInt64(values[0]) : undefined;
      const actual = value === undefined ? undefined : parseInt64(value);
      if (bound === undefined || actual === undefined) return false;
      return requirement.operator === 'Gt' ? actual > bound : actual < bound;
    }
    default:
      return false;
  }
}

function fieldHolds(requirement: NodeSelectorRequirement, node: SelectableNode): boolean {
  const values = requirement.values ?? [];
  if (requirement.key !== NAME_FIELD || values.length !== 1) return false;
  if (requirement.operator === 'In') return node.name === values[0];
  if (requirement.operator === 'NotIn') return node.name !== values[0];
  return false;
}

/** A base-10 signed 64-bit integer as Go's strconv.ParseInt reads it (sign, digits, leading zeros), else undefined. */
function parseInt64(text: string): bigint | undefined {
  if (!/^[+-]?[0-9]+$/.test(text)) return undefined;
  const value = BigInt(text);
  return value < INT64_MIN || value > INT64_MAX ? undefined : value;
}

/** Every reason Kubernetes would refuse the selector, each with its path; empty when it is valid. */
export function validateNodeSelector(selector: NodeSelector): string[] {
  const problems: string[] = [];
  if (selector.nodeSelectorTerms.length === 0) problems.push('nodeSelectorTerms: must have at least one term');
  selector.nodeSelectorTerms.forEach((term, i) => {
    (term.matchExpressions ?? []).forEach((r, j) => {
      problems.push(...labelProblems(r).map((p) => `nodeSelectorTerms[${i}].matchExpressions[${j}].${p}`));
    });
    (term.matchFields ?? []).forEach((r, j) => {
      problems.push(...fieldProblems(r).map((p) => `nodeSelectorTerms[${i}].matchFields[${j}].${p}`));
    });
  });
  return problems;
}

function labelProblems(requirement: NodeSelectorRequirement): string[] {
  const { key, operator } = requirement;
  const values = requirement.values ?? [];
  const problems: string[] = [];
  if (key === '') problems.push('key: must not be empty');
  switch (operator) {
    case 'In':
    case 'NotIn':
      if (values.length === 0) problems.push(`values: must not be empty for ${operator}`);
      break;
    case 'Exists':
    case 'DoesNotExist':
      if (values.length > 0) problems.push(`values: must be empty for ${operator}`);
      break;
    case 'Gt':
    case 'Lt':
      if (values.length !== 1) {
        problems.push(`values: must hold exactly one integer for ${operator}, not ${values.length} values`);
      } else if (values[0] === undefined || parseInt64(values[0]) === undefined) {
        problems.push(`values: ${JSON.stringify(values[0])} is not an integer (${operator} compares 64-bit integers)`);
      }
      break;
    default:
      problems.push(`operator: ${JSON.stringify(operator)} is not one of ${OPERATORS.join(', ')}`);
  }
  return problems;
}

function fieldProblems(requirement: NodeSelectorRequirement): string[] {
  const { key, operator } = requirement;
  const values = requirement.values ?? [];
  const problems: string[] = [];
  if (key !== NAME_FIELD) problems.push(`key: ${JSON.stringify(key)} is not a node field a selector may use (only ${NAME_FIELD})`);
  if (operator !== 'In' && operator !== 'NotIn') {
    problems.push(`operator: ${JSON.stringify(operator)} cannot select on a field (only In, NotIn)`);
  } else if (values.length !== 1) {
    problems.push(`values: must hold exactly one value for ${operator} on a field, not ${values.length}`);
  }
  return problems;
}

/**
 * The selector as stable text, for ordering pools: a term reads like a label selector, with its
 * requirements sorted and each one's values sorted, as the peer's selector string does
 * (`a in (x,y),b,!c,n>5,metadata.name in (node-1)`); terms are sorted and joined by ` || `.
 * No selector is ''. Two selectors that differ only in order have the same text.
 */
export function selectorText(selector: NodeSelector | undefined): string {
  if (selector === undefined) return '';
  return sorted(selector.nodeSelectorTerms.map(termText)).join(' || ');
}

function termText(term: NodeSelectorTerm): string {
  return sorted([...(term.matchExpressions ?? []), ...(term.matchFields ?? [])].map(requirementText)).join(',');
}

function requirementText({ key, operator, values = [] }: NodeSelectorRequirement): string {
  const list = `(${sorted(values).join(',')})`;
  switch (operator) {
    case 'In':
      return `${key} in ${list}`;
    case 'NotIn':
      return `${key} notin ${list}`;
    case 'Exists':
      return key;
    case 'DoesNotExist':
      return `!${key}`;
    case 'Gt':
      return `${key}>${values.join(',')}`;
    case 'Lt':
      return `${key}<${values.join(',')}`;
    default:
      return `${key} ${operator} ${list}`;
  }
}

/** A sorted copy, by UTF-16 code units (byte order for the ASCII that labels allow). */
function sorted(texts: readonly string[]): string[] {
  return [...texts].sort();
}
