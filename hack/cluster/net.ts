// The cluster's network: one namespace holding a bridge (the "LAN"), one namespace per node wired to it
// by a veth, and a veth from the host so the API server, on the host, is reachable at the LAN's .1.
// Every name carries the cluster's id, so two clusters (or a leftover one) never collide.
import { sh, shQuiet } from './sh.js';

export interface Network {
  readonly id: string;
  /** The LAN's /24, e.g. 10.250.17.0/24. */
  readonly subnet: string;
  /** The host's address on the LAN, where kube-apiserver listens. */
  readonly hostAddress: string;
  readonly lanNamespace: string;
  /** The host end of the host↔LAN veth. */
  readonly hostLink: string;
  nodes: NodeNet[];
}

export interface NodeNet {
  readonly name: string;
  readonly namespace: string;
  readonly address: string;
  /** The node's interface toward the LAN, inside its namespace. */
  readonly iface: string;
}

const NODE_IFACE = 'eth0';

export function planNetwork(id: string, octet: number, nodeNames: string[]): Network {
  const prefix = `10.250.${octet}`;
  return {
    id,
    subnet: `${prefix}.0/24`,
    hostAddress: `${prefix}.1`,
    lanNamespace: `pca-${id}-lan`,
    hostLink: `pca${id}h`,
    nodes: nodeNames.map((name, i) => ({
      name,
      namespace: `pca-${id}-${name}`,
      address: `${prefix}.${11 + i}`,
      iface: NODE_IFACE,
    })),
  };
}

/** A third octet whose /24 no host route already covers. */
export async function freeOctet(): Promise<number> {
  const routes = await sh('ip', ['-4', 'route', 'show', 'table', 'all']);
  for (let tries = 0; tries < 200; tries++) {
    const octet = 2 + Math.floor(Math.random() * 250);
    if (!routes.includes(`10.250.${octet}.`)) return octet;
  }
  throw new Error('no free 10.250.x.0/24 for the cluster LAN');
}

export async function createNetwork(net: Network): Promise<void> {
  const lan = net.lanNamespace;
  await sh('ip', ['netns', 'add', lan]);
  await sh('ip', ['-n', lan, 'link', 'set', 'lo', 'up']);
  await sh('ip', ['-n', lan, 'link', 'add', 'br0', 'type', 'bridge']);
  await sh('ip', ['-n', lan, 'link', 'set', 'br0', 'up']);
  await wire(net, net.hostLink, undefined, 'host');
  await sh('ip', ['addr', 'add', `${net.hostAddress}/24`, 'dev', net.hostLink]);
  await sh('ip', ['link', 'set', net.hostLink, 'up']);
  for (const node of net.nodes) await createNode(net, node);
}

async function createNode(net: Network, node: NodeNet): Promise<void> {
  await sh('ip', ['netns', 'add', node.namespace]);
  const inNode = ['-n', node.namespace];
  await sh('ip', [...inNode, 'link', 'set', 'lo', 'up']);
  await wire(net, `pca${net.id}t`, node.namespace, node.name);
  await sh('ip', [...inNode, 'link', 'set', `pca${net.id}t`, 'name', node.iface]);
  await sh('ip', [...inNode, 'addr', 'add', `${node.address}/24`, 'dev', node.iface]);
  await sh('ip', [...inNode, 'link', 'set', node.iface, 'up']);
  await sh('ip', [...inNode, 'route', 'add', 'default', 'via', net.hostAddress]);
  // A node routes its pods' traffic, as any Kubernetes node does.
  await sh('ip', ['netns', 'exec', node.namespace, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
}

/** A veth from `end` (left on the host, or moved into `endNamespace`) to port `port` of the LAN bridge. */
async function wire(net: Network, end: string, endNamespace: string | undefined, port: string): Promise<void> {
  const lan = net.lanNamespace;
  const peer = `pca${net.id}p`;
  await sh('ip', ['link', 'add', end, 'type', 'veth', 'peer', 'name', peer]);
  await sh('ip', ['link', 'set', peer, 'netns', lan]);
  await sh('ip', ['-n', lan, 'link', 'set', peer, 'name', port]);
  await sh('ip', ['-n', lan, 'link', 'set', port, 'master', 'br0']);
  await sh('ip', ['-n', lan, 'link', 'set', port, 'up']);
  if (endNamespace !== undefined) await sh('ip', ['link', 'set', end, 'netns', endNamespace]);
}

/** Removes every namespace and link of the network; a namespace's veths go with it. */
export async function removeNetwork(net: Network): Promise<void> {
  for (const node of net.nodes) await shQuiet('ip', ['netns', 'del', node.namespace]);
  await shQuiet('ip', ['link', 'del', net.hostLink]);
  await shQuiet('ip', ['netns', 'del', net.lanNamespace]);
}
