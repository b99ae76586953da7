// IPv6 addresses as 128-bit bigints and CIDRs as values (subnet.env, CNI routes, subnet allocation); no I/O.
import { parseIPv4 } from './ipv4.ts';

export type IPv6 = bigint;

const ALL = (1n << 128n) - 1n;
const HEXTET = /^[0-9a-fA-F]{1,4}$/;

function hextets(text: string): number[] {
  const groups = text.split(':');
  const out: number[] = [];
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i]!;
    // An embedded dotted quad is only allowed as the last 32 bits.
    if (i === groups.length - 1 && g.includes('.')) {
      const v4 = parseIPv4(g);
      out.push(v4 >>> 16, v4 & 0xffff);
    } else if (HEXTET.test(g)) {
      out.push(parseInt(g, 16));
    } else {
      throw new Error('bad group');
    }
  }
  return out;
}

export function parseIPv6(text: string): IPv6 {
  const t = text.trim();
  try {
    const halves = t.split('::');
    if (halves.length > 2) throw new Error('more than one ::');
    let groups: number[];
    if (halves.length === 2) {
      const head = halves[0] ? hextets(halves[0]) : [];
      const tail = halves[1] ? hextets(halves[1]) : [];
      const fill = 8 - head.length - tail.length;
      if (fill < 1) throw new Error('too many groups');
      groups = [...head, ...new Array<number>(fill).fill(0), ...tail];
    } else {
      groups = hextets(t);
    }
    if (groups.length !== 8) throw new Error('wrong group count');
    return groups.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
  } catch {
    throw new Error(`invalid IPv6 address "${text}"`);
  }
}

export function isIPv6(text: string): boolean {
  try {
    parseIPv6(text);
    return true;
  } catch {
    return false;
  }
}

/** RFC 5952 text (lowercase, longest run of two or more zero groups shortened to "::"), as Go prints it. */
export function formatIPv6(ip: IPv6): string {
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((ip >> BigInt(i * 16)) & 0xffffn));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

export function maskOf6(prefix: number): bigint {
  return prefix === 0 ? 0n : (ALL << BigInt(128 - prefix)) & ALL;
}

/** An IPv6 network: `ip` always has its host bits cleared. */
export class IPv6Net {
  readonly ip: IPv6;
  readonly prefix: number;

  constructor(ip: IPv6, prefix: number) {
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > 128)
      throw new Error(`invalid IPv6 prefix length ${prefix}`);
    this.prefix = prefix;
    this.ip = ip & maskOf6(prefix);
  }

  /** Parses `addr/n`, masking host bits off like Go's net.ParseCIDR. */
  static parse(text: string): IPv6Net {
    const m = /^([^/]+)\/(\d{1,3})$/.exec(text.trim());
    if (!m || Number(m[2]) > 128) throw new Error(`invalid IPv6 CIDR "${text}"`);
    return new IPv6Net(parseIPv6(m[1]!), Number(m[2]));
  }

  /** Number of addresses in the network (a bigint: a /0 holds 2^128). */
  get size(): bigint {
    return 1n << BigInt(128 - this.prefix);
  }

  get last(): IPv6 {
    return this.ip + this.size - 1n;
  }

  contains(ip: IPv6): boolean {
    return (ip & maskOf6(this.prefix)) === this.ip;
  }

  /** True when `other` lies entirely inside this network. */
  containsNet(other: IPv6Net): boolean {
    return other.prefix >= this.prefix && this.contains(other.ip);
  }

  overlaps(other: IPv6Net): boolean {
    return this.contains(other.ip) || other.contains(this.ip);
  }

  /** The network of the same size that directly follows this one (throws past the end of the address space). */
  next(): IPv6Net {
    const ip = this.ip + this.size;
    if (ip > ALL) throw new Error(`no IPv6 network follows ${this.toString()}`);
    return new IPv6Net(ip, this.prefix);
  }

  equals(other: IPv6Net): boolean {
    return this.ip === other.ip && this.prefix === other.prefix;
  }

  toString(): string {
    return `${formatIPv6(this.ip)}/${this.prefix}`;
  }

  toJSON(): string {
    return this.toString();
  }
}
