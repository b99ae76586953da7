// Simulated hosts for backend integration tests: namespaces on one underlay switch, each running a backend inside
// this test process through its own netlink handle (openNetlink({netns})). vxlan-, hostgw- and udp-nodes.ts add
// the backend itself.
import { after, before } from 'node:test';
import { IPv4Net } from '../../src/ip/ipv4.ts';
import type { NetworkConfig } from '../../src/config/network-config.ts';
import { openNetlink, type Netlink } from '../../src/netlink/index.ts';
import type { Backend, BackendContext, Network } from '../../src/backend/backend.ts';
import type { MemoryCluster, MemorySubnetManager } from './memory-subnet-manager.ts';
import { plugIntoBridge } from '../../src/lab/plug.ts';
import { Netns, run, uniqueName } from './netns.ts';

/** Network 10.244.0.0/16 with /24 subnets, IPv4 only, iptables rules, and the given backend. */
export function backendConfig(type: string, backend: Record<string, unknown> = {}): NetworkConfig {
  return {
    enableIPv4: true,
    enableIPv6: false,
    enableNFTables: false,
    network: IPv4Net.parse('10.244.0.0/16'),
    subnetLen: 24,
    backendType: type,
    backend: { Type: type, ...backend },
  };
}

/** A switch (a bridge in its own namespace) that hosts plug into with `eth0`. */
export class Underlay {
  readonly sw: string;
  /** `swPrefix` names the switch namespace (tests with their own namespace prefix pass it). */
  constructor(
    readonly netns: Netns,
    swPrefix = 'fl-sw',
  ) {
    this.sw = netns.add(swPrefix);
    run('ip', ['-n', this.sw, 'link', 'add', 'br0', 'type', 'bridge']);
    run('ip', ['-n', this.sw, 'link', 'set', 'br0', 'up']);
  }

  /** A new host namespace with `eth0` = `addr`/24 on the switch. */
  host(prefix: string, addr: string): string {
    return this.plug(prefix, [`${addr}/24`]);
  }

  /** An IPv6-only host: `eth0` = `addr6`/64 (no DAD wait) and no IPv4 address at all. */
  hostV6(prefix: string, addr6: string): string {
    return this.plug(prefix, [`${addr6}/64`, 'nodad']);
  }

  /** A new namespace whose `eth0` is a port of the switch, with `address` (ip addr add arguments before dev). */
  private plug(prefix: string, address: string[]): string {
    const ns = this.netns.add(prefix);
    plugIntoBridge({
      ns,
      ifname: 'eth0',
      sw: this.sw,
      bridge: 'br0',
      addresses: [address],
      names: [uniqueName('e'), uniqueName('p')],
    });
    return ns;
  }
}

/**
 * For a describe block whose tests each build their own hosts: an underlay made in `before`, and in `after` every
 * node pushed to `nodes` stopped (errors ignored) and all namespaces removed.
 */
export function underlayPerSuite<N extends { stop(): Promise<void> }>(): {
  nodes: N[];
  host(prefix: string, addr: string): string;
} {
  const netns = new Netns();
  const nodes: N[] = [];
  let u: Underlay;
  before(() => {
    u = new Underlay(netns);
  });
  after(async () => {
    for (const n of nodes) await n.stop().catch(() => undefined);
    netns.cleanup();
  });
  return { nodes, host: (prefix, addr) => u.host(prefix, addr) };
}

/** One host's backend on `eth0` of namespace `ns`, running until stop(). */
export abstract class BackendNode<N extends Network> {
  nl!: Netlink;
  sm!: MemorySubnetManager;
  network!: N;
  private ctl = new AbortController();
  protected running: Promise<void> = Promise.resolve();

  constructor(
    readonly ns: string,
    readonly addr: string,
    readonly subnet: string,
    readonly cluster: MemoryCluster,
  ) {}

  /** The backend under test, built on this host's context. */
  protected abstract createBackend(ctx: BackendContext): Backend;

  /** The address peers are told to use. */
  protected get extAddr(): string {
    return this.addr;
  }

  async start(): Promise<this> {
    this.ctl = new AbortController();
    this.nl = await openNetlink({ netns: this.ns });
    try {
      const eth0 = await this.nl.linkByName('eth0');
      if (!eth0) throw new Error(`${this.ns} has no eth0`);
      this.sm = this.cluster.manager(this.subnet);
      const backend = this.createBackend({
        subnetManager: this.sm,
        extIface: { name: 'eth0', index: eth0.index, mtu: eth0.mtu, ifaceAddr: this.addr, extAddr: this.extAddr },
        config: this.cluster.config,
        netlink: this.nl,
      });
      this.network = (await backend.registerNetwork(this.ctl.signal)) as N;
    } catch (e) {
      // A start that fails (e.g. a refused registration) leaves no handle open.
      this.nl.close();
      throw e;
    }
    this.running = this.network.run(this.ctl.signal);
    return this;
  }

  async stop(): Promise<void> {
    this.ctl.abort();
    await this.running;
    this.nl?.close();
  }
}
