// Simulated hosts running our host-gw backend inside this test process (one netlink handle per namespace),
// plus a recorder for the daemon's log lines (they go to stderr).
import { IPv4Net } from '../../src/ip/ipv4.ts';
import type { NetworkConfig } from '../../src/config/network-config.ts';
import { openNetlink, type Netlink } from '../../src/netlink/index.ts';
import { HostGwBackend } from '../../src/backend/hostgw/backend.ts';
import type { HostGwNetwork } from '../../src/backend/hostgw/network.ts';
import type { MemoryCluster, MemorySubnetManager } from './memory-subnet-manager.ts';

export function hostGwConfig(): NetworkConfig {
  return {
    enableIPv4: true, enableIPv6: false, enableNFTables: false,
    network: IPv4Net.parse('10.244.0.0/16'), subnetLen: 24,
    backendType: 'host-gw', backend: { Type: 'host-gw' },
  };
}

export class HostGwNode {
  nl!: Netlink;
  sm!: MemorySubnetManager;
  network!: HostGwNetwork;
  private ctl = new AbortController();
  private running: Promise<void> = Promise.resolve();

  constructor(
    readonly ns: string,
    readonly addr: string,
    readonly subnet: string,
    readonly cluster: MemoryCluster,
    readonly checkIntervalMs = 10_000,
    /** The address peers are told to use; differs from `addr` only to provoke the NAT refusal. */
    readonly publicIP = addr,
  ) {}

  async start(): Promise<this> {
    this.ctl = new AbortController();
    this.nl = await openNetlink({ netns: this.ns });
    try {
      const eth0 = await this.nl.linkByName('eth0');
      if (!eth0) throw new Error(`${this.ns} has no eth0`);
      this.sm = this.cluster.manager(this.subnet);
      const backend = new HostGwBackend(
        {
          subnetManager: this.sm,
          extIface: { name: 'eth0', index: eth0.index, mtu: eth0.mtu, ifaceAddr: this.addr, extAddr: this.publicIP },
          config: this.cluster.config,
          netlink: this.nl,
        },
        { checkIntervalMs: this.checkIntervalMs },
      );
      this.network = await backend.registerNetwork(this.ctl.signal);
    } catch (e) {
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

/** Records what is written to stderr (our logger's output) until stop(); still passes it through. */
export class LogRecorder {
  readonly lines: string[] = [];
  private readonly original = process.stderr.write.bind(process.stderr);

  constructor() {
    process.stderr.write = ((chunk: unknown, ...rest: unknown[]) => {
      this.lines.push(...String(chunk).split('\n').filter(Boolean));
      return (this.original as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stderr.write;
  }

  /** Lines containing every one of `parts`. */
  find(...parts: string[]): string[] {
    return this.lines.filter((l) => parts.every((p) => l.includes(p)));
  }

  stop(): void {
    process.stderr.write = this.original;
  }
}
