// The udp Backend options (docs/COMPATIBILITY.md, "udp backend"): only Port; no I/O.
import { backendInt } from '../../config/parse.ts';

export const UDP_DEFAULT_PORT = 8285;
/** IPv4 (20) + UDP (8) header around each packet. */
export const UDP_OVERHEAD = 28;
const MIN_DEVICE_MTU = 68;

export interface UdpOptions {
  port: number;
}

export function parseUdpOptions(backend: Record<string, unknown>): UdpOptions {
  const port = backendInt(backend, 'Port', UDP_DEFAULT_PORT);
  if (port < 1 || port > 65535)
    throw new Error(`udp Backend.Port ${port} is out of range; use 1-65535 (default ${UDP_DEFAULT_PORT})`);
  return { port };
}

/** flannel0's MTU (and subnet.env's): the external interface's minus the UDP encapsulation. */
export function udpDeviceMtu(extMtu: number): number {
  const mtu = extMtu - UDP_OVERHEAD;
  if (mtu < MIN_DEVICE_MTU) {
    throw new Error(
      `udp backend: external interface MTU ${extMtu} is too small; flannel0 needs at least ${MIN_DEVICE_MTU + UDP_OVERHEAD}`,
    );
  }
  return mtu;
}
