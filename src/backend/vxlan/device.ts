// Creating, reusing and addressing the flannel.<VNI> device.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { IPv4Net } from '../../ip/ipv4.ts';
import type { IPv6Net } from '../../ip/ipv6.ts';
import { errorMessage, logger } from '../../log/log.ts';
import { inNetns } from '../../native/index.ts';
import { isNetlinkCode, randomLocalMac, type LinkInfo, type Netlink, type VxlanSpec } from '../../netlink/index.ts';
import { vxlanIncompatibility } from './compat.ts';
import { deviceAddress, foreignAddresses, foreignAddressesV6 } from './plan.ts';

const log = logger('vxlan');

export function newVtepMac(): string {
  return randomLocalMac((n) => randomBytes(n));
}

/**
 * Makes sure `spec.name` exists as a vxlan device like `spec`: reuses a compatible one (keeping its MAC), recreates
 * an incompatible one (also keeping its MAC), or creates it with `spec.mac` or a fresh random MAC. Returns the link.
 */
export async function ensureVxlanDevice(nl: Netlink, spec: VxlanSpec): Promise<LinkInfo> {
  let want = spec;
  const existing = await nl.linkByName(spec.name);
  if (existing) {
    const why = vxlanIncompatibility(existing, spec);
    if (why === null) {
      if (spec.mtu && existing.mtu !== spec.mtu) await nl.setLinkMtu(existing.index, spec.mtu);
      return verifyMac(nl, spec.name, existing.mac ?? spec.mac);
    }
    log.warn(`${spec.name} already exists with incompatible configuration: ${why}; recreating device`);
    await nl.deleteLink(existing.index);
    // The MAC is the device's identity towards peers (their ARP and FDB entries): keep it across the recreation.
    if (existing.mac && !spec.mac) want = { ...spec, mac: existing.mac };
  }
  if (!want.mac) want = { ...want, mac: newVtepMac() };
  try {
    await nl.createVxlan(want);
  } catch (e) {
    // Someone (a previous instance, another engineer's test) raced us: adopt what is there if it fits.
    if (!isNetlinkCode(e, 'EEXIST')) throw e;
    const again = await nl.linkByName(spec.name);
    if (!again || vxlanIncompatibility(again, spec) !== null) throw e;
    return verifyMac(nl, spec.name, again.mac ?? want.mac);
  }
  disableAcceptRa(nl, spec.name);
  return verifyMac(nl, spec.name, want.mac);
}

/** The kernel (or udev/NetworkManager) may have given the device another MAC; peers must see the one we publish. */
async function verifyMac(nl: Netlink, name: string, mac: string | undefined): Promise<LinkInfo> {
  let link = await nl.linkByName(name);
  if (!link) throw new Error(`${name} disappeared right after it was set up`);
  if (mac && link.mac !== mac) {
    await nl.setLinkMac(link.index, mac);
    link = await nl.linkByName(name);
    if (!link || link.mac !== mac) {
      throw new Error(`failed to ensure MAC address of ${name}: it is ${link?.mac ?? 'gone'}, expected ${mac}`);
    }
  }
  return link;
}

/** net/ipv6/conf/<dev>/accept_ra = 0, in the namespace the handle lives in; best effort (IPv6 may be off). */
function disableAcceptRa(nl: Netlink, name: string): void {
  const write = () => writeFileSync(`/proc/sys/net/ipv6/conf/${name}/accept_ra`, '0');
  try {
    // /proc/sys/net shows the namespace of the thread that opens the file.
    inNetns(nl.netns, write);
  } catch (e) {
    log.v(1, `could not set accept_ra=0 on ${name}: ${errorMessage(e)}`);
  }
}

/** Gives the device the lease's network address as /32, removing other addresses inside Network, and sets it up. */
export async function configureDevice(nl: Netlink, index: number, subnet: IPv4Net, network: IPv4Net): Promise<void> {
  const own = deviceAddress(subnet);
  const current = await nl.addresses(4, index);
  for (const stale of foreignAddresses(current, network, own)) {
    log.info(`removing stale address ${stale} from the vxlan device`);
    await nl.deleteAddress(index, stale);
  }
  if (!current.some((a) => `${a.address}/${a.prefixLen}` === own)) await nl.addAddress(index, own);
  await nl.setLinkUp(index);
}

/** flannel-v6.<VNI>: the lease's IPv6 network address as /128; other non-link-local IPv6 addresses go; set up. */
export async function configureDeviceV6(nl: Netlink, index: number, subnet: IPv6Net): Promise<void> {
  const own = deviceAddress(subnet);
  const current = await nl.addresses(6, index);
  for (const stale of foreignAddressesV6(current, own)) {
    log.info(`removing stale address ${stale} from the IPv6 vxlan device`);
    await nl.deleteAddress(index, stale);
  }
  if (!current.some((a) => `${a.address}/${a.prefixLen}` === own)) await nl.addAddress(index, own);
  await nl.setLinkUp(index);
}
