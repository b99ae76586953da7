// Simulated hosts for backend integration tests: namespaces on one underlay switch, each running a vxlan
// backend inside this test process through its own netlink handle (openNetlink({netns})).
import { setTimeout as sleep } from 'node:timers/promises';
import { IPv4Net } from '../../src/ip/ipv4.ts';
import type { NetworkConfig } from '../../src/config/network-config.ts';
import { openNetlink, type Netlink } from '../../src/netlink/index.ts';
import { VxlanBackend } from '../../src/backend/vxlan/backend.ts';
import type { VxlanNetwork } from '../../src/backend/vxlan/network.ts';
import type { Network } from '../../src/backend/backend.ts';
import { MemoryCluster, type MemorySubnetManager } from './memory-subnet-manager.ts';
import { Netns, run, uniqueName } from './netns.ts';

export function vxlanConfig(backend: Record<string, unknown> = {}): NetworkConfig {
  return {
    enableIPv4: true, enableIPv6: false, enableNFTables: false,
    network: IPv4Net.parse('10.244.0.0/16'), subnetLen: 24,
    backendType: 'vxlan', backend: { Type: 'vxlan', ...backend },
  };
}

/** A switch (a bridge in its own namespace) that hosts plug into with `eth0`. */
export class Underlay {
  readonly sw: string;
  constructor(readonly netns: Netns) {
    this.sw = netns.add('fl-sw');
    run('ip', ['-n', this.sw, 'link', 'add', 'br0', 'type', 'bridge']);
    run('ip', ['-n', this.sw, 'link', 'set', 'br0', 'up']);
  }

  /** A new host namespace with `eth0` = `addr`/24 on the switch. */
  host(prefix: string, addr: string): string {
    const ns = this.netns.add(prefix);
    const port = uniqueName('p');
    const tmp = uniqueName('e');
    run('ip', ['link', 'add', tmp, 'type', 'veth', 'peer', 'name', port]);
    run('ip', ['link', 'set', tmp, 'netns', ns]);
    run('ip', ['link', 'set', port, 'netns', this.sw]);
    run('ip', ['-n', ns, 'link', 'set', tmp, 'name', 'eth0']);
    run('ip', ['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0']);
    run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    run('ip', ['-n', this.sw, 'link', 'set', port, 'master', 'br0']);
    run('ip', ['-n', this.sw, 'link', 'set', port, 'up']);
    return ns;
  }
}

/** One host's vxlan backend, running until stop(). */
export class VxlanNode {
  nl!: Netlink;
  sm!: MemorySubnetManager;
  network!: Network;
  private ctl = new AbortController();
  private running: Promise<void> = Promise.resolve();

  constructor(
    readonly ns: string,
    readonly addr: string,
    readonly subnet: string,
    readonly cluster: MemoryCluster,
  ) {}

  async start(): Promise<this> {
    this.ctl = new AbortController();
    this.nl = await openNetlink({ netns: this.ns });
    const eth0 = await this.nl.linkByName('eth0');
    if (!eth0) throw new Error(`${this.ns} has no eth0`);
    this.sm = this.cluster.manager(this.subnet);
    const backend = new VxlanBackend(
      {
        subnetManager: this.sm,
        extIface: { name: 'eth0', index: eth0.index, mtu: eth0.mtu, ifaceAddr: this.addr, extAddr: this.addr },
        config: this.cluster.config,
        netlink: this.nl,
      },
      { retry: { attempts: 3, baseDelayMs: 20, maxDelayMs: 100 }, recreateBackoff: { initialMs: 100, maxMs: 1000 } },
    );
    this.network = await backend.registerNetwork(this.ctl.signal);
    this.running = this.network.run(this.ctl.signal);
    return this;
  }

  get vxlan(): VxlanNetwork {
    return this.network as VxlanNetwork;
  }

  async stop(): Promise<void> {
    this.ctl.abort();
    await this.running;
    this.nl?.close();
  }
}

/** Polls `check` until it returns a truthy value; fails after `timeoutMs`. */
export async function until<T>(what: string, check: () => T | Promise<T>, timeoutMs = 1000, everyMs = 25): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (let i = 0; i < 10_000; i++) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) break;
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

export { MemoryCluster };
