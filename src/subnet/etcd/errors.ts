// What went wrong talking to etcd, in words that name the endpoint, the cause and the flag to fix. The client throws
// one of the errors below; a socket's or OpenSSL's own text ("connect ECONNREFUSED …", "…:SSL routines:…:sslv3 alert
// bad certificate:…") is only their cause.

/** The flags that shape the connection: the description names the one to fix. */
export interface EtcdErrorContext {
  endpoints: readonly string[];
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  username?: string;
}

/** No connection to `endpoint`: refused, unroutable, a failed TLS handshake, or a server that is not etcd's. */
export class EtcdUnreachableError extends Error {
  readonly code = 'ETCD_UNREACHABLE';

  /** `reason`: what the socket or TLS layer said, tidied (tidyCause). */
  constructor(
    readonly endpoint: string,
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(`${endpoint}: ${reason}`, options);
  }
}

/** `endpoint` accepted the call (or the packets vanish) but gave no answer before the deadline. */
export class EtcdDeadlineError extends Error {
  readonly code = 'ETCD_DEADLINE';

  constructor(
    readonly endpoint: string,
    readonly afterMs: number,
  ) {
    super(`${endpoint}: no answer within ${Math.round(afterMs / 1000)}s`);
  }
}

/** etcd answered with an error: its gRPC status code and message, e.g. 7 "etcdserver: permission denied". */
export class EtcdServerError extends Error {
  constructor(
    readonly endpoint: string,
    readonly grpcCode: number,
    readonly serverMessage: string,
  ) {
    super(`${endpoint}: ${serverMessage} (gRPC code ${grpcCode})`);
  }

  /** etcd could not serve it now (no leader, leader changed, too many requests): another try may work. */
  get transient(): boolean {
    return (
      this.grpcCode === 14 ||
      /etcdserver: (no leader|leader changed|too many requests|request timed out)/.test(this.serverMessage)
    );
  }
}

/**
 * Thrown instead of a call while an endpoint rests after repeated failures (the client's circuit breaker), carrying
 * the failure that made it rest.
 */
export class EtcdEndpointDownError extends Error {
  readonly code = 'ETCD_ENDPOINT_DOWN';

  /** `description`: describeEtcdError of `cause` (the client knows the flags it needs). */
  constructor(
    readonly endpoint: string,
    override readonly cause: unknown,
    description: string,
  ) {
    super(`${description} (resting it for a few seconds after repeated failures)`, { cause });
  }
}

/** Whether another try, at once or on another endpoint, may succeed: no connection, no answer, or a busy etcd. */
export function isRecoverable(e: unknown): boolean {
  return (
    e instanceof EtcdUnreachableError || e instanceof EtcdDeadlineError || (e instanceof EtcdServerError && e.transient)
  );
}

/**
 * A socket or TLS error's text, short: Node's "Error [CODE]: " prefix dropped, OpenSSL's
 * "80ACC2…:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../deps/…:1601:SSL alert number 42"
 * cut to "sslv3 alert bad certificate, SSL alert number 42".
 */
export function tidyCause(message: string): string {
  let text = message.trim().replace(/^Error(?: \[[A-Z_]+\])?:\s*/, '');
  const ssl = /error:[0-9A-F]+:SSL routines:[^:]*:([^:]+):[\s\S]*?(SSL alert number \d+)?\s*$/.exec(text);
  if (ssl) text = ssl[2] ? `${ssl[1]}, ${ssl[2]}` : ssl[1]!;
  return text.replace(/\s+/g, ' ').replace(/\.$/, '');
}

const VERIFY_FAILURES = [
  'unable to verify the first certificate',
  'self-signed certificate',
  'self signed certificate',
  'unable to get local issuer certificate',
  'unable to get issuer certificate',
  'certificate signature failure',
  'certificate has expired',
  'certificate is not yet valid',
  'unsuitable certificate purpose',
];

/** A call whose connection closed before any HTTP/2 answer: what etcd's TLS port does with a plain connection. */
export const NO_HTTP2_ANSWER = 'the connection closed before any HTTP/2 answer';

/** Why the connection could not be made, and what to do about it. */
function unreachableCause(ctx: EtcdErrorContext, text: string): string {
  if (/ERR_TLS_CERT_ALTNAME_INVALID|does not match certificate's altnames/.test(text)) {
    return `its TLS certificate is not for this address (${text}); use an endpoint address that is in the certificate's subject alternative names`;
  }
  if (VERIFY_FAILURES.some((v) => text.includes(v))) {
    return ctx.caFile
      ? `its TLS certificate does not verify against the CA in --etcd-cafile=${ctx.caFile} (${text}); pass the CA that signed etcd's certificate`
      : `its TLS certificate does not verify against the system's CA roots (${text}); pass the CA that signed it with --etcd-cafile`;
  }
  if (
    /alert (bad certificate|certificate required|handshake failure|unknown ca|certificate unknown)|alert number (42|116|40|48|46)\b/.test(
      text,
    )
  ) {
    return ctx.certFile
      ? `it refused the client certificate --etcd-certfile=${ctx.certFile} in the TLS handshake (${text}); etcd's --trusted-ca-file must have signed it`
      : `it refused the TLS handshake (${text}): it wants a client certificate; pass --etcd-certfile and --etcd-keyfile`;
  }
  if (/disconnected before secure TLS connection|wrong version number|packet length too long/.test(text)) {
    return `the TLS handshake failed (${text}); is it serving plain http? then use an http:// endpoint`;
  }
  if (text.includes(NO_HTTP2_ANSWER) && ctx.endpoints[0]?.startsWith('http://')) {
    return `${text}; if etcd serves TLS, use an https:// endpoint`;
  }
  return text;
}

function userText(ctx: EtcdErrorContext): string {
  return ctx.username ? `user "${ctx.username}"` : 'the client';
}

/** etcd's own words for a refused call, with the flags that fix it; undefined for other server errors. */
function serverCause(message: string, ctx: EtcdErrorContext): string | undefined {
  if (/authentication failed, invalid user ID or password/.test(message)) {
    return `refused ${userText(ctx)}: authentication failed, invalid user name or password; check --etcd-username and --etcd-password`;
  }
  if (/etcdserver: user name is empty|etcdserver: user name not found/.test(message) && !ctx.username) {
    return `requires authentication (${message.replace(/^.*?etcdserver: /, '')}); pass --etcd-username and --etcd-password`;
  }
  if (/etcdserver: user name not found/.test(message)) {
    return `refused ${userText(ctx)}: no such user; check --etcd-username`;
  }
  if (/etcdserver: permission denied/.test(message)) {
    return `denied ${userText(ctx)} access (permission denied); its role needs readwrite on the --etcd-prefix keys`;
  }
  return undefined;
}

/** One line about an etcd failure: the endpoint, the cause and the flag to fix; other errors keep their message. */
export function describeEtcdError(err: unknown, ctx: EtcdErrorContext): string {
  const inner = err instanceof EtcdEndpointDownError ? err.cause : err;
  if (inner instanceof EtcdServerError) {
    const at = `etcd at ${inner.endpoint}`;
    return `${at} ${serverCause(inner.serverMessage, ctx) ?? `answered: ${inner.serverMessage}`}`;
  }
  if (inner instanceof EtcdDeadlineError) {
    return `etcd at ${inner.endpoint} is unreachable: no answer within ${Math.round(inner.afterMs / 1000)}s`;
  }
  if (inner instanceof EtcdUnreachableError) {
    const one = { ...ctx, endpoints: [inner.endpoint] };
    return `etcd at ${inner.endpoint} is unreachable: ${unreachableCause(one, inner.reason)}`;
  }
  return inner instanceof Error ? inner.message : String(inner);
}

/** Whether `err` is about reaching or using etcd (as opposed to, say, the config it holds). */
export function isEtcdError(err: unknown): boolean {
  return (
    err instanceof EtcdEndpointDownError ||
    err instanceof EtcdUnreachableError ||
    err instanceof EtcdDeadlineError ||
    err instanceof EtcdServerError
  );
}
