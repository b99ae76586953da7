// What went wrong talking to etcd, in words that name the endpoint, the cause and the flag to fix: etcd3 and grpc
// report "14 UNAVAILABLE: No connection established. Last error: …" or, after a few failures, only the circuit
// breaker's "Execution prevented because the circuit breaker is open".

/** The flags that shape the connection: the description names the one to fix. */
export interface EtcdErrorContext {
  endpoints: readonly string[];
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  username?: string;
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

function causeText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function hostPort(endpoint: string): string {
  return endpoint.replace(/^https?:\/\//, '').replace(/\/+$/, '');
}

/** The endpoint the message is about: the one it names, else all of them. */
function whichEndpoint(message: string, endpoints: readonly string[], err: unknown): string {
  if (err instanceof EtcdEndpointDownError) return err.endpoint;
  const named = endpoints.filter((e) => message.includes(hostPort(e)));
  return (named.length > 0 ? named : endpoints).join(', ');
}

/** grpc's "14 UNAVAILABLE: No connection established. Last error: X. Resolution note: " → X, tidied. */
function lastError(message: string): string {
  const m = /Last error:\s*([\s\S]*?)(?:\s*\(\d{4}-\d\d-\d\dT[^)]*\))?\.?\s*(?:Resolution note:[\s\S]*)?$/.exec(
    message,
  );
  let text = (m ? m[1]! : message).trim();
  text = text.replace(/^Error(?: \[[A-Z_]+\])?:\s*/, '');
  // OpenSSL's "80ACC2…:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../deps/…:1601:SSL alert number 42"
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
  if (/^Failed to connect$/.test(text) && ctx.endpoints.every((e) => e.startsWith('http://'))) {
    return `the connection failed (${text}); if etcd serves TLS, use an https:// endpoint`;
  }
  return text;
}

function userText(ctx: EtcdErrorContext): string {
  return ctx.username ? `user "${ctx.username}"` : 'the client';
}

/** One line about an etcd failure: the endpoint, the cause and the flag to fix; other errors keep their message. */
export function describeEtcdError(err: unknown, ctx: EtcdErrorContext): string {
  const inner = err instanceof EtcdEndpointDownError ? err.cause : err;
  const message = causeText(inner);
  const where = whichEndpoint(message, ctx.endpoints, err);
  const at = `etcd at ${where}`;
  if (/authentication failed, invalid user ID or password/.test(message)) {
    return `${at} refused ${userText(ctx)}: authentication failed, invalid user name or password; check --etcd-username and --etcd-password`;
  }
  if (/etcdserver: user name is empty|etcdserver: user name not found/.test(message) && !ctx.username) {
    return `${at} requires authentication (${message.replace(/^.*?etcdserver: /, '')}); pass --etcd-username and --etcd-password`;
  }
  if (/etcdserver: user name not found/.test(message)) {
    return `${at} refused ${userText(ctx)}: no such user; check --etcd-username`;
  }
  if (/etcdserver: permission denied/.test(message)) {
    return `${at} denied ${userText(ctx)} access (permission denied); its role needs readwrite on the --etcd-prefix keys`;
  }
  if (/DEADLINE_EXCEEDED/.test(message)) {
    const after = /Deadline exceeded after ([\d.]+)s/.exec(message);
    return `${at} is unreachable: no answer within ${after ? `${Math.round(Number(after[1]))}s` : 'the deadline'}`;
  }
  if (/UNAVAILABLE/.test(message)) {
    return `${at} is unreachable: ${unreachableCause({ ...ctx, endpoints: where.split(', ') }, lastError(message))}`;
  }
  if (/circuit breaker is open/.test(message)) {
    return `${at} is unreachable: its last requests failed, so the client pauses calls to it for a few seconds`;
  }
  if (/^\d+ [A-Z_]+: /.test(message)) return `${at}: ${message}`;
  return message;
}

/** Whether `err` is about reaching or using etcd (as opposed to, say, the config it holds). */
export function isEtcdError(err: unknown): boolean {
  if (err instanceof EtcdEndpointDownError) return true;
  return /^\d+ [A-Z_]+: |circuit breaker is open|etcdserver: /.test(causeText(err));
}
