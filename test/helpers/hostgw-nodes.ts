// Hosts running our host-gw backend inside this test process (see backend-node.ts), plus a recorder for the
// daemon's log lines (they go to stderr).
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
