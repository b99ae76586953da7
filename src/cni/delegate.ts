// ADD: the delegate (bridge) config generated from the flannel netconf and subnet.env, as the newest plugin does.
import { formatIPv4, parseIPv4 } from '../ip/ipv4.ts';
import { formatIPv6, parseIPv6 } from '../ip/ipv6.ts';
import type { SubnetEnv } from '../subnet/subnet-env.ts';
import { isObject, jsonSnippet } from '../util/json.ts';
import { CniCode, CniError } from './errors.ts';
import { GoStruct, goMarshal } from './go-json.ts';
import type { FlannelNetConf, JsonObject } from './netconf.ts';

/** An address in Go's net.IP text form, or throws. */
function canonicalIP(text: string): { text: string; bits: number } {
  if (text.includes(':')) return { text: formatIPv6(parseIPv6(text)), bits: 128 };
  return { text: formatIPv4(parseIPv4(text)), bits: 32 };
}

function routeError(index: number, why: string): CniError {
  return new CniError(
    CniCode.InvalidNetworkConfig,
    `failed to parse ipam.routes: route ${index}: ${why}; fix "ipam.routes" in the CNI config`,
  );
}

function intField(r: JsonObject, key: string, index: number): number | undefined {
  const v = r[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v))
    throw routeError(index, `"${key}" must be an integer, got ${jsonSnippet(v)}`);
  return v;
}

/**
 * One libcni route: known fields only, in its struct order (dst, gw, mtu, advmss, priority, table, scope).
 * The dst keeps its host bits, as libcni's CIDR parsing does.
 */
function parseRoute(r: unknown, index: number): GoStruct {
  if (!isObject(r)) throw routeError(index, `expected an object like {"dst":"10.0.0.0/8"}, got ${jsonSnippet(r)}`);
  if (typeof r.dst !== 'string') throw routeError(index, `"dst" must be a CIDR string like "10.0.0.0/8"`);
  const m = /^([^/]+)\/(\d{1,3})$/.exec(r.dst);
  let dst: string;
  try {
    if (!m) throw new Error();
    const ip = canonicalIP(m[1]!);
    if (Number(m[2]) > ip.bits) throw new Error();
    dst = `${ip.text}/${Number(m[2])}`;
  } catch {
    throw routeError(index, `invalid CIDR address: ${r.dst}`);
  }
  let gw: string | undefined;
  if (r.gw !== undefined && r.gw !== null) {
    try {
      if (typeof r.gw !== 'string') throw new Error();
      gw = canonicalIP(r.gw).text;
    } catch {
      throw routeError(index, `invalid IP address in "gw": ${jsonSnippet(r.gw)}`);
    }
  }
  const zeroOmitted = (k: string) => intField(r, k, index) || undefined;
  return new GoStruct([
    ['dst', dst],
    ['gw', gw],
    ['mtu', zeroOmitted('mtu')],
    ['advmss', zeroOmitted('advmss')],
    ['priority', zeroOmitted('priority')],
    ['table', intField(r, 'table', index)],
    ['scope', intField(r, 'scope', index)],
  ]);
}

function ipamRoutes(ipam: JsonObject | undefined): GoStruct[] {
  const routes = ipam?.routes;
  if (routes === undefined || routes === null) return [];
  if (!Array.isArray(routes))
    throw new CniError(
      CniCode.InvalidNetworkConfig,
      `failed to parse ipam.routes: expected a list, got ${jsonSnippet(routes)}; fix "ipam.routes" in the CNI config`,
    );
  return routes.map(parseRoute);
}

function delegateIpam(n: FlannelNetConf, env: SubnetEnv): JsonObject {
  const ipam: JsonObject = { ...(n.ipam ?? {}) };
  if (!('type' in ipam)) ipam.type = 'host-local';
  const ranges: { subnet: string }[][] = [];
  if (env.subnet) ranges.push([{ subnet: env.subnet.toString() }]);
  if (env.ipv6Subnet) ranges.push([{ subnet: env.ipv6Subnet.toString() }]);
  ipam.ranges = ranges;
  const routes = ipamRoutes(n.ipam);
  for (const nw of [...env.networks, ...env.ipv6Networks]) routes.push(new GoStruct([['dst', nw.toString()]]));
  ipam.routes = routes;
  return ipam;
}

/** The delegate config as a value (GoStruct inside ipam.routes). */
export function buildDelegate(n: FlannelNetConf, env: SubnetEnv): JsonObject {
  const d: JsonObject = { ...n.delegate };
  d.name = n.name;
  if (!('type' in d)) d.type = 'bridge';
  // flanneld masquerades pod traffic itself when FLANNEL_IPMASQ=true, so the bridge must not do it again.
  if (!('ipMasq' in d)) d.ipMasq = !env.ipMasq;
  if (!('mtu' in d)) d.mtu = env.mtu;
  if (d.type === 'bridge' && !('isGateway' in d)) d.isGateway = true;
  if (n.cniVersion) d.cniVersion = n.cniVersion;
  d.ipam = delegateIpam(n, env);
  if (n.runtimeConfig) d.runtimeConfig = n.runtimeConfig;
  return d;
}

/** The exact bytes handed to the delegate and saved for DEL. */
export function delegateBytes(n: FlannelNetConf, env: SubnetEnv): string {
  return goMarshal(buildDelegate(n, env));
}
