// Builds the etcd3 client from flanneld's --etcd-* options (docs/COMPATIBILITY.md, "flanneld flags and environment").
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { Etcd3, type IOptions } from 'etcd3';
import { errorMessage, logger } from '../../log/log.ts';
import { describeEtcdError, type EtcdErrorContext } from './errors.ts';
import { SilenceWatch, endpointBreaker, retryPolicy } from './fault-handling.ts';

const log = logger('etcd');

export interface EtcdClientOptions {
  /** `http://host:port` or `https://host:port`. */
  endpoints: string[];
  keyFile?: string;
  certFile?: string;
  caFile?: string;
  username?: string;
  password?: string;
  /** Deadline for unary calls, so a black-holed endpoint cannot hang the daemon. */
  callTimeoutMs?: number;
  /** While calls get no answer at all (a frozen etcd), log "waiting for etcd at …" this often; default 10 s. */
  waitLogIntervalMs?: number;
}

type Backoff = NonNullable<NonNullable<IOptions['faultHandling']>['watchBackoff']>;

/**
 * Doubling delay from `initial` up to `max` (100 ms → 5 s, docs/COMPATIBILITY.md, "Watching leases"), for etcd3's watch
 * stream reconnects.
 */
export function exponentialBackoff(initial = 100, max = 5000): Backoff {
  const at = (d: number): Backoff => ({ duration: d, next: () => at(Math.min(max, d * 2)) });
  return at(initial);
}

function readPemFile(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new Error(`--${flag} ${path}: cannot read the file (${errorMessage(e)}); pass a readable PEM file`);
  }
}

/** The trimmed endpoints, checked: each http(s)://host:port, all of one scheme. */
function checkEndpoints(raw: string[]): string[] {
  const endpoints = raw.map((e) => e.trim()).filter((e) => e !== '');
  if (endpoints.length === 0) {
    throw new Error('--etcd-endpoints is empty: give at least one endpoint such as http://127.0.0.1:2379');
  }
  for (const e of endpoints) {
    if (!/^https?:\/\/[^/]+\/?$/.test(e)) {
      throw new Error(
        `--etcd-endpoints: "${e}" is not an endpoint; use the form http://host:port or https://host:port`,
      );
    }
  }
  const secure = endpoints.filter((e) => e.startsWith('https://')).length;
  if (secure > 0 && secure < endpoints.length) {
    throw new Error(
      `--etcd-endpoints mixes http:// and https:// endpoints (${endpoints.join(',')}); use https:// for all of them (TLS) or http:// for all`,
    );
  }
  return endpoints;
}

/**
 * The TLS credentials for https:// endpoints. Unlike flanneld, a CA alone is used (it verifies etcd's certificate;
 * no client certificate); a client certificate needs both its files; without a CA the system roots verify etcd.
 */
function tlsCredentials(opts: EtcdClientOptions, endpoints: string[]): IOptions['credentials'] {
  const { keyFile, certFile, caFile } = opts;
  if (keyFile && !certFile) {
    throw new Error(
      '--etcd-keyfile is given without --etcd-certfile: a client certificate needs both; pass --etcd-certfile and --etcd-keyfile, or neither',
    );
  }
  if (certFile && !keyFile) {
    throw new Error(
      '--etcd-certfile is given without --etcd-keyfile: a client certificate needs both; pass --etcd-certfile and --etcd-keyfile, or neither',
    );
  }
  if (!endpoints[0]!.startsWith('https://')) {
    // Like flanneld (etcd's Go client drops TLS for http:// endpoints).
    const ignored =
      caFile || keyFile
        ? '; --etcd-cafile/--etcd-certfile/--etcd-keyfile are ignored for http:// endpoints, use https:// ones for TLS'
        : '';
    log.warn(`connecting to etcd without TLS (insecure): --etcd-endpoints are http://${ignored}`);
    return undefined;
  }
  if (!caFile && !keyFile) return undefined; // etcd3 uses TLS with the system roots for https:// endpoints
  return {
    // grpc falls back to the system roots when no CA is given.
    rootCertificate: (caFile ? readPemFile('etcd-cafile', caFile) : undefined) as Buffer,
    ...(keyFile && certFile
      ? { privateKey: readPemFile('etcd-keyfile', keyFile), certChain: readPemFile('etcd-certfile', certFile) }
      : {}),
  };
}

/** The flags an error message may need to name. */
export function etcdErrorContext(opts: EtcdClientOptions): EtcdErrorContext {
  const endpoints = opts.endpoints.map((e) => e.trim()).filter((e) => e !== '');
  const tls = endpoints[0]?.startsWith('https://') ?? false;
  return {
    endpoints,
    caFile: tls ? opts.caFile : undefined,
    certFile: tls ? opts.certFile : undefined,
    keyFile: tls ? opts.keyFile : undefined,
    username: opts.username,
  };
}

export function etcdClientConfig(opts: EtcdClientOptions): IOptions {
  return clientConfig(opts).config;
}

function clientConfig(opts: EtcdClientOptions): { config: IOptions; silence: SilenceWatch } {
  const endpoints = checkEndpoints(opts.endpoints);
  const timeout = opts.callTimeoutMs ?? 10_000;
  const ctx = etcdErrorContext(opts);
  const silence = new SilenceWatch({
    intervalMs: opts.waitLogIntervalMs ?? 10_000,
    onSilence: (ms) =>
      log.warn(`waiting for etcd at ${endpoints.join(', ')} (no answer for ${Math.round(ms / 1000)}s)`),
  });
  const config: IOptions = {
    hosts: endpoints,
    dialTimeout: 5000,
    defaultCallOptions: (c) => (c.isStream ? {} : { deadline: Date.now() + timeout }),
    faultHandling: {
      host: (endpoint) =>
        endpointBreaker({ endpoint, describe: (e) => describeEtcdError(e, { ...ctx, endpoints: [endpoint] }) }),
      global: retryPolicy(silence),
      watchBackoff: exponentialBackoff(),
    },
    // HTTP/2 pings notice within 10 s an etcd that stopped answering under an idle watch (etcd's
    // --grpc-keepalive-min-time, 5 s by default, refuses more frequent pings).
    grpcOptions: { 'grpc.keepalive_time_ms': 7000, 'grpc.keepalive_timeout_ms': 3000 },
  };
  const credentials = tlsCredentials(opts, endpoints);
  if (credentials) config.credentials = credentials;
  if (opts.username || opts.password) {
    config.auth = { username: opts.username ?? '', password: opts.password ?? '' };
  }
  return { config, silence };
}

/** Fails now, naming the flag, on a file that is no PEM certificate or key, or a key that is not the certificate's. */
function checkCredentials(c: NonNullable<IOptions['credentials']>, opts: EtcdClientOptions): void {
  const check = (what: string, f: () => unknown) => {
    try {
      f();
    } catch (e) {
      throw new Error(`${what} (${errorMessage(e)})`);
    }
  };
  if (c.rootCertificate)
    check(`--etcd-cafile ${opts.caFile}: not a PEM certificate`, () => new X509Certificate(c.rootCertificate));
  if (c.certChain)
    check(`--etcd-certfile ${opts.certFile}: not a PEM certificate`, () => new X509Certificate(c.certChain!));
  if (c.privateKey)
    check(`--etcd-keyfile ${opts.keyFile}: not a PEM private key`, () => createPrivateKey(c.privateKey!));
  if (c.privateKey && c.certChain) {
    check(`--etcd-keyfile ${opts.keyFile} is not the key of --etcd-certfile ${opts.certFile}`, () =>
      createSecureContext({ key: c.privateKey, cert: c.certChain }),
    );
  }
}

/** Stops its "waiting for etcd" reports when closed. */
class FlannelEtcd3 extends Etcd3 {
  constructor(
    config: IOptions,
    private readonly silence: SilenceWatch,
  ) {
    super(config);
  }

  override close(): void {
    this.silence.stop();
    super.close();
  }
}

export function createEtcdClient(opts: EtcdClientOptions): Etcd3 {
  const { config, silence } = clientConfig(opts);
  if (config.credentials) checkCredentials(config.credentials, opts);
  return new FlannelEtcd3(config, silence);
}
