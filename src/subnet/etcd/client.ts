// Builds the etcd3 client from flanneld's --etcd-* options (spec §1.1).
import { readFileSync } from 'node:fs';
import { Etcd3, type IOptions } from 'etcd3';
import { errorMessage, logger } from '../../log/log.ts';

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
}

type Backoff = NonNullable<NonNullable<IOptions['faultHandling']>['watchBackoff']>;

/** Doubling delay from `initial` up to `max` (the spec's 100 ms → 5 s), for etcd3's watch stream reconnects. */
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

export function etcdClientConfig(opts: EtcdClientOptions): IOptions {
  const endpoints = opts.endpoints.map((e) => e.trim()).filter((e) => e !== '');
  if (endpoints.length === 0) {
    throw new Error('--etcd-endpoints is empty: give at least one endpoint such as http://127.0.0.1:2379');
  }
  for (const e of endpoints) {
    if (!/^https?:\/\/[^/]+\/?$/.test(e)) {
      throw new Error(`--etcd-endpoints: "${e}" is not an endpoint; use the form http://host:port or https://host:port`);
    }
  }
  const timeout = opts.callTimeoutMs ?? 10_000;
  const config: IOptions = {
    hosts: endpoints,
    dialTimeout: 5000,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
    faultHandling: { watchBackoff: exponentialBackoff() },
  };
  // Like flanneld: client TLS only when both key and cert are given; a CA alone is ignored.
  if (opts.keyFile && opts.certFile) {
    config.credentials = {
      // grpc falls back to the system roots when no CA is given.
      rootCertificate: (opts.caFile ? readPemFile('etcd-cafile', opts.caFile) : undefined) as Buffer,
      privateKey: readPemFile('etcd-keyfile', opts.keyFile),
      certChain: readPemFile('etcd-certfile', opts.certFile),
    };
  } else {
    log.warn('no certificate and key provided (--etcd-keyfile/--etcd-certfile): connecting to etcd without client TLS (insecure)');
  }
  if (opts.username || opts.password) {
    config.auth = { username: opts.username ?? '', password: opts.password ?? '' };
  }
  return config;
}

export function createEtcdClient(opts: EtcdClientOptions): Etcd3 {
  return new Etcd3(etcdClientConfig(opts));
}
