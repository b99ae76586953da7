// Hosts running our vxlan backend inside this test process (see backend-node.ts), and the peer state they program
// on flannel.1 and flannel-v6.1.
import type { NetworkConfig } from '../../src/config/network-config.ts';
import { VxlanBackend } from '../../src/backend/vxlan/backend.ts';
import type { VxlanNetwork, VxlanTuning } from '../../src/backend/vxlan/network.ts';
import type { Backend, BackendContext, Network } from '../../src/backend/backend.ts';
import { BackendNode, backendConfig } from './backend-node.ts';
import { bridgeJson, ipJson } from './netns.ts';

export function vxlanConfig(backend: Record<string, unknown> = {}): NetworkConfig {
  return backendConfig('vxlan', backend);
}

/** One host's vxlan backend, running until stop(). */
export class VxlanNode extends BackendNode<Network> {
  /** What tune() set, on top of the fast retries every test node gets. */
  private tuning: VxlanTuning = {};

  /** Before start(): e.g. `.tune({ checkIntervalMs: 300 })` for a faster repair check. */
  tune(t: VxlanTuning): this {
    this.tuning = { ...this.tuning, ...t };
    return this;
  }

  protected createBackend(ctx: BackendContext): Backend {
    return new VxlanBackend(ctx, {
      retry: { attempts: 3, baseDelayMs: 20, maxDelayMs: 100 },
      recreateBackoff: { initialMs: 100, maxMs: 1000 },
      ...this.tuning,
    });
  }

  get vxlan(): VxlanNetwork {
    return this.network as VxlanNetwork;
  }
}

/** The IPv6 vxlan device of VNI 1. */
export const VXLAN_V6 = 'flannel-v6.1';
/** Peers programmed on flannel-v6.1: its gateway (onlink) routes, PERMANENT neighbours and FDB entries with a dst. */
export const routes6 = (ns: string) =>
  ipJson(ns, ['-6', 'route', 'show', 'dev', VXLAN_V6]).filter((r: any) => r.gateway);
export const neigh6 = (ns: string) =>
  ipJson(ns, ['-6', 'neigh', 'show', 'dev', VXLAN_V6]).filter((n: any) => n.state.includes('PERMANENT'));
export const fdb6 = (ns: string) => bridgeJson(ns, ['fdb', 'show', 'dev', VXLAN_V6]).filter((f: any) => f.dst);

/** The IPv4 vxlan device of VNI 1. */
export const VXLAN_V4 = 'flannel.1';
/** Peers programmed on flannel.1, as for flannel-v6.1 above. */
export const routes4 = (ns: string) =>
  ipJson(ns, ['-4', 'route', 'show', 'dev', VXLAN_V4]).filter((r: any) => r.gateway);
export const neigh4 = (ns: string) =>
  ipJson(ns, ['-4', 'neigh', 'show', 'dev', VXLAN_V4]).filter((n: any) => n.state.includes('PERMANENT'));
export const fdb4 = (ns: string) => bridgeJson(ns, ['fdb', 'show', 'dev', VXLAN_V4]).filter((f: any) => f.dst);
