// Two namespaces joined by eth0 and our netlink facade opened in the first: the kernel setup of the facade's tests.
import { openNetlink, type Netlink } from '../../src/netlink/index.ts';
import { Netns } from './netns.ts';

export class NetlinkNs {
  readonly netns = new Netns();
  /** The namespace the facade is opened in, and its peer. */
  a = '';
  b = '';
  private nl: Netlink | undefined;

  /** Creates `a` and `b` (unique names from the prefixes) with eth0 `<net24>.1/24` ↔ `<net24>.2/24`; returns `a`. */
  pair(prefixA: string, prefixB: string, net24: string): string {
    this.a = this.netns.add(prefixA);
    this.b = this.netns.add(prefixB);
    this.netns.link(this.a, 'eth0', `${net24}.1/24`, this.b, 'eth0', `${net24}.2/24`);
    return this.a;
  }

  /** Opens the facade in `a`; call it once `a` is set up as the test wants. */
  async open(): Promise<Netlink> {
    this.nl = await openNetlink({ netns: this.a });
    return this.nl;
  }

  /** Closes the facade and deletes the namespaces; safe after a failed `before`. */
  close(): void {
    this.nl?.close();
    this.netns.cleanup();
  }
}
