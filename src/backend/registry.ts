// Backend.Type → backend constructor; adding a backend is one line here.
import type { Backend, BackendContext, BackendFactory } from './backend.ts';
import { hostGwBackend } from './hostgw/backend.ts';
import { udpBackend } from './udp/backend.ts';
import { vxlanBackend } from './vxlan/backend.ts';

export const backendFactories: Record<string, BackendFactory> = {
  vxlan: vxlanBackend,
  // Also what a config without Backend gets (config/parse.ts).
  udp: udpBackend,
  'host-gw': hostGwBackend,
};

/** The backend for `ctx.config.backendType` (matched case-insensitively). */
export function createBackend(ctx: BackendContext): Backend {
  const type = ctx.config.backendType.toLowerCase();
  const factory = Object.hasOwn(backendFactories, type) ? backendFactories[type] : undefined;
  if (!factory) throw new Error(`unknown backend type: ${ctx.config.backendType}`);
  return factory(ctx);
}
