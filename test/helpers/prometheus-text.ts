// A small, strict parser of the Prometheus text exposition format (0.0.4), so tests read /metrics as a scraper does:
// every sample must belong to a family declared by # TYPE, label values are unescaped, values are numbers.

export interface Family {
  name: string;
  type: string;
  help: string;
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Scrape {
  families: Map<string, Family>;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const SUFFIXES = ['', '_total', '_bucket', '_sum', '_count', '_created'];

function unescape(s: string, quote: boolean): string {
  return s.replace(quote ? /\\([\\"n])/g : /\\([\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

function parseValue(raw: string, line: string): number {
  if (/^[+-]?inf$/i.test(raw)) return raw.startsWith('-') ? -Infinity : Infinity;
  if (/^nan$/i.test(raw)) return NaN;
  const v = Number(raw);
  if (raw === '' || Number.isNaN(v))
    throw new Error(`not a sample value: ${JSON.stringify(raw)} in ${JSON.stringify(line)}`);
  return v;
}

/** `name{a="x",b="y"} 1.5 [timestamp]` → a sample. */
function parseSample(line: string): Sample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(\s+-?\d+)?$/.exec(line);
  if (!m) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
  const labels: Record<string, string> = {};
  let rest = m[2] ? m[2].slice(1, -1) : '';
  while (rest.length > 0) {
    const l = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,\s*)?/.exec(rest);
    if (!l) throw new Error(`bad labels ${JSON.stringify(m[2])} in ${JSON.stringify(line)}`);
    if (l[1]! in labels) throw new Error(`label ${l[1]} twice in ${JSON.stringify(line)}`);
    labels[l[1]!] = unescape(l[2]!, true);
    rest = rest.slice(l[0].length);
  }
  return { name: m[1]!, labels, value: parseValue(m[3]!, line) };
}

export function parsePrometheusText(text: string): Scrape {
  const families = new Map<string, Family>();
  const samples: Sample[] = [];
  const helps = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const meta = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
    if (meta) {
      const [, kind, name, rest = ''] = meta;
      if (!NAME.test(name!)) throw new Error(`bad metric name ${name}`);
      if (kind === 'HELP') helps.set(name!, unescape(rest, false));
      else {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest))
          throw new Error(`bad type ${rest} of ${name}`);
        if (families.has(name!)) throw new Error(`${name} declared twice`);
        families.set(name!, { name: name!, type: rest, help: '' });
      }
      continue;
    }
    if (line.startsWith('#')) continue;
    samples.push(parseSample(line));
  }
  for (const [name, help] of helps) {
    const f = families.get(name);
    if (!f) throw new Error(`# HELP for ${name} without # TYPE`);
    f.help = help;
  }
  for (const s of samples) {
    if (!familyOf(families, s.name)) throw new Error(`sample ${s.name} belongs to no declared family`);
  }
  return { families, samples };
}

/** The family a sample name belongs to (`x_bucket` → histogram `x`; prom-client declares counters with `_total`). */
export function familyOf(families: Map<string, Family>, sample: string): Family | undefined {
  for (const suffix of SUFFIXES) {
    if (!sample.endsWith(suffix)) continue;
    const f = families.get(sample.slice(0, sample.length - suffix.length));
    if (f) return f;
  }
  return undefined;
}

/** The samples of `name` whose labels include `labels`. */
export function samplesOf(scrape: Scrape, name: string, labels: Record<string, string> = {}): Sample[] {
  return scrape.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The value of the one sample of `name` with `labels`; throws when there is none or more than one. */
export function valueOf(scrape: Scrape, name: string, labels: Record<string, string> = {}): number {
  const found = samplesOf(scrape, name, labels);
  if (found.length !== 1)
    throw new Error(`${found.length} samples of ${name}${JSON.stringify(labels)}: ${JSON.stringify(found)}`);
  return found[0]!.value;
}
