// Pure conversions between the kernel's binary forms and our plain values; no I/O.
import type { Family, ScopeName } from './types.ts';
import { formatIPv6 } from '../ip/ipv6.ts';

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function familyOf(ip: string): Family {
  return ip.includes(':') ? 6 : 4;
}

/** Address text → 4 or 16 bytes. */
export function ipToBuffer(ip: string): Buffer {
  const m = V4.exec(ip);
  if (m) {
    // From the shared pool, not a new ArrayBuffer: flanneld encodes thousands of these at startup.
    const out = Buffer.allocUnsafe(4);
    for (let i = 0; i < 4; i++) {
      const b = Number(m[i + 1]);
      if (b > 255) throw new Error(`invalid IP address "${ip}"`);
      out[i] = b;
    }
    return out;
  }
  if (ip.includes(':')) return ipv6ToBuffer(ip);
  throw new Error(`invalid IP address "${ip}"`);
}

function ipv6ToBuffer(ip: string): Buffer {
  let text = ip;
  const out = Buffer.alloc(16);
  // A trailing dotted quad (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = ipToBuffer(v4[1]!);
    text = `${text.slice(0, -v4[1]!.length)}${b.readUInt16BE(0).toString(16)}:${b.readUInt16BE(2).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) throw new Error(`invalid IP address "${ip}"`);
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 1 && missing !== 0) || missing < 0) throw new Error(`invalid IP address "${ip}"`);
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  groups.forEach((g, i) => {
    if (!/^[0-9a-f]{1,4}$/i.test(g)) throw new Error(`invalid IP address "${ip}"`);
    out.writeUInt16BE(parseInt(g, 16), i * 2);
  });
  return out;
}

/** 4 or 16 bytes → canonical text (RFC 5952 compression for IPv6). */
export function bufferToIp(buf: Uint8Array): string {
  if (buf.length === 4) return `${buf[0]}.${buf[1]}.${buf[2]}.${buf[3]}`;
  if (buf.length !== 16) throw new Error(`unexpected address length ${buf.length}`);
  return formatIPv6(BigInt(`0x${Buffer.from(buf).toString('hex')}`));
}

export function macToBuffer(mac: string): Buffer {
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac)) {
    throw new Error(`invalid MAC address "${mac}"; expected six hex octets like 0e:2a:01:02:03:04`);
  }
  const out = Buffer.allocUnsafe(6);
  for (let i = 0; i < 6; i++) out[i] = parseInt(mac.slice(i * 3, i * 3 + 2), 16);
  return out;
}

const HEX_PAIRS = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function bufferToMac(buf: Uint8Array): string {
  let text = '';
  for (let i = 0; i < buf.length; i++) text += i === 0 ? HEX_PAIRS[buf[i]!] : `:${HEX_PAIRS[buf[i]!]}`;
  return text;
}

export interface Cidr {
  ip: string;
  prefixLen: number;
  family: Family;
}

/** `a.b.c.d/n` or `x::y/n`; a bare address means a host prefix. */
export function parseCidr(text: string): Cidr {
  const [ip, len] = text.split('/');
  const family = familyOf(ip!);
  ipToBuffer(ip!);
  const max = family === 4 ? 32 : 128;
  const prefixLen = len === undefined ? max : Number(len);
  if (!Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > max || (len !== undefined && !/^\d+$/.test(len))) {
    throw new Error(`invalid CIDR "${text}"`);
  }
  return { ip: ip!, prefixLen, family };
}

export function afOf(family: Family): number {
  return family === 4 ? 2 : 10;
}

const SCOPES: Record<number, ScopeName> = { 0: 'universe', 200: 'site', 253: 'link', 254: 'host', 255: 'nowhere' };
const SCOPE_NUMBERS: Record<string, number> = { universe: 0, global: 0, site: 200, link: 253, host: 254, nowhere: 255 };

/** The library gives route scopes as enum names and address scopes as numbers; both become our names. */
export function scopeName(scope: number | string | undefined): ScopeName {
  if (scope === undefined) return 'universe';
  if (typeof scope === 'string')
    return (
      SCOPE_NUMBERS[scope.toLowerCase()] !== undefined
        ? SCOPES[SCOPE_NUMBERS[scope.toLowerCase()]!]
        : scope.toLowerCase()
    ) as ScopeName;
  return SCOPES[scope] ?? (String(scope) as ScopeName);
}

export function scopeNumber(scope: ScopeName): number {
  const n = SCOPE_NUMBERS[scope];
  if (n !== undefined) return n;
  if (/^\d+$/.test(scope)) return Number(scope);
  throw new Error(`unknown route scope "${scope}"`);
}

/** Enum values from the library: names (UNICAST) or bare numbers when it has no name. */
export function enumName(v: string | number | undefined): string {
  return v === undefined ? 'unspec' : String(v).toLowerCase();
}

/** A random locally-administered unicast MAC (first octet: multicast bit cleared, local bit set). */
export function randomLocalMac(random: (n: number) => Uint8Array): string {
  const b = Buffer.from(random(6));
  b[0] = (b[0]! & 0xfe) | 0x02;
  return bufferToMac(b);
}
