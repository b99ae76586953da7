// Hosts running our host-gw backend inside this test process (see backend-node.ts).
import type { NetworkConfig } from '../../src/config/network-config.ts';
import { HostGwBackend } from '../../src/backend/hostgw/backend.ts';
import type { HostGwNetwork } from '../../src/backend/hostgw/network.ts';
import type { Backend, BackendContext } from '../../src/backend/backend.ts';
import type { MemoryCluster } from './memory-subnet-manager.ts';
import { BackendNode, backendConfig } from './backend-node.ts';

export function hostGwConfig(): NetworkConfig {
  return backendConfig('host-gw');
}

export class HostGwNode extends BackendNode<HostGwNetwork> {
  constructor(
    ns: string,
    addr: string,
    subnet: string,
    cluster: MemoryCluster,
    readonly checkIntervalMs = 10_000,
    /** The address peers are told to use; differs from `addr` only to provoke the NAT refusal. */
    readonly publicIP = addr,
  ) {
    super(ns, addr, subnet, cluster);
  }

  protected override get extAddr(): string {
    return this.publicIP;
  }

  protected createBackend(ctx: BackendContext): Backend {
    return new HostGwBackend(ctx, { checkIntervalMs: this.checkIntervalMs });
  }
}
