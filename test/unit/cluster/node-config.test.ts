// The cluster in a box writes the CNI config flannel's own plugin would: these pin what a pod gets.
import { describe, expect, it } from 'vitest';
import { planNetwork } from '../../../hack/cluster/net.js';
import { flannelConflist, parseSubnetEnv } from '../../../hack/cluster/node.js';

const SUBNET_ENV = 'FLANNEL_NETWORK=10.233.64.0/18\nFLANNEL_SUBNET=10.233.65.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n';

interface Bridge {
  type: string;
  ipMasq: boolean;
  mtu: number;
  ipam: { ranges: { subnet: string; gateway: string }[][]; routes: { dst: string }[]; dataDir: string };
}

describe('flannel subnet.env to CNI config', () => {
  it('reads every FLANNEL_ variable and ignores other lines', () => {
    expect(parseSubnetEnv(`# comment\n${SUBNET_ENV}OTHER=1\n`)).toEqual({
      FLANNEL_NETWORK: '10.233.64.0/18',
      FLANNEL_SUBNET: '10.233.65.1/24',
      FLANNEL_MTU: '1450',
      FLANNEL_IPMASQ: 'true',
    });
  });

  it('gives pods addresses from the node subnet, with its first address as their gateway', () => {
    const bridge = (JSON.parse(flannelConflist(parseSubnetEnv(SUBNET_ENV), '/x/ipam')) as { plugins: Bridge[] }).plugins[0];
    expect(bridge?.ipam.ranges).toEqual([[{ subnet: '10.233.65.0/24', gateway: '10.233.65.1' }]]);
    expect(bridge?.ipam.routes).toEqual([{ dst: '10.233.64.0/18' }]);
    expect(bridge?.ipam.dataDir).toBe('/x/ipam');
    expect(bridge?.mtu).toBe(1450);
  });

  it('leaves masquerading to flanneld when flanneld does it, as flannel\'s plugin does', () => {
    const conf = (env: string): Bridge | undefined =>
      (JSON.parse(flannelConflist(parseSubnetEnv(env), '/x')) as { plugins: Bridge[] }).plugins[0];
    expect(conf(SUBNET_ENV)?.ipMasq).toBe(false);
    expect(conf(SUBNET_ENV.replace('FLANNEL_IPMASQ=true', 'FLANNEL_IPMASQ=false'))?.ipMasq).toBe(true);
  });

  it('refuses a subnet.env without the node subnet', () => {
    expect(() => flannelConflist(parseSubnetEnv('FLANNEL_NETWORK=10.233.64.0/18\n'), '/x')).toThrow(/FLANNEL_SUBNET/);
  });
});

describe('the cluster network plan', () => {
  it('names everything after the cluster id and keeps interface names within 15 characters', () => {
    const net = planNetwork('a1b2', 17, ['node-1', 'node-2']);
    expect(net.subnet).toBe('10.250.17.0/24');
    expect(net.hostAddress).toBe('10.250.17.1');
    expect(net.nodes.map((n) => [n.namespace, n.address])).toEqual([
      ['pca-a1b2-node-1', '10.250.17.11'],
      ['pca-a1b2-node-2', '10.250.17.12'],
    ]);
    expect(net.hostLink.length).toBeLessThanOrEqual(15);
    expect(net.hostLink).toContain('a1b2');
  });
});
