// CNI error results: the spec's well-known codes and the JSON a runtime parses from stdout.

/** Well-known error codes of the CNI spec (1.1), plus 999 for everything else. */
export const CniCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IOFailure: 5,
  DecodingFailure: 6,
  InvalidNetworkConfig: 7,
  TryAgainLater: 11,
  /** STATUS: the plugin cannot service ADD requests. */
  NotAvailable: 50,
  Generic: 999,
} as const;

export class CniError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly details = '',
  ) {
    super(message);
    this.name = 'CniError';
  }
}

export function asCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  return new CniError(CniCode.Generic, err instanceof Error ? err.message : String(err));
}

/** The error object printed on stdout (indented like libcni prints it; `details` only when set). */
export function formatCniError(err: CniError, cniVersion: string): string {
  const obj: Record<string, unknown> = { cniVersion, code: err.code, msg: err.message };
  if (err.details) obj.details = err.details;
  return JSON.stringify(obj, null, 4);
}
