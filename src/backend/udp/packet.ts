// IPv4 packet handling for the udp backend's data plane, on raw bytes at an offset (packets sit in a shared
// reader buffer): header checks, TTL decrement with an incremental checksum update, ICMP net unreachable. No I/O.

export const IPV4_HEADER_MIN = 20;
const PROTO_ICMP = 1;
const ICMP_DEST_UNREACH = 3;
const ICMP_NET_UNREACH = 0;
/** What the ICMP error quotes of the offending packet beyond its header (RFC 792). */
const ICMP_QUOTED_PAYLOAD = 8;
const ICMP_ERROR_TTL = 64;

/** Length of the IPv4 header at `off`, or 0 when the bytes are not a plausible IPv4 packet of `len` bytes. */
export function ipv4HeaderLength(p: Uint8Array, off: number, len: number): number {
  if (len < IPV4_HEADER_MIN || p[off]! >> 4 !== 4) return 0;
  const ihl = (p[off]! & 0x0f) * 4;
  return ihl >= IPV4_HEADER_MIN && ihl <= len ? ihl : 0;
}

export function readU32(p: Uint8Array, off: number): number {
  return ((p[off]! << 24) | (p[off + 1]! << 16) | (p[off + 2]! << 8) | p[off + 3]!) >>> 0;
}

function writeU16(p: Uint8Array, off: number, v: number): void {
  p[off] = (v >>> 8) & 0xff;
  p[off + 1] = v & 0xff;
}

function writeU32(p: Uint8Array, off: number, v: number): void {
  writeU16(p, off, v >>> 16);
  writeU16(p, off + 2, v & 0xffff);
}

export const ipv4Src = (p: Uint8Array, off: number): number => readU32(p, off + 12);
export const ipv4Dst = (p: Uint8Array, off: number): number => readU32(p, off + 16);

/** The Internet checksum (RFC 1071) of `len` bytes at `off`. */
export function internetChecksum(p: Uint8Array, off: number, len: number): number {
  let sum = 0;
  for (let i = 0; i + 1 < len; i += 2) sum += (p[off + i]! << 8) | p[off + i + 1]!;
  if (len & 1) sum += p[off + len - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * Decrements the TTL in place and patches the header checksum incrementally (RFC 1624, eqn. 3), so the rest of the
 * packet stays byte-identical. Returns false, leaving the packet untouched, when the TTL would reach 0 (drop it).
 */
export function decrementTtl(p: Uint8Array, off: number): boolean {
  const ttl = p[off + 8]!;
  if (ttl <= 1) return false;
  const proto = p[off + 9]!;
  const oldWord = (ttl << 8) | proto;
  const newWord = ((ttl - 1) << 8) | proto;
  const oldSum = (p[off + 10]! << 8) | p[off + 11]!;
  let sum = (~oldSum & 0xffff) + (~oldWord & 0xffff) + newWord;
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  p[off + 8] = ttl - 1;
  writeU16(p, off + 10, ~sum & 0xffff);
  return true;
}

/** ICMP errors are never sent about ICMP packets or about fragments after the first (as real flannel does). */
export function wantsUnreachable(p: Uint8Array, off: number): boolean {
  const fragOffset = ((p[off + 6]! & 0x1f) << 8) | p[off + 7]!;
  return p[off + 9] !== PROTO_ICMP && fragOffset === 0;
}

/**
 * An ICMP "destination net unreachable" about the packet at `off` (`len` bytes), addressed back to its sender as if
 * it came from the unreachable destination; it quotes the offending header plus the first 8 payload bytes.
 */
export function netUnreachable(p: Uint8Array, off: number, len: number): Uint8Array {
  const ihl = ipv4HeaderLength(p, off, len);
  if (!ihl) throw new Error('netUnreachable: not an IPv4 packet');
  const quoted = Math.min(len, ihl + ICMP_QUOTED_PAYLOAD);
  const total = IPV4_HEADER_MIN + 8 + quoted;
  const out = new Uint8Array(total);
  out[0] = 0x45;
  writeU16(out, 2, total);
  out[8] = ICMP_ERROR_TTL;
  out[9] = PROTO_ICMP;
  writeU32(out, 12, ipv4Dst(p, off));
  writeU32(out, 16, ipv4Src(p, off));
  writeU16(out, 10, internetChecksum(out, 0, IPV4_HEADER_MIN));
  const icmp = IPV4_HEADER_MIN;
  out[icmp] = ICMP_DEST_UNREACH;
  out[icmp + 1] = ICMP_NET_UNREACH;
  out.set(p.subarray(off, off + quoted), icmp + 8);
  writeU16(out, icmp + 2, internetChecksum(out, icmp, 8 + quoted));
  return out;
}
