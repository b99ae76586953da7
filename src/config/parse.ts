// net-conf.json / etcd `<prefix>/config` parsing and etcd-mode validation; no I/O (docs/COMPATIBILITY.md,
// "Network config").
import { IPv4Net, formatIPv4, maskOf, parseIPv4, type IPv4 } from '../ip/ipv4.ts';
import { IPv6Net, formatIPv6, maskOf6, parseIPv6, type IPv6 } from '../ip/ipv6.ts';
import type { NetworkConfig } from './network-config.ts';
import { isObject, jsonSnippet } from '../util/json.ts';

const EXAMPLE = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}';

/** Error for bad network config input; `code` lets callers tell it from I/O errors. */
export class NetworkConfigError extends Error {
  readonly code = 'EBADNETCONF';
  constructor(message: string) {
    super(message);
    this.name = 'NetworkConfigError';
  }
}

function fail(msg: string): never {
  throw new NetworkConfigError(`network config: ${msg}`);
}

/**
 * Case-insensitive member lookup like Go's encoding/json: every key that folds to `key` is assigned in document
 * order, so the last one wins. `null` counts as absent (Go leaves the field untouched).
 */
export function backendOption(backend: Record<string, unknown>, key: string): unknown {
  const want = key.toLowerCase();
  let found: unknown;
  for (const [k, v] of Object.entries(backend)) {
    if (k.toLowerCase() === want && v !== null) found = v;
  }
  return found;
}

/** An integer Backend option, `def` when absent. */
export function backendInt(backend: Record<string, unknown>, key: string, def: number): number {
  const v = backendOption(backend, key);
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
    throw new NetworkConfigError(`Backend.${key} must be an integer, got ${jsonSnippet(v)}`);
  }
  return v;
}

/** A boolean Backend option, `def` when absent. */
export function backendBool(backend: Record<string, unknown>, key: string, def: boolean): boolean {
  const v = backendOption(backend, key);
  if (v === undefined) return def;
  if (typeof v !== 'boolean')
    throw new NetworkConfigError(`Backend.${key} must be true or false, got ${jsonSnippet(v)}`);
  return v;
}

/** A string Backend option, `def` when absent. */
export function backendString(backend: Record<string, unknown>, key: string, def: string): string {
  const v = backendOption(backend, key);
  if (v === undefined) return def;
  if (typeof v !== 'string') throw new NetworkConfigError(`Backend.${key} must be a string, got ${jsonSnippet(v)}`);
  return v;
}

function optBool(obj: Record<string, unknown>, key: string, def: boolean): boolean {
  const v = backendOption(obj, key);
  if (v === undefined) return def;
  if (typeof v !== 'boolean') fail(`${key} must be true or false, got ${jsonSnippet(v)}`);
  return v;
}

function optUint(obj: Record<string, unknown>, key: string): number {
  const v = backendOption(obj, key);
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    fail(`${key} must be a non-negative integer (a prefix length such as 24), got ${jsonSnippet(v)}`);
  }
  return v;
}

function optIPv4(obj: Record<string, unknown>, key: string): IPv4 | undefined {
  const v = backendOption(obj, key);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') fail(`${key} must be an IPv4 address string such as "10.244.1.0", got ${jsonSnippet(v)}`);
  try {
    return parseIPv4(v);
  } catch {
    fail(`${key} "${v}" is not a valid IPv4 address; use dotted-quad form such as "10.244.1.0"`);
  }
}

function parseNetwork(obj: Record<string, unknown>): IPv4Net | undefined {
  const v = backendOption(obj, 'Network');
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string') fail(`Network must be a CIDR string such as "10.244.0.0/16", got ${jsonSnippet(v)}`);
  const [addr, len] = v.split('/');
  // Go's ParseCIDR accepts IPv6 too; flannel then rejects it with this exact message.
  if (addr?.includes(':') && len !== undefined) throw new NetworkConfigError('invalid IPv4 CIDR format');
  try {
    return IPv4Net.parse(v);
  } catch {
    fail(`invalid CIDR address: ${v} (Network must look like "10.244.0.0/16")`);
  }
}

function optIPv6(obj: Record<string, unknown>, key: string): IPv6 | undefined {
  const v = backendOption(obj, key);
  if (v === undefined) return undefined;
  if (typeof v !== 'string')
    fail(`${key} must be an IPv6 address string such as "fc00:0:0:1::", got ${jsonSnippet(v)}`);
  try {
    return parseIPv6(v);
  } catch {
    fail(`${key} "${v}" is not a valid IPv6 address; use a form such as "fc00:0:0:1::"`);
  }
}

function parseIPv6Network(obj: Record<string, unknown>): IPv6Net | undefined {
  const v = backendOption(obj, 'IPv6Network');
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string') fail(`IPv6Network must be a CIDR string such as "fc00::/48", got ${jsonSnippet(v)}`);
  const [addr, len] = v.split('/');
  // Mirror of the IPv4 case: a well-formed IPv4 CIDR is the wrong family, not a malformed value.
  if (addr !== undefined && !addr.includes(':') && len !== undefined && IPv4CIDR.test(v.trim())) {
    throw new NetworkConfigError('invalid IPv6 CIDR format');
  }
  try {
    return IPv6Net.parse(v);
  } catch {
    fail(`invalid CIDR address: ${v} (IPv6Network must look like "fc00::/48")`);
  }
}

const IPv4CIDR = /^\d+\.\d+\.\d+\.\d+\/\d+$/;

function parseBackend(obj: Record<string, unknown>): { backendType: string; backend: Record<string, unknown> } {
  const raw = backendOption(obj, 'Backend');
  // Real flannel's code default is udp, whatever its docs say (docs/COMPATIBILITY.md, "Network config").
  if (raw === undefined) return { backendType: 'udp', backend: {} };
  if (!isObject(raw)) fail(`Backend must be an object such as {"Type":"vxlan"}, got ${jsonSnippet(raw)}`);
  const type = backendOption(raw, 'Type');
  if (type !== undefined && typeof type !== 'string')
    fail(`Backend.Type must be a string such as "vxlan", got ${jsonSnippet(type)}`);
  return { backendType: (type ?? '').toLowerCase(), backend: raw };
}

export interface ParseNetworkConfigOptions {
  /** Etcd mode: apply the etcd-mode defaults and checks (docs/COMPATIBILITY.md, "Network config"). */
  validate: boolean;
  /** Where the text was read from (a file path, an etcd key); every error message then starts with `<source>: `. */
  source?: string;
}

/** Parses the config JSON; with `validate` (etcd mode) applies the etcd-mode defaults and checks. */
export function parseNetworkConfig(text: string, opts: ParseNetworkConfigOptions): NetworkConfig {
  try {
    return parseAndValidate(text, opts.validate);
  } catch (e) {
    if (opts.source !== undefined && e instanceof NetworkConfigError)
      throw new NetworkConfigError(`${opts.source}: ${e.message}`);
    throw e;
  }
}

function parseAndValidate(text: string, validate: boolean): NetworkConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    fail(`invalid JSON: ${(e as Error).message} — expected an object like ${EXAMPLE}`);
  }
  if (!isObject(doc)) fail(`expected a JSON object like ${EXAMPLE}, got ${jsonSnippet(doc)}`);

  const enableIPv4 = optBool(doc, 'EnableIPv4', true);
  const enableIPv6 = optBool(doc, 'EnableIPv6', false);
  // flannel's "none defined stack" (docs/COMPATIBILITY.md, "Interface selection"), with the fix.
  if (!enableIPv4 && !enableIPv6) {
    fail(
      'none defined stack: EnableIPv4 and EnableIPv6 are both false; enable at least one (with Network / IPv6Network)',
    );
  }

  const config: NetworkConfig = {
    enableIPv4,
    enableIPv6,
    enableNFTables: optBool(doc, 'EnableNFTables', false),
    // An IPv6-only network ignores the IPv4 keys, as a v4-only one ignores the IPv6 keys.
    network: enableIPv4 ? parseNetwork(doc) : undefined,
    subnetLen: optUint(doc, 'SubnetLen'),
    subnetMin: optIPv4(doc, 'SubnetMin'),
    subnetMax: optIPv4(doc, 'SubnetMax'),
    ...parseBackend(doc),
  };
  if (enableIPv6) {
    config.ipv6Network = parseIPv6Network(doc);
    config.ipv6SubnetLen = optUint(doc, 'IPv6SubnetLen');
    config.ipv6SubnetMin = optIPv6(doc, 'IPv6SubnetMin');
    config.ipv6SubnetMax = optIPv6(doc, 'IPv6SubnetMax');
  }
  if (validate && config.enableIPv4) validateIPv4(config);
  if (validate && config.enableIPv6) validateIPv6(config);
  return config;
}

/**
 * Flannel's "at least four subnets" message, then the values and the fix: a longer SubnetLen (at least prefix + 2, at
 * most `maxLen`), or a Network at least two bits shorter than SubnetLen. `family` is the key prefix: '' or 'IPv6'.
 */
function tooFewSubnets(
  family: '' | 'IPv6',
  network: string,
  prefix: number,
  len: number,
  maxLen: number,
  defaultLen: number,
): NetworkConfigError {
  const net = `${family}Network`;
  const subnetLen = `${family}SubnetLen`;
  const fixes: string[] = [];
  if (prefix + 2 <= maxLen) {
    fixes.push(
      `set ${subnetLen} to ${prefix + 2} or more (leave it out to get ${defaultLen}, the default for a /${prefix})`,
    );
  }
  if (len >= 2) fixes.push(`make ${net} larger (/${len - 2} or shorter)`);
  // A Network too small for any SubnetLen, and a SubnetLen too short for any Network: both must change.
  if (fixes.length === 0)
    fixes.push(`make ${net} larger (/${maxLen - 2} or shorter) and set ${subnetLen} to at least its prefix + 2`);
  return new NetworkConfigError(
    `network must be able to accommodate at least four subnets: ${net} ${network} is too small for ${subnetLen} ${len}; ${fixes.join(', or ')}`,
  );
}

/** The etcd-mode checks for IPv6: the IPv4 rules with /127, /124 and /64, filling ipv6SubnetLen/Min/Max. */
function validateIPv6(config: NetworkConfig): void {
  const network = config.ipv6Network;
  if (!network) throw new NetworkConfigError('please define a correct IPv6Network parameter in the flannel config');
  let len = config.ipv6SubnetLen ?? 0;
  if (len > 0) {
    if (len > 126) throw new NetworkConfigError('SubnetLen must be less than /127');
    if (len < network.prefix + 2)
      throw tooFewSubnets(
        'IPv6',
        network.toString(),
        network.prefix,
        len,
        126,
        network.prefix <= 62 ? 64 : network.prefix + 2,
      );
  } else {
    if (network.prefix > 124)
      throw new NetworkConfigError('IPv6Network is too small. Minimum useful network prefix is /124');
    len = network.prefix <= 62 ? 64 : network.prefix + 2;
  }
  config.ipv6SubnetLen = len;
  const subnetSize = 1n << BigInt(128 - len);
  // `::` means "not given", like 0.0.0.0 for IPv4.
  if (!config.ipv6SubnetMin) config.ipv6SubnetMin = network.ip + subnetSize;
  else if (!network.contains(config.ipv6SubnetMin))
    throw new NetworkConfigError('IPv6SubnetMin is not in the range of the IPv6Network');
  if (!config.ipv6SubnetMax) config.ipv6SubnetMax = network.ip + network.size - subnetSize;
  else if (!network.contains(config.ipv6SubnetMax))
    throw new NetworkConfigError('IPv6SubnetMax is not in the range of the IPv6Network');
  const mask = maskOf6(len);
  if ((config.ipv6SubnetMin & mask) !== config.ipv6SubnetMin) {
    throw new NetworkConfigError(`IPv6SubnetMin is not on a SubnetLen boundary: ${formatIPv6(config.ipv6SubnetMin)}`);
  }
  if ((config.ipv6SubnetMax & mask) !== config.ipv6SubnetMax) {
    throw new NetworkConfigError(`IPv6SubnetMax is not on a SubnetLen boundary: ${formatIPv6(config.ipv6SubnetMax)}`);
  }
}

/**
 * The etcd-mode checks for IPv4 (docs/COMPATIBILITY.md, "Network config"): fills subnetLen/subnetMin/subnetMax,
 * throwing flannel's exact messages.
 */
function validateIPv4(config: NetworkConfig): void {
  const network = config.network;
  if (!network) throw new NetworkConfigError('please define a correct Network parameter in the flannel config');
  if (config.subnetLen > 0) {
    if (config.subnetLen > 30) throw new NetworkConfigError('SubnetLen must be less than /31');
    if (config.subnetLen < network.prefix + 2) {
      throw tooFewSubnets(
        '',
        network.toString(),
        network.prefix,
        config.subnetLen,
        30,
        network.prefix <= 22 ? 24 : network.prefix + 2,
      );
    }
  } else {
    if (network.prefix > 28) throw new NetworkConfigError('network is too small. Minimum useful network prefix is /28');
    config.subnetLen = network.prefix <= 22 ? 24 : network.prefix + 2;
  }
  const subnetSize = 2 ** (32 - config.subnetLen);
  // 0.0.0.0 means "not given", as in flannel (the zero IP4).
  if (!config.subnetMin) config.subnetMin = network.ip + subnetSize;
  else if (!network.contains(config.subnetMin))
    throw new NetworkConfigError('SubnetMin is not in the range of the Network');
  if (!config.subnetMax) config.subnetMax = network.ip + network.size - subnetSize;
  else if (!network.contains(config.subnetMax))
    throw new NetworkConfigError('SubnetMax is not in the range of the Network');
  const mask = maskOf(config.subnetLen);
  if ((config.subnetMin & mask) >>> 0 !== config.subnetMin) {
    throw new NetworkConfigError(`SubnetMin is not on a SubnetLen boundary: ${formatIPv4(config.subnetMin)}`);
  }
  if ((config.subnetMax & mask) >>> 0 !== config.subnetMax) {
    throw new NetworkConfigError(`SubnetMax is not on a SubnetLen boundary: ${formatIPv4(config.subnetMax)}`);
  }
}
