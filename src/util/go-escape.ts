// Go's encoding/json escapes <, >, & and U+2028/9 inside strings (HTML-safe output); flannel's bytes have them so.
export function goEscape(json: string): string {
  return json.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
