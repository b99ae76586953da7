// Hosts running our vxlan backend inside this test process (see backend-node.ts), and the peer state they program
// on flannel-v6.1.
import type { NetworkConfig } from '../../src/config/network-config.ts';
import { VxlanBackend } from '../../src/backend/vxlan/backend.ts';
import type { VxlanNetwork } from '../../src/backend/vxlan/network.ts';
import type { Backend, BackendContext, Network } from '../../src/backend/backend.ts';
import { BackendNode, backendConfig } from './backend-node.ts';
import { bridgeJson, ipJson } from './netns.ts';

export function vxlanConfig(backend: Record<string, unknown> = {}): NetworkConfig {
  return backendConfig('vxlan', backend);
}

/** One host's vxlan backend, running until stop(). */
export class VxlanNode extends BackendNode<Network> {
  protected createBackend(ctx: BackendContext): Backend {
    return new VxlanBackend(ctx, { retry: { attempts: 3, baseDelayMs: 20, maxDelayMs: 100 }, recreateBackoff: { initialMs: 100, maxMs: 1000 } });
  }

  get vxlan(): VxlanNetwork {
    return this.network as VxlanNetwork;
  }
}

/** The IPv6 vxlan device of VNI 1. */
export const VXLAN_V6 = 'flannel-v6.1';
/** Peers programmed on flannel-v6.1: its gateway (onlink) routes, PERMANENT neighbours and FDB entries with a dst. */
export const routes6 = (ns: string) => ipJson(ns, ['-6', 'route', 'show', 'dev', VXLAN_V6]).filter((r: any) => r.gateway);
export const neigh6 = (ns: string) => ipJson(ns, ['-6', 'neigh', 'show', 'dev', VXLAN_V6]).filter((n: any) => n.state.includes('PERMANENT'));
export const fdb6 = (ns: string) => bridgeJson(ns, ['fdb', 'show', 'dev', VXLAN_V6]).filter((f: any) => f.dst);
