// A parsed JSON value that is an object (not null, not an array); T is what its members are taken to be.
export function isObject<T = unknown>(v: unknown): v is Record<string, T> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A value as an error message quotes it: JSON, cut to `max` characters. Never throws: JSON.stringify overflows the
 * stack on a value nested some thousands deep, which JSON.parse accepts, and a bad input must get its own error.
 */
export function jsonSnippet(v: unknown, max = 200): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(v);
  } catch {
    return '(a value nested too deeply to show)';
  }
  if (text === undefined) return String(v);
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** Go's encoding/json escapes <, >, & and U+2028/9 inside strings (HTML-safe output); flannel's bytes have them so. */
export function goEscape(json: string): string {
  return json.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
