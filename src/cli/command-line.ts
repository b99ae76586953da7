// A command line parsed against one command table, which also writes the usage text: what `--help` shows and what the
// parser accepts cannot drift apart. node:util parseArgs splits the tokens; the checks and messages are ours. Pure.
import { parseArgs } from 'node:util';

export interface OptionSpec {
  /** A string option takes a value (`--name V` or `--name=V`); a boolean one is a switch. */
  type: 'string' | 'boolean';
  description: string;
  /** The value in the usage, e.g. N; an option with choices shows them as a|b|c. */
  placeholder?: string;
  /** String options only; '' when absent. */
  default?: string;
  choices?: readonly string[];
  /** What is wrong with a value ('expected a whole number'), or undefined when it is fine. */
  check?: (value: string) => string | undefined;
}

export interface ArgSpec {
  name: string;
  description: string;
}

export interface CommandSpec {
  name: string;
  /** One line, shown in the command lists and under the synopsis. */
  summary: string;
  /** Parsed and run like any other, left out of the command lists (helpers other commands start). */
  hidden?: boolean;
  options?: Readonly<Record<string, OptionSpec>>;
  /** Required positional arguments, in order. */
  args?: readonly ArgSpec[];
  /** What is wrong with a combination of options, once each passed its own check; undefined when fine. */
  check?: (inv: Invocation) => string | undefined;
  /** A group: the next word picks one of these. */
  commands?: readonly CommandSpec[];
}

/** A command to run: the leaf's path and its options with defaults filled in. */
export interface Invocation {
  /** The words below the root, e.g. 'lab up'. */
  command: string;
  /** Every string option of the command: the given value, else its default, else ''. */
  strings: Record<string, string>;
  /** Every boolean option of the command; false when not given. */
  flags: Record<string, boolean>;
  args: string[];
}

export type ParseResult = { type: 'help'; usage: string } | ({ type: 'run' } & Invocation);

/** Bad usage: the message names the input; `usage` is the text of the command it was meant for. */
export class UsageError extends Error {
  readonly code = 'EUSAGE';
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

const HELP_DESCRIPTION = 'print this help and exit';
const isHelp = (word: string | undefined) => word === '--help' || word === '-h';

/** `argv` without node and the script: a help request or an invocation; bad usage throws UsageError. */
export function parseCommandLine(root: CommandSpec, argv: readonly string[]): ParseResult {
  const path: CommandSpec[] = [root];
  let i = 0;
  while (path.at(-1)!.commands) {
    const word = argv[i];
    if (isHelp(word)) return { type: 'help', usage: usage(path) };
    if (word === 'help') return { type: 'help', usage: usage(lookUp(path, argv.slice(i + 1))) };
    path.push(subcommand(path, word));
    i++;
  }
  return parseLeaf(path, argv.slice(i));
}

function subcommand(path: CommandSpec[], word: string | undefined): CommandSpec {
  const names = visible(path.at(-1)!.commands!)
    .map((c) => c.name)
    .join(', ');
  if (word === undefined) throw bad(path, `missing command; choose one of ${names}`);
  if (word.startsWith('-')) throw bad(path, `unknown option ${word}; give a command first (${names})`);
  const next = path.at(-1)!.commands!.find((c) => c.name === word);
  if (!next) throw bad(path, `unknown command ${word}; choose one of ${names}`);
  return next;
}

/** `help lab up`: the command those words name. */
function lookUp(from: CommandSpec[], words: readonly string[]): CommandSpec[] {
  const path = [...from];
  for (const w of words) {
    if (!path.at(-1)!.commands) throw bad(path, `unexpected argument ${w} after help`);
    path.push(subcommand(path, w));
  }
  return path;
}

function parseLeaf(path: CommandSpec[], words: string[]): ParseResult {
  const spec = path.at(-1)!;
  const options = spec.options ?? {};
  const config = Object.fromEntries(Object.entries(options).map(([name, o]) => [name, { type: o.type }]));
  const { tokens } = parseArgs({
    args: words,
    options: { ...config, help: { type: 'boolean', short: 'h' } },
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  if (tokens.some((t) => t.kind === 'option' && t.name === 'help')) return { type: 'help', usage: usage(path) };

  const inv: Invocation = {
    command: path
      .slice(1)
      .map((c) => c.name)
      .join(' '),
    strings: {},
    flags: {},
    args: [],
  };
  for (const [name, o] of Object.entries(options)) {
    if (o.type === 'string') inv.strings[name] = o.default ?? '';
    else inv.flags[name] = false;
  }
  for (const t of tokens) {
    if (t.kind === 'positional') inv.args.push(t.value);
    if (t.kind !== 'option') continue;
    const o = Object.hasOwn(options, t.name) ? options[t.name]! : undefined;
    if (!o) throw bad(path, `unknown option ${t.rawName}`);
    if (o.type === 'boolean') {
      if (t.value !== undefined) throw bad(path, `${t.rawName} takes no value (got ${t.rawName}=${t.value})`);
      inv.flags[t.name] = true;
      continue;
    }
    // parseArgs takes the next word as the value even when it is the next option.
    if (t.value === undefined || (!t.inlineValue && /^-./.test(t.value))) throw bad(path, `${t.rawName} needs a value`);
    const problem =
      o.choices && !o.choices.includes(t.value) ? `choose one of ${o.choices.join(', ')}` : o.check?.(t.value);
    if (problem) throw bad(path, `${t.rawName} ${t.value}: ${problem}`);
    inv.strings[t.name] = t.value;
  }
  const want = spec.args ?? [];
  if (inv.args.length < want.length)
    throw bad(
      path,
      `missing ${want
        .slice(inv.args.length)
        .map((a) => `<${a.name}>`)
        .join(' ')}`,
    );
  if (inv.args.length > want.length) throw bad(path, `unexpected argument ${inv.args[want.length]}`);
  const problem = spec.check?.(inv);
  if (problem) throw bad(path, problem);
  return { type: 'run', ...inv };
}

function bad(path: CommandSpec[], message: string): UsageError {
  const where = path
    .slice(1)
    .map((c) => c.name)
    .join(' ');
  return new UsageError(where ? `${where}: ${message}` : message, usage(path));
}

const visible = (commands: readonly CommandSpec[]) => commands.filter((c) => !c.hidden);

/** Every visible leaf below `spec`, with the words that lead to it from there. */
function leaves(spec: CommandSpec, words: string[] = []): Array<{ words: string[]; spec: CommandSpec }> {
  if (!spec.commands) return [{ words, spec }];
  return visible(spec.commands).flatMap((c) => leaves(c, [...words, c.name]));
}

const argWords = (spec: CommandSpec) => (spec.args ?? []).map((a) => `<${a.name}>`);

function optionWords(name: string, o: OptionSpec): string {
  return o.type === 'boolean' ? `--${name}` : `--${name} ${o.placeholder ?? o.choices?.join('|') ?? 'VALUE'}`;
}

/** Two columns, the left one padded to its widest cell. */
function table(rows: Array<[string, string]>): string {
  const width = Math.max(...rows.map(([l]) => l.length));
  return rows.map(([l, r]) => `  ${l.padEnd(width)}   ${r}`.trimEnd()).join('\n');
}

/** Words joined into lines of at most `width` columns, continuation lines indented under the first word after `lead`. */
function wrap(lead: string, words: string[], width = 100): string {
  const lines = [lead];
  let fresh = true;
  for (const w of words) {
    if (!fresh && lines.at(-1)!.length + 1 + w.length > width) lines.push(' '.repeat(lead.length));
    lines[lines.length - 1] += ` ${w}`;
    fresh = false;
  }
  return lines.join('\n');
}

/** The help text of the last command of `path` (the root first). */
export function usage(path: readonly CommandSpec[]): string {
  const spec = path.at(-1)!;
  const lead = `Usage: ${path.map((c) => c.name).join(' ')}`;
  if (spec.commands) {
    const rows = leaves(spec).map(({ words, spec: leaf }): [string, string] => [
      [...words, ...argWords(leaf)].join(' '),
      leaf.summary,
    ]);
    const self = path.map((c) => c.name).join(' ');
    return (
      `${lead} <command>\n\n${spec.summary}\n\nCommands:\n${table(rows)}\n\n` +
      `Run \`${self} <command> --help\` (or \`${self} help <command>\`) for a command's options.\n`
    );
  }
  const options = Object.entries(spec.options ?? {});
  const synopsis = wrap(lead, [...options.map(([name, o]) => `[${optionWords(name, o)}]`), ...argWords(spec)]);
  let text = `${synopsis}\n\n${spec.summary}\n`;
  if (spec.args?.length) text += `\nArguments:\n${table(spec.args.map((a) => [`<${a.name}>`, a.description]))}\n`;
  const rows = options.map(([name, o]): [string, string] => [
    optionWords(name, o),
    o.default ? `${o.description} (default ${o.default})` : o.description,
  ]);
  return `${text}\nOptions:\n${table([...rows, ['-h, --help', HELP_DESCRIPTION]])}\n`;
}

/** Every command that runs (hidden ones too), as Invocation.command names them: for checking a handler table. */
export function commandNames(spec: CommandSpec, words: string[] = []): string[] {
  if (!spec.commands) return [words.join(' ')];
  return spec.commands.flatMap((c) => commandNames(c, [...words, c.name]));
}
