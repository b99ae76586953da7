// Which peer carries a destination: longest-prefix match over the peers' lease subnets. No I/O.
import type { IPv4, IPv4Net } from '../../ip/ipv4.ts';
import { maskOf } from '../../ip/ipv4.ts';

export class PeerRoutes {
  /** prefix length → (network address → peer public IP); leases normally share one prefix length. */
  private readonly byPrefix = new Map<number, Map<number, IPv4>>();
  private prefixes: number[] = [];

  get size(): number {
    let n = 0;
    for (const m of this.byPrefix.values()) n += m.size;
    return n;
  }

  set(subnet: IPv4Net, peer: IPv4): void {
    let m = this.byPrefix.get(subnet.prefix);
    if (!m) {
      m = new Map();
      this.byPrefix.set(subnet.prefix, m);
      this.prefixes = [...this.byPrefix.keys()].sort((a, b) => b - a);
    }
    m.set(subnet.ip, peer);
  }

  /** Returns whether the subnet was known. */
  delete(subnet: IPv4Net): boolean {
    const m = this.byPrefix.get(subnet.prefix);
    if (!m?.delete(subnet.ip)) return false;
    if (m.size === 0) {
      this.byPrefix.delete(subnet.prefix);
      this.prefixes = this.prefixes.filter((p) => p !== subnet.prefix);
    }
    return true;
  }

  get(subnet: IPv4Net): IPv4 | undefined {
    return this.byPrefix.get(subnet.prefix)?.get(subnet.ip);
  }

  /** The public IP of the peer whose subnet contains `dst`, or undefined. */
  lookup(dst: IPv4): IPv4 | undefined {
    for (const prefix of this.prefixes) {
      const peer = this.byPrefix.get(prefix)!.get((dst & maskOf(prefix)) >>> 0);
      if (peer !== undefined) return peer;
    }
    return undefined;
  }
}
