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
