// The flannel plugin's network configuration (stdin): decoding, the checks libcni's skeleton applies, defaults.
import { isObject, jsonSnippet } from '../util/json.ts';
import { CniCode, CniError } from './errors.ts';
import { SUPPORTED_VERSIONS, parseVersion } from './versions.ts';

export const DEFAULT_SUBNET_FILE = '/run/flannel/subnet.env';
export const DEFAULT_DATA_DIR = '/var/lib/cni/flannel';

export type JsonObject = Record<string, unknown>;

export interface FlannelNetConf {
  name: string;
  /** As given; "" when absent (the protocol then means 0.1.0). */
  cniVersion: string;
  subnetFile: string;
  dataDir: string;
  delegate: JsonObject;
  ipam?: JsonObject;
  runtimeConfig?: JsonObject;
}

const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

function invalid(msg: string): CniError {
  return new CniError(CniCode.InvalidNetworkConfig, msg);
}

function optString(conf: JsonObject, key: string): string | undefined {
  const v = conf[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string')
    throw invalid(`flannel netconf: "${key}" must be a string, got ${jsonSnippet(v)}; fix the CNI config file`);
  return v;
}

function optObject(conf: JsonObject, key: string): JsonObject | undefined {
  const v = conf[key];
  if (v === undefined || v === null) return undefined;
  if (!isObject(v))
    throw invalid(`flannel netconf: "${key}" must be a JSON object, got ${jsonSnippet(v)}; fix the CNI config file`);
  return v;
}

/** JSON → object; code 6 when stdin is not a JSON object. */
export function decodeConfig(stdin: Buffer | string): JsonObject {
  const text = stdin.toString();
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new CniError(
      CniCode.DecodingFailure,
      `error decoding network config from stdin: ${(e as Error).message}; the runtime must pass the plugin's JSON config on stdin`,
    );
  }
  if (!isObject(v)) {
    throw new CniError(
      CniCode.DecodingFailure,
      `error decoding network config from stdin: expected a JSON object, got ${jsonSnippet(v, 60)}`,
    );
  }
  return v;
}

/** The config's protocol version, checked against the versions we speak (code 1 otherwise). */
export function configVersion(conf: JsonObject): string {
  const v = conf.cniVersion;
  if (v !== undefined && v !== null && typeof v !== 'string') {
    throw new CniError(CniCode.DecodingFailure, `"cniVersion" must be a string like "1.0.0", got ${jsonSnippet(v)}`);
  }
  const version = v || '0.1.0';
  try {
    parseVersion(version);
  } catch (e) {
    throw new CniError(CniCode.DecodingFailure, `"cniVersion": ${(e as Error).message}`);
  }
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(version)) {
    throw new CniError(
      CniCode.IncompatibleVersion,
      `incompatible CNI versions: config cniVersion "${version}" is not supported; use one of ${SUPPORTED_VERSIONS.join(', ')}`,
      `config is "${version}", plugin supports [${SUPPORTED_VERSIONS.map((s) => `"${s}"`).join(' ')}]`,
    );
  }
  return version;
}

/** Validates and fills defaults; every message names the field and what to change. */
export function parseNetConf(conf: JsonObject): FlannelNetConf {
  const name = optString(conf, 'name') ?? '';
  if (!name) throw invalid('missing network name; set "name" in the CNI config (e.g. "cbr0")');
  if (!NETWORK_NAME.test(name))
    throw invalid(`network name "${name}" has invalid characters; it must match ${NETWORK_NAME.source}`);
  optString(conf, 'type');
  const delegate = optObject(conf, 'delegate') ?? {};
  if ('type' in delegate && typeof delegate.type !== 'string') {
    throw invalid("'delegate' dictionary, if present, must have (string) 'type' field");
  }
  if ('name' in delegate) throw invalid("'delegate' dictionary must not have 'name' field, it'll be set by flannel");
  if ('ipam' in delegate) throw invalid("'delegate' dictionary must not have 'ipam' field, it'll be set by flannel");
  return {
    name,
    cniVersion: optString(conf, 'cniVersion') ?? '',
    subnetFile: optString(conf, 'subnetFile') || DEFAULT_SUBNET_FILE,
    dataDir: optString(conf, 'dataDir') || DEFAULT_DATA_DIR,
    delegate,
    ipam: optObject(conf, 'ipam'),
    runtimeConfig: optObject(conf, 'runtimeConfig'),
  };
}
