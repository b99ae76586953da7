// flanneld's etcd v3 client: etcd's gRPC API over Node's own HTTP/2, one connection per endpoint, for the few calls
// flannel makes (proto.ts), each with a deadline, tried on the next endpoint when one fails, with etcd's token auth
// and TLS from flanneld's --etcd-* options (docs/COMPATIBILITY.md, "flanneld flags and environment"). A general gRPC
// client (etcd3 with grpc-js and protobufjs) cost flanneld about 100 ms of start-up and 20 MB of RSS (docs/scale.md).
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  connect as http2Connect,
  constants,
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
} from 'node:http2';
import { createSecureContext } from 'node:tls';
import { errorMessage, logger } from '../../log/log.ts';
import {
  EtcdDeadlineError,
  EtcdServerError,
  EtcdUnreachableError,
  NO_HTTP2_ANSWER,
  describeEtcdError,
  isRecoverable,
  tidyCause,
  type EtcdErrorContext,
} from './errors.ts';
import { SilenceWatch, endpointBreaker, retryPolicy, type Policy } from './fault-handling.ts';
import {
  GrpcFrames,
  Message,
  authenticateRequest,
  decodeRange,
  decodeTxn,
  decodeWatchResponse,
  deleteRequest,
  grpcFrame,
  leaseGrantRequest,
  leaseIdRequest,
  putIfRequest,
  putRequest,
  rangeRequest,
  revisionOf,
  watchCreateRequest,
  type KeyValue,
  type WatchEvent,
  type WatchMessage,
} from './proto.ts';

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

/** The PEM files of --etcd-cafile, --etcd-certfile, --etcd-keyfile, read. */
export interface TlsFiles {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** The client's settings, checked. */
export interface EtcdClientConfig {
  endpoints: string[];
  secure: boolean;
  tls?: TlsFiles;
  auth?: { username: string; password: string };
  callTimeoutMs: number;
  waitLogIntervalMs: number;
  /** The flags the client's error texts name (etcdErrorContext). */
  errorContext: EtcdErrorContext;
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
function tlsCredentials(opts: EtcdClientOptions, endpoints: string[]): TlsFiles | undefined {
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
  if (!caFile && !keyFile) return undefined; // TLS with the system roots
  return {
    // Without a CA, the system roots verify etcd.
    ...(caFile ? { ca: readPemFile('etcd-cafile', caFile) } : {}),
    ...(keyFile && certFile
      ? { key: readPemFile('etcd-keyfile', keyFile), cert: readPemFile('etcd-certfile', certFile) }
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

/** The options checked and the TLS files read; throws naming the flag to fix. */
export function etcdClientConfig(opts: EtcdClientOptions): EtcdClientConfig {
  const endpoints = checkEndpoints(opts.endpoints);
  const tls = tlsCredentials(opts, endpoints);
  return {
    endpoints,
    secure: endpoints[0]!.startsWith('https://'),
    ...(tls ? { tls } : {}),
    ...(opts.username || opts.password
      ? { auth: { username: opts.username ?? '', password: opts.password ?? '' } }
      : {}),
    callTimeoutMs: opts.callTimeoutMs ?? 10_000,
    waitLogIntervalMs: opts.waitLogIntervalMs ?? 10_000,
    errorContext: etcdErrorContext(opts),
  };
}

/** Fails now, naming the flag, on a file that is no PEM certificate or key, or a key that is not the certificate's. */
function checkCredentials(c: TlsFiles, opts: EtcdClientOptions): void {
  const check = (what: string, f: () => unknown) => {
    try {
      f();
    } catch (e) {
      throw new Error(`${what} (${errorMessage(e)})`);
    }
  };
  if (c.ca) check(`--etcd-cafile ${opts.caFile}: not a PEM certificate`, () => new X509Certificate(c.ca!));
  if (c.cert) check(`--etcd-certfile ${opts.certFile}: not a PEM certificate`, () => new X509Certificate(c.cert!));
  if (c.key) check(`--etcd-keyfile ${opts.keyFile}: not a PEM private key`, () => createPrivateKey(c.key!));
  if (c.key && c.cert) {
    check(`--etcd-keyfile ${opts.keyFile} is not the key of --etcd-certfile ${opts.certFile}`, () =>
      createSecureContext({ key: c.key, cert: c.cert }),
    );
  }
}

/** Whether the watch failed on the way (etcd gone, frozen) or etcd ended it (compaction, an error). */
export type WatchFailure = { kind: 'disconnected' | 'canceled'; reason: string };

export interface WatchHandlers {
  /** etcd accepted the watch. */
  connected(): void;
  events(events: WatchEvent[]): void;
  /** Called once; the watch is over (the caller lists again and starts a new one). */
  failed(f: WatchFailure): void;
}

export interface EtcdWatch {
  cancel(): void;
}

/**
 * An idle watch stream gets no bytes from an etcd that froze (SIGSTOP, a dead host keeping its TCP state): after
 * this long without any, an HTTP/2 ping checks that etcd still answers (what gRPC's keepalive does).
 */
const WATCH_PROBE_IDLE_MS = 7000;
const WATCH_PROBE_TIMEOUT_MS = 3000;

/** Answers of etcd that mean the auth token is gone (expired, or issued before a restart): authenticate again. */
const STALE_TOKEN = /invalid auth token|auth: revision in header is old|user name is empty/;

/** etcd's gRPC services, as etcd's rpc.proto names them. */
const RPC = {
  range: '/etcdserverpb.KV/Range',
  put: '/etcdserverpb.KV/Put',
  deleteRange: '/etcdserverpb.KV/DeleteRange',
  txn: '/etcdserverpb.KV/Txn',
  leaseGrant: '/etcdserverpb.Lease/LeaseGrant',
  leaseRevoke: '/etcdserverpb.Lease/LeaseRevoke',
  leaseTimeToLive: '/etcdserverpb.Lease/LeaseTimeToLive',
  watch: '/etcdserverpb.Watch/Watch',
  authenticate: '/etcdserverpb.Auth/Authenticate',
} as const;

interface Endpoint {
  url: string;
  breaker: Policy & { readonly resting: boolean };
  token?: Promise<string>;
  /** One HTTP/2 connection per endpoint, opened on first use and again after it closed. */
  session?: ClientHttp2Session;
}

/** gRPC's status of a finished call: from the trailers, or the headers of a trailers-only answer. */
interface GrpcStatus {
  code: number;
  message: string;
}

function grpcStatus(h: IncomingHttpHeaders): GrpcStatus | undefined {
  const code = h['grpc-status'];
  if (code === undefined) return undefined;
  const raw = String(h['grpc-message'] ?? '');
  let message = raw;
  try {
    message = decodeURIComponent(raw);
  } catch {
    // not percent-encoded after all
  }
  return { code: Number(code), message };
}

/** A stream's error text: the connection's own error when the stream only died with it. */
function streamErrorText(e: unknown): string {
  const err = e as { code?: string; cause?: unknown };
  const inner = err.code === 'ERR_HTTP2_STREAM_CANCEL' && err.cause ? err.cause : e;
  return tidyCause(errorMessage(inner));
}

export class EtcdClient {
  private readonly endpoints: Endpoint[];
  /** Calls go to this endpoint until it fails. */
  private current = 0;
  private readonly retry: Policy;
  private readonly silence: SilenceWatch;
  private readonly watches = new Set<ClientHttp2Stream>();
  private closed = false;

  constructor(readonly config: EtcdClientConfig) {
    const ctx = config.errorContext;
    this.endpoints = config.endpoints.map((url) => ({
      url: url.replace(/\/+$/, ''),
      breaker: endpointBreaker({ endpoint: url, describe: (e) => describeEtcdError(e, ctx) }),
    }));
    this.silence = new SilenceWatch({
      intervalMs: config.waitLogIntervalMs,
      onSilence: (ms) =>
        log.warn(`waiting for etcd at ${config.endpoints.join(', ')} (no answer for ${Math.round(ms / 1000)}s)`),
    });
    this.retry = retryPolicy(this.silence);
  }

  /** One key; `revision` is the store's at the read. */
  async get(key: string): Promise<{ revision: string; kv: KeyValue | undefined }> {
    const r = decodeRange(await this.call(RPC.range, rangeRequest(key)));
    return { revision: r.revision, kv: r.kvs[0] };
  }

  /** Every key under `prefix`, in key order. */
  async getPrefix(prefix: string): Promise<{ revision: string; kvs: KeyValue[] }> {
    return decodeRange(await this.call(RPC.range, rangeRequest(prefix, true)));
  }

  /** Writes the key (attached to etcd lease `lease`, if given); returns the revision of the write. */
  async put(key: string, value: string, lease?: string): Promise<string> {
    return revisionOf(new Message(await this.call(RPC.put, putRequest(key, value, lease))));
  }

  /** Writes the key only if its version (0: absent) or mod revision still is `expected`. */
  async putIf(
    target: 'version' | 'modRevision',
    expected: string,
    put: { key: string; value: string; lease?: string },
  ): Promise<{ succeeded: boolean; revision: string }> {
    return decodeTxn(await this.call(RPC.txn, putIfRequest(put.key, target, expected, put)));
  }

  async delete(key: string): Promise<void> {
    await this.call(RPC.deleteRange, deleteRequest(key));
  }

  /** A new etcd lease; `ttl` is what etcd granted. */
  async leaseGrant(ttlSeconds: number): Promise<{ id: string; ttl: number }> {
    // LeaseGrantResponse: ID 2, TTL 3, error 4.
    const m = new Message(await this.call(RPC.leaseGrant, leaseGrantRequest(ttlSeconds)));
    if (m.string(4)) throw new EtcdServerError(this.pick().url, 2, m.string(4));
    return { id: m.int(2), ttl: Number(m.int(3)) };
  }

  async leaseRevoke(id: string): Promise<void> {
    await this.call(RPC.leaseRevoke, leaseIdRequest(id));
  }

  /** Seconds the etcd lease has left; -1 once it has run out. */
  async leaseTimeToLive(id: string): Promise<number> {
    // LeaseTimeToLiveResponse: TTL 3.
    return Number(new Message(await this.call(RPC.leaseTimeToLive, leaseIdRequest(id))).int(3));
  }

  /**
   * Watches a key or a prefix from `startRevision`, with each change's previous value. Never resumes by itself: on
   * any failure it tells `failed` once, and the caller lists again (nothing can be skipped that way).
   */
  watch(o: { key: string; prefix?: boolean; startRevision: string }, h: WatchHandlers): EtcdWatch {
    const ep = this.pick();
    let over = false;
    let stream: ClientHttp2Stream | undefined;
    let probe: NodeJS.Timeout | undefined;
    const end = (f?: WatchFailure) => {
      if (over) return;
      over = true;
      clearTimeout(probe);
      if (stream) {
        this.watches.delete(stream);
        stream.close(constants.NGHTTP2_CANCEL);
      }
      if (f) h.failed(f);
    };
    const armProbe = () => {
      clearTimeout(probe);
      probe = setTimeout(() => {
        const session = ep.session;
        if (!session || session.destroyed) return;
        const silent = setTimeout(() => {
          // A frozen etcd: the next call reconnects instead of waiting on this connection.
          session.destroy();
          end({
            kind: 'disconnected',
            reason: `etcd at ${ep.url} is unreachable: no answer to an HTTP/2 ping within ${WATCH_PROBE_TIMEOUT_MS / 1000}s`,
          });
        }, WATCH_PROBE_TIMEOUT_MS);
        const sent = session.ping((err) => {
          clearTimeout(silent);
          if (!err) armProbe();
        });
        if (!sent) clearTimeout(silent);
      }, WATCH_PROBE_IDLE_MS);
      probe.unref();
    };
    const frames = new GrpcFrames();
    this.headers(ep).then(
      (headers) => {
        if (over) return;
        let s: ClientHttp2Stream;
        try {
          s = this.request(ep, RPC.watch, headers);
        } catch (e) {
          return end({ kind: 'disconnected', reason: this.unreachable(ep, e) });
        }
        stream = s;
        this.watches.add(s);
        let status: GrpcStatus | undefined;
        let error: unknown;
        s.on('response', (hd) => {
          status = grpcStatus(hd);
        });
        s.on('trailers', (t) => {
          status = grpcStatus(t);
        });
        s.on('data', (chunk: Buffer) => {
          armProbe();
          let messages: WatchMessage[];
          try {
            messages = frames.push(chunk).map(decodeWatchResponse);
          } catch (e) {
            return end({
              kind: 'disconnected',
              reason: `etcd at ${ep.url} sent a bad watch message (${errorMessage(e)})`,
            });
          }
          for (const m of messages) {
            if (over) return;
            if (m.kind === 'created') h.connected();
            else if (m.kind === 'events') {
              if (m.events.length > 0) h.events(m.events);
            } else end({ kind: 'canceled', reason: m.reason });
          }
        });
        s.on('error', (e) => {
          error = e;
        });
        s.on('close', () => {
          // Closed with the client: nothing failed.
          if (this.closed) return end();
          if (over) return;
          if (status && status.code !== 0) return end(this.watchRefused(ep, status));
          end({
            kind: 'disconnected',
            reason: error !== undefined ? this.unreachable(ep, error) : `etcd at ${ep.url} ended the watch stream`,
          });
        });
        s.write(grpcFrame(watchCreateRequest(o.key, o.prefix ?? false, o.startRevision)));
        armProbe();
      },
      (e: unknown) => end({ kind: 'disconnected', reason: describeEtcdError(e, this.config.errorContext) }),
    );
    return { cancel: () => end() };
  }

  close(): void {
    this.closed = true;
    this.silence.stop();
    for (const w of this.watches) w.close(constants.NGHTTP2_CANCEL);
    this.watches.clear();
    for (const ep of this.endpoints) {
      ep.session?.close();
      ep.session = undefined;
    }
  }

  /** Describes a connection failure of `ep` and moves calls to the next endpoint. */
  private unreachable(ep: Endpoint, e: unknown): string {
    const err = new EtcdUnreachableError(ep.url, streamErrorText(e));
    this.failedOver(ep, err);
    return describeEtcdError(err, this.config.errorContext);
  }

  private watchRefused(ep: Endpoint, status: GrpcStatus): WatchFailure {
    const e = new EtcdServerError(ep.url, status.code, status.message);
    if (STALE_TOKEN.test(e.serverMessage)) ep.token = undefined;
    return {
      kind: isRecoverable(e) ? 'disconnected' : 'canceled',
      reason: describeEtcdError(e, this.config.errorContext),
    };
  }

  /** The first endpoint from the current one on that is not resting (the current one if all are). */
  private pick(): Endpoint {
    const n = this.endpoints.length;
    for (let i = 0; i < n; i++) {
      const ep = this.endpoints[(this.current + i) % n]!;
      if (!ep.breaker.resting) return ep;
    }
    return this.endpoints[this.current % n]!;
  }

  /** After `ep` failed to answer, calls go to the next endpoint. */
  private failedOver(ep: Endpoint, e: unknown): void {
    if (!isRecoverable(e)) return;
    const i = this.endpoints.indexOf(ep);
    if (i === this.current % this.endpoints.length) this.current = (i + 1) % this.endpoints.length;
  }

  /** A unary call: retried on failure (on the next endpoint), each try under the endpoint's breaker. */
  private call(path: string, body: Buffer): Promise<Buffer> {
    if (this.closed) return Promise.reject(new Error('the etcd client is closed'));
    return this.retry.execute(async () => {
      const ep = this.pick();
      try {
        return await ep.breaker.execute(() => this.authorizedCall(ep, path, body));
      } catch (e) {
        this.failedOver(ep, e);
        throw e;
      }
    });
  }

  private async authorizedCall(ep: Endpoint, path: string, body: Buffer): Promise<Buffer> {
    const headers = await this.headers(ep);
    try {
      return await this.send(ep, path, body, this.config.callTimeoutMs, headers);
    } catch (e) {
      if (!(this.config.auth && e instanceof EtcdServerError && STALE_TOKEN.test(e.serverMessage))) throw e;
      ep.token = undefined;
      return this.send(ep, path, body, this.config.callTimeoutMs, await this.headers(ep));
    }
  }

  /** The auth metadata for `ep`: a token from Authenticate, taken once and kept until etcd refuses it. */
  private headers(ep: Endpoint): Promise<Record<string, string>> {
    const auth = this.config.auth;
    if (!auth) return Promise.resolve({});
    ep.token ??= this.send(
      ep,
      RPC.authenticate,
      authenticateRequest(auth.username, auth.password),
      this.config.callTimeoutMs,
    ).then((res) => new Message(res).string(2));
    const token = ep.token;
    return token.then(
      (t) => ({ token: t }),
      (e: unknown) => {
        if (ep.token === token) ep.token = undefined;
        throw e;
      },
    );
  }

  /** The endpoint's connection, opened now if it has none. */
  private session(ep: Endpoint): ClientHttp2Session {
    const open = ep.session;
    if (open && !open.closed && !open.destroyed) return open;
    const session = http2Connect(ep.url, { ...this.config.tls, maxSessionMemory: 64 });
    // Its errors reach the streams on it, which report them.
    session.on('error', () => {});
    const forget = () => {
      if (ep.session === session) ep.session = undefined;
    };
    session.on('close', forget);
    // A server going away (etcd shutting down) takes no new streams: the next call opens a new connection.
    session.on('goaway', forget);
    ep.session = session;
    return session;
  }

  private request(ep: Endpoint, path: string, headers: Record<string, string>, timeoutMs?: number) {
    return this.session(ep).request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...(timeoutMs ? { 'grpc-timeout': `${timeoutMs}m` } : {}),
      ...headers,
    });
  }

  /** One gRPC call and its answer, within `timeoutMs`; throws the errors of errors.ts. */
  private send(
    ep: Endpoint,
    path: string,
    body: Buffer,
    timeoutMs: number,
    headers: Record<string, string> = {},
  ): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      let stream: ClientHttp2Stream;
      try {
        stream = this.request(ep, path, headers, timeoutMs);
      } catch (e) {
        return reject(new EtcdUnreachableError(ep.url, streamErrorText(e), { cause: e }));
      }
      const frames = new GrpcFrames();
      let answer: Buffer | undefined;
      let status: GrpcStatus | undefined;
      let httpStatus = 0;
      let error: unknown;
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        // No answer at all: the next call opens a new connection rather than queue on this one.
        ep.session?.destroy();
        stream.close(constants.NGHTTP2_CANCEL);
      }, timeoutMs);
      stream.on('response', (h) => {
        httpStatus = Number(h[':status']);
        status = grpcStatus(h);
      });
      stream.on('data', (chunk: Buffer) => {
        try {
          for (const m of frames.push(chunk)) answer = m;
        } catch (e) {
          error = e;
        }
      });
      stream.on('trailers', (t) => {
        status = grpcStatus(t);
      });
      stream.on('error', (e) => {
        error = e;
      });
      stream.on('close', () => {
        clearTimeout(timer);
        if (timedOut) return reject(new EtcdDeadlineError(ep.url, timeoutMs));
        if (status && status.code !== 0) return reject(new EtcdServerError(ep.url, status.code, status.message));
        if (status && answer && error === undefined) return resolve(answer);
        if (error !== undefined) {
          return reject(new EtcdUnreachableError(ep.url, streamErrorText(error), { cause: error }));
        }
        reject(
          new EtcdUnreachableError(
            ep.url,
            httpStatus && httpStatus !== 200
              ? `HTTP ${httpStatus} to ${path}: not etcd's gRPC service`
              : `${NO_HTTP2_ANSWER} to ${path}`,
          ),
        );
      });
      stream.end(grpcFrame(body));
    });
  }
}

export function createEtcdClient(opts: EtcdClientOptions): EtcdClient {
  const config = etcdClientConfig(opts);
  if (config.tls) checkCredentials(config.tls, opts);
  return new EtcdClient(config);
}
