// JSON bytes as Go's encoding/json writes them: map keys sorted, compact, <>& and U+2028/9 escaped.
// The delegate config must match the real plugin byte for byte (it is saved and replayed on DEL).
import { goEscape } from '../util/json.ts';

/** A value marshalled like a Go struct: fields in declaration order, not sorted. */
export class GoStruct {
  constructor(readonly fields: ReadonlyArray<readonly [string, unknown]>) {}
}

function goString(s: string): string {
  return goEscape(JSON.stringify(s));
}

export function goMarshal(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return goString(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`json: unsupported value: ${v}`);
    return JSON.stringify(v);
  }
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (Array.isArray(v)) return `[${v.map(goMarshal).join(',')}]`;
  if (v instanceof GoStruct) {
    return `{${v.fields
      .filter(([, x]) => x !== undefined)
      .map(([k, x]) => `${goString(k)}:${goMarshal(x)}`)
      .join(',')}}`;
  }
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${keys.map((k) => `${goString(k)}:${goMarshal(o[k])}`).join(',')}}`;
  }
  throw new Error(`json: unsupported type: ${typeof v}`);
}
