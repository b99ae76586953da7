// Backend.Type → backend constructor; adding a backend is one line here.
import type { Backend, BackendContext, BackendFactory } from './backend.ts';
import { hostGwBackend } from './hostgw/backend.ts';
import { udpBackend } from './udp/backend.ts';
import { vxlanBackend } from './vxlan/backend.ts';

export const backendFactories: Record<string, BackendFactory> = {
  vxlan: vxlanBackend,
  'host-gw': hostGwBackend,
  // Also what a config without Backend gets (config/parse.ts).
  udp: udpBackend,
};

/** The Backend.Type values flanneld accepts, in registry order. */
export const backendTypes: readonly string[] = Object.keys(backendFactories);

/** The backend for `ctx.config.backendType` (matched case-insensitively). */
export function createBackend(ctx: BackendContext): Backend {
  const type = ctx.config.backendType.toLowerCase();
  const factory = Object.hasOwn(backendFactories, type) ? backendFactories[type] : undefined;
  // Real flannel's text first (docs/COMPATIBILITY.md, "Startup, health and shutdown"), then the fix.
  if (!factory) {
    throw new Error(
      `unknown backend type: ${ctx.config.backendType}; set Backend.Type in the network config to one of: ${backendTypes.join(', ')}`,
    );
  }
  return factory(ctx);
}
