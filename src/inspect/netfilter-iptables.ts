// Reads `iptables-save` / `ip6tables-save` text (with or without -c) into the netfilter model; no I/O.
import {
  NetfilterParseError,
  netOf,
  protoName,
  type NfChain,
  type NfHook,
  type NfMatch,
  type NfPortRange,
  type NfRule,
  type NfRuleVerdict,
} from './netfilter.ts';

const HOOKS: Record<string, NfHook> = {
  PREROUTING: 'prerouting',
  INPUT: 'input',
  FORWARD: 'forward',
  OUTPUT: 'output',
  POSTROUTING: 'postrouting',
};
/** The priorities iptables-nft registers each table's built-in chains at (the kernel's NF_IP_PRI_* values). */
const TABLE_PRIORITY: Record<string, number> = { raw: -300, mangle: -150, filter: 0, security: 50 };
/** nat is dstnat (-100) before routing and srcnat (100) after it. */
const NAT_PRIORITY: Record<NfHook, number> = {
  prerouting: -100,
  output: -100,
  input: 100,
  forward: 0,
  postrouting: 100,
};
/** `-m` modules that only make their options available; the options themselves are the conditions. */
const OPTION_MODULES = new Set(['udp', 'tcp', 'multiport', 'comment', 'conntrack', 'state', 'icmp', 'icmp6']);
const TERMINAL: Record<string, NfRuleVerdict> = {
  ACCEPT: { type: 'accept' },
  DROP: { type: 'drop' },
  REJECT: { type: 'reject' },
  RETURN: { type: 'return' },
};

interface Table {
  name: string;
  chains: Map<string, NfChain>;
}

/** A rule line split into words the way iptables-save quotes them (`"a \"b\""`); undefined on an open quote. */
function words(spec: string): string[] | undefined {
  const token = /\s*(?:"((?:[^"\\]|\\.)*)"|([^\s"]+))/y;
  const out: string[] = [];
  while (token.lastIndex < spec.length && spec.slice(token.lastIndex).trim() !== '') {
    const m = token.exec(spec);
    if (!m) return undefined;
    out.push(m[2] ?? m[1]!.replace(/\\(.)/g, '$1'));
  }
  return out;
}

/** `8472`, `1000:2000`, `22,80:90` (multiport); undefined for anything else (service names). */
function portRanges(text: string): NfPortRange[] | undefined {
  const ranges = text.split(',').map((part) => {
    const m = /^(\d*)(?::(\d*))?$/.exec(part);
    if (!m || part === '') return undefined;
    const from = m[1] === '' ? 0 : Number(m[1]);
    const to = m[2] === undefined ? from : m[2] === '' ? 65535 : Number(m[2]);
    return { from, to };
  });
  return ranges.every((r) => r !== undefined) ? ranges : undefined;
}

function ifName(text: string) {
  return text.endsWith('+') ? { name: text.slice(0, -1), prefix: true } : { name: text, prefix: false };
}

const isOption = (word: string | undefined) => word !== undefined && (word === '!' || word.startsWith('-'));

class RuleReader {
  readonly matches: NfMatch[] = [];
  verdict: NfRuleVerdict = { type: 'continue' };
  private i = 2;

  constructor(
    private readonly w: string[],
    private readonly table: Table,
    private readonly fail: (msg: string) => never,
  ) {}

  read(): void {
    while (this.i < this.w.length) {
      const negate = this.w[this.i] === '!';
      if (negate) this.i++;
      const opt = this.w[this.i++];
      if (opt === undefined) this.fail('ends with "!"');
      this.option(opt, negate);
    }
  }

  private value(opt: string): string {
    const v = this.w[this.i++];
    if (v === undefined) this.fail(`${opt} has no value`);
    return v;
  }

  private option(opt: string, negate: boolean): void {
    switch (opt) {
      case '-s':
      case '--source':
      case '-d':
      case '--destination': {
        const v = this.value(opt);
        const net = netOf(v);
        if (!net) this.fail(`${opt} ${v} is not an address or CIDR`);
        this.matches.push({ on: opt === '-s' || opt === '--source' ? 'src' : 'dst', nets: [net], negate });
        return;
      }
      case '-i':
      case '--in-interface':
      case '-o':
      case '--out-interface': {
        const on = opt === '-i' || opt === '--in-interface' ? 'iif' : 'oif';
        this.matches.push({ on, names: [ifName(this.value(opt))], negate });
        return;
      }
      case '-p':
      case '--protocol': {
        const proto = protoName(this.value(opt));
        if (proto !== 'all' && proto !== '0') this.matches.push({ on: 'proto', protos: [proto], negate });
        return;
      }
      case '--dport':
      case '--destination-port':
      case '--dports':
      case '--destination-ports': {
        const ports = portRanges(this.value(opt));
        this.matches.push(ports ? { on: 'dport', ports, negate } : { on: 'unknown', what: opt });
        return;
      }
      case '--ctstate':
      case '--state':
        this.matches.push({ on: 'ctstate', states: this.value(opt).toLowerCase().split(','), negate });
        return;
      case '-m':
      case '--match': {
        const module = this.value(opt);
        if (!OPTION_MODULES.has(module)) this.matches.push({ on: 'unknown', what: `-m ${module}` });
        return;
      }
      case '--comment':
        this.value(opt);
        return;
      case '-j':
      case '--jump':
        this.verdict = this.target(this.value(opt));
        this.skipTargetOptions();
        return;
      case '-g':
      case '--goto':
        this.verdict = { type: 'goto', chain: this.value(opt) };
        return;
    }
    // Any other option (--sport, --syn, --match-set …) is a condition the packet cannot answer.
    while (this.i < this.w.length && !isOption(this.w[this.i])) this.i++;
    this.matches.push({ on: 'unknown', what: opt });
  }

  private target(name: string): NfRuleVerdict {
    if (TERMINAL[name]) return TERMINAL[name];
    return this.table.chains.has(name) ? { type: 'jump', chain: name } : { type: 'continue' };
  }

  /** The target's own options (--reject-with, --log-prefix, --to-source …) come last and decide nothing here. */
  private skipTargetOptions(): void {
    this.i = this.w.length;
  }
}

function builtinChain(family: 'ip' | 'ip6', table: Table, name: string, policy: string): NfChain {
  const hook = HOOKS[name];
  if (!hook) throw new Error(`chain ${name} has policy ${policy} but is not a built-in chain`);
  const priority = table.name === 'nat' ? NAT_PRIORITY[hook] : (TABLE_PRIORITY[table.name] ?? 0);
  const type = table.name === 'nat' ? 'nat' : table.name === 'mangle' && hook === 'output' ? 'route' : 'filter';
  const verdict = policy === 'ACCEPT' ? 'accept' : policy === 'DROP' ? 'drop' : undefined;
  if (!verdict) throw new Error(`chain ${name} has policy ${policy}, not ACCEPT or DROP`);
  return { source: 'iptables', family, table: table.name, name, hook, priority, type, policy: verdict, rules: [] };
}

function chainLine(family: 'ip' | 'ip6', table: Table, line: string): void {
  const m = /^:(\S+)\s+(\S+)(?:\s+\[(\d+):(\d+)\])?$/.exec(line);
  if (!m) throw new Error(`chain line "${line}" is not ":NAME POLICY [packets:bytes]"`);
  const name = m[1]!;
  const policy = m[2]!;
  const packets = m[3];
  const chain: NfChain =
    policy === '-'
      ? { source: 'iptables', family, table: table.name, name, rules: [] }
      : builtinChain(family, table, name, policy);
  if (policy !== '-' && packets !== undefined) chain.policyPackets = Number(packets);
  table.chains.set(name, chain);
}

function ruleLine(table: Table, line: string): void {
  const m = /^(?:\[(\d+):\d+\]\s+)?(-A\s.*)$/.exec(line)!;
  const text = m[2]!.trim();
  const fail = (msg: string): never => {
    throw new Error(`rule "${text}" ${msg}`);
  };
  const w = words(text) ?? fail('has an unterminated quote');
  const chain = table.chains.get(w[1] ?? '') ?? fail(`is in chain ${w[1]}, which table ${table.name} does not declare`);
  const reader = new RuleReader(w, table, fail);
  reader.read();
  const rule: NfRule = { text, matches: reader.matches, verdict: reader.verdict };
  if (m[1] !== undefined) rule.packets = Number(m[1]);
  chain.rules.push(rule);
}

/**
 * The chains of `iptables-save` (family ip) or `ip6tables-save` (family ip6) output; built-in chains are base chains at
 * the priority iptables-nft gives their table. Throws NetfilterParseError naming the line that is not iptables-save's.
 */
export function parseIptablesSave(text: string, family: 'ip' | 'ip6'): NfChain[] {
  const tool = family === 'ip' ? 'iptables-save' : 'ip6tables-save';
  const chains: NfChain[] = [];
  let table: Table | undefined;
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    const at = `${tool} line ${i + 1}`;
    try {
      if (line === '' || line.startsWith('#')) continue;
      if (line.startsWith('*')) {
        if (table) throw new Error(`table ${line.slice(1)} starts before table ${table.name} has its COMMIT`);
        table = { name: line.slice(1), chains: new Map() };
      } else if (line === 'COMMIT') {
        if (!table) throw new Error('COMMIT outside a table');
        chains.push(...table.chains.values());
        table = undefined;
      } else if (!table || !/^(?:\[\d+:\d+\]\s+)?-A\s|^:/.test(line)) {
        throw new Error(`"${line.slice(0, 60)}" is not a table, chain, rule or COMMIT line`);
      } else if (line.startsWith(':')) {
        chainLine(family, table, line);
      } else {
        ruleLine(table, line);
      }
    } catch (err) {
      throw new NetfilterParseError(`${at}: ${(err as Error).message}`);
    }
  }
  if (table) throw new NetfilterParseError(`${tool}: table ${table.name} has no COMMIT (output cut short?)`);
  return chains;
}
