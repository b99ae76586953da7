// IPv4 addresses as unsigned 32-bit numbers and CIDRs as values; no I/O.

export type IPv4 = number;

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export function parseIPv4(text: string): IPv4 {
  const parts = text.trim().split('.');
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p))) {
    throw new Error(`invalid IPv4 address "${text}"`);
  }
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

export function isIPv4(text: string): boolean {
  try {
    parseIPv4(text);
    return true;
  } catch {
    return false;
  }
}

export function formatIPv4(ip: IPv4): string {
  return [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join('.');
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** An IPv4 network: `ip` always has its host bits cleared. */
export class IPv4Net {
  readonly ip: IPv4;
  readonly prefix: number;

  constructor(ip: IPv4, prefix: number) {
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > 32) throw new Error(`invalid IPv4 prefix length ${prefix}`);
    this.prefix = prefix;
    this.ip = (ip & maskOf(prefix)) >>> 0;
  }

  /** Parses `a.b.c.d/n`, masking host bits off like Go's net.ParseCIDR (`10.1.2.3/16` → `10.1.0.0/16`). */
  static parse(text: string): IPv4Net {
    const m = /^([^/]+)\/(\d{1,2})$/.exec(text.trim());
    if (!m) throw new Error(`invalid IPv4 CIDR "${text}"`);
    const prefix = Number(m[2]);
    if (prefix > 32) throw new Error(`invalid IPv4 CIDR "${text}"`);
    return new IPv4Net(parseIPv4(m[1]!), prefix);
  }

  /** Number of addresses in the network. */
  get size(): number {
    return 2 ** (32 - this.prefix);
  }

  get last(): IPv4 {
    return this.ip + this.size - 1;
  }

  contains(ip: IPv4): boolean {
    return (ip & maskOf(this.prefix)) >>> 0 === this.ip;
  }

  /** True when `other` lies entirely inside this network. */
  containsNet(other: IPv4Net): boolean {
    return other.prefix >= this.prefix && this.contains(other.ip);
  }

  overlaps(other: IPv4Net): boolean {
    return this.contains(other.ip) || other.contains(this.ip);
  }

  equals(other: IPv4Net): boolean {
    return this.ip === other.ip && this.prefix === other.prefix;
  }

  /** The network of the same size that directly follows this one. */
  next(): IPv4Net {
    return new IPv4Net(this.ip + this.size, this.prefix);
  }

  toString(): string {
    return `${formatIPv4(this.ip)}/${this.prefix}`;
  }

  toJSON(): string {
    return this.toString();
  }
}
