// flannel0: the TUN device (no packet info header) with the lease's network address /32 and a route for Network.
import type { IPv4Net } from '../../ip/ipv4.ts';
import { inNetns, tunOpen } from '../../native/index.ts';
import { udpOpen } from '../../native/packet-io.ts';
import { isNetlinkCode, type Netlink } from '../../netlink/index.ts';

/** The kernel picks the first free flannelN, as real flannel asks it to. */
const TUN_TEMPLATE = 'flannel%d';

export function openTun(nl: Netlink): { fd: number; name: string } {
  try {
    return inNetns(nl.netns, () => tunOpen(TUN_TEMPLATE));
  } catch (e) {
    throw new Error(
      `udp backend: cannot create the TUN device: ${(e as Error).message}; is /dev/net/tun present (modprobe tun)?`,
    );
  }
}

export function openUdpSocket(nl: Netlink, ip: string, port: number): number {
  try {
    return inNetns(nl.netns, () => udpOpen(ip, port));
  } catch (e) {
    const code = (e as { code?: string }).code;
    const hint =
      code === 'EADDRINUSE'
        ? `; another process (a second flanneld?) uses it, or set another Backend.Port`
        : code === 'EADDRNOTAVAIL'
          ? `; ${ip} is not an address of this host`
          : '';
    throw new Error(`udp backend: cannot bind UDP ${ip}:${port}: ${(e as Error).message}${hint}`);
  }
}

/** MTU, address `<lease network>/32`, up, and `<Network> dev <tun>`. */
export async function configureTun(
  nl: Netlink,
  name: string,
  subnet: IPv4Net,
  network: IPv4Net,
  mtu: number,
): Promise<number> {
  const link = await nl.linkByName(name);
  if (!link) throw new Error(`udp backend: ${name} disappeared right after it was created`);
  await nl.setLinkMtu(link.index, mtu);
  try {
    await nl.addAddress(link.index, `${subnet.toString().split('/')[0]}/32`);
  } catch (e) {
    if (!isNetlinkCode(e, 'EEXIST')) throw e;
  }
  await nl.setLinkUp(link.index);
  // Replace never fails with EEXIST; scope universe as real flannel adds it.
  await nl.replaceRoute({ dst: network.toString(), oif: link.index, scope: 'universe' });
  return link.index;
}
