// The vxlan Backend options (docs/COMPATIBILITY.md, "vxlan backend"), read case-insensitively from net-conf's Backend
// object; no I/O.
import { backendBool, backendInt, backendOption } from '../../config/parse.ts';

export const VXLAN_OVERHEAD = 50;
/** IPv6 outer header: 70 bytes (the kernel's VXLAN6_HEADROOM). */
export const VXLAN6_OVERHEAD = 70;
const MIN_DEVICE_MTU = 68;
const MAX_VNI = 2 ** 24 - 1;

export interface VxlanOptions {
  vni: number;
  /** 0 = kernel default (8472). */
  port: number;
  gbp: boolean;
  learning: boolean;
  directRouting: boolean;
  /** Underlay MTU the device MTU is derived from (device = mtu − 50). */
  mtu: number;
}

export function parseVxlanOptions(backend: Record<string, unknown>, extIfaceMtu: number): VxlanOptions {
  const o: VxlanOptions = {
    vni: backendInt(backend, 'VNI', 1),
    port: backendInt(backend, 'Port', 0),
    gbp: backendBool(backend, 'GBP', false),
    learning: backendBool(backend, 'Learning', false),
    directRouting: backendBool(backend, 'DirectRouting', false),
    mtu: backendInt(backend, 'MTU', 0) || extIfaceMtu,
  };
  if (o.vni < 0 || o.vni > MAX_VNI) {
    throw new Error(`vxlan Backend.VNI ${o.vni} is out of range; it must be between 0 and ${MAX_VNI} (default 1)`);
  }
  if (o.port < 0 || o.port > 65535) {
    throw new Error(`vxlan Backend.Port ${o.port} is out of range; use 1-65535, or 0 for the kernel default 8472`);
  }
  if (o.mtu - VXLAN_OVERHEAD < MIN_DEVICE_MTU) {
    throw new Error(
      `vxlan MTU ${o.mtu} is too small: the device MTU would be ${o.mtu - VXLAN_OVERHEAD}; set Backend.MTU to at least ${MIN_DEVICE_MTU + VXLAN_OVERHEAD}`,
    );
  }
  return o;
}

export function deviceName(vni: number): string {
  return `flannel.${vni}`;
}

/** The dual-stack IPv6 device (docs/COMPATIBILITY.md, "Device names"). */
export function deviceNameV6(vni: number): string {
  return `flannel-v6.${vni}`;
}

/** `{"VNI":1,"VtepMAC":"…"}`: key order as real flannel writes it. */
export function vxlanBackendData(vni: number, mac: string): { VNI: number; VtepMAC: string } {
  return { VNI: vni, VtepMAC: mac };
}

/** A peer's BackendData; null when it carries no usable VtepMAC. */
export function parsePeerBackendData(data: unknown): { vni?: number; vtepMac: string } | null {
  if (typeof data !== 'object' || data === null) return null;
  // Go's JSON decoding matches field names case-insensitively; so do we.
  const d = data as Record<string, unknown>;
  const mac = backendOption(d, 'VtepMAC');
  const vni = backendOption(d, 'VNI');
  if (typeof mac !== 'string' || !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac)) return null;
  const out: { vni?: number; vtepMac: string } = { vtepMac: mac.toLowerCase() };
  if (typeof vni === 'number') out.vni = vni;
  return out;
}
