// A parsed JSON value that is an object (not null, not an array); T is what its members are taken to be.
export function isObject<T = unknown>(v: unknown): v is Record<string, T> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
