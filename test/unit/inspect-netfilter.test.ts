// The netfilter model on real lister output (inspect-fixtures.ts: a host behind Docker's and firewalld's rules, captured
// with iptables-nft 1.8.9 and nft 1.0.6): which base chains run at a hook, in which order, and which rule or policy
// decides a NEW packet's fate.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  baseChains,
  NetfilterParseError,
  verdictAt,
  type NfChain,
  type NfMatch,
  type NfPacket,
  type NfRuleVerdict,
  type NfVerdict,
} from '../../src/inspect/netfilter.ts';
import { masqueradeCount } from '../../src/inspect/counters.ts';
import { parseIptablesSave } from '../../src/inspect/netfilter-iptables.ts';
import { parseNftRuleset } from '../../src/inspect/netfilter-nft.ts';
import {
  FIREWALLED_IP6TABLES_SAVE,
  FIREWALLED_IPTABLES_SAVE,
  FIREWALLED_IPTABLES_SAVE_PLAIN,
  FIREWALLED_NFT_RULESET,
} from '../helpers/inspect-fixtures.ts';

/** Rule forms iptables-save prints for negations, goto, quoting and matches the model cannot decide. */
const IPTABLES_EXTRA = String.raw`*filter
:FORWARD DROP [0:0]
:DOCKER-USER - [0:0]
:EXTRA - [0:0]
[0:0] -A DOCKER-USER -j RETURN
[0:0] -A EXTRA -m addrtype --dst-type LOCAL -j DROP
[0:0] -A EXTRA -m mark --mark 0x4000/0x4000 -j DROP
[0:0] -A EXTRA -m state --state NEW -j LOG --log-prefix "fwd new "
[0:0] -A EXTRA -p tcp -m tcp ! --dport 22 -m comment --comment "say \"hi\" \\ back" -j ACCEPT
[0:0] -A EXTRA ! -i cni+ ! -p udp -j RETURN
[0:0] -A EXTRA ! -s 10.0.0.1/32 -p tcp -m tcp --dport 1000:2000 -g DOCKER-USER
[0:0] -A EXTRA -p udp -m multiport ! --dports 53,8472 -j REJECT --reject-with icmp-port-unreachable
COMMIT
`;

const FORWARD_JUMP = '[0:0] -A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD\n';
/** Docker's FORWARD DROP and nothing of flannel's. */
const DOCKER_ONLY = FIREWALLED_IPTABLES_SAVE.replace(FORWARD_JUMP, '');

/** Pod 10.244.1.5 on this node to pod 10.244.2.7 on a peer, routed from the bridge into the vxlan device. */
const POD_TO_POD: NfPacket = {
  family: 4,
  src: '10.244.1.5',
  dst: '10.244.2.7',
  proto: 'tcp',
  dport: 8080,
  iif: 'cni0',
  oif: 'flannel.1',
};
/** Encapsulated traffic from peer 192.168.1.12 to this node. */
const underlay = (proto: 'udp' | 'tcp', dport: number, iif = 'eth0'): NfPacket => ({
  family: 4,
  src: '192.168.1.12',
  dst: '192.168.1.11',
  proto,
  dport,
  iif,
});

/** A filter table as `iptables-save -c` prints it: the rule lines (`-A …`), user chains declared first. */
function filterTable(rules: string[], userChains: string[] = []): string {
  return [
    '*filter',
    ':INPUT ACCEPT [0:0]',
    ':FORWARD ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ...userChains.map((c) => `:${c} - [0:0]`),
    ...rules.map((r) => `[0:0] ${r}`),
    'COMMIT',
    '',
  ].join('\n');
}

const v4 = (text: string) => parseIptablesSave(text, 'ip');
const chainOf = (chains: NfChain[], table: string, name: string) =>
  chains.find((c) => c.table === table && c.name === name)!;

/** The verdict's fields named, for one-line comparisons. */
function pick<K extends keyof NonNullable<NfVerdict['by']>>(v: NfVerdict, ...keys: K[]): unknown[] {
  return [v.verdict, ...keys.map((k) => v.by?.[k])];
}

function throwsParse(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof NetfilterParseError, `want a NetfilterParseError, got ${String(err)}`);
    assert.match(err.message, message);
    return true;
  });
}

describe('iptables-save', () => {
  it('reads tables, chains, policies, counters and each rule as its line reads', () => {
    const chains = v4(FIREWALLED_IPTABLES_SAVE.replace(':FORWARD DROP [0:0]', ':FORWARD DROP [3:252]'));
    assert.deepEqual(
      chains.map((c) => `${c.table} ${c.name}`),
      [
        'filter INPUT',
        'filter FORWARD',
        'filter OUTPUT',
        'filter DOCKER-USER',
        'filter FLANNEL-FWD',
        'nat PREROUTING',
        'nat INPUT',
        'nat OUTPUT',
        'nat POSTROUTING',
      ],
    );
    const chain = (table: string, name: string) => chainOf(chains, table, name);
    const forward = chain('filter', 'FORWARD');
    assert.deepEqual(
      [forward.hook, forward.priority, forward.type, forward.policy, forward.policyPackets],
      ['forward', 0, 'filter', 'drop', 3],
    );
    const natInput = chain('nat', 'INPUT');
    assert.deepEqual([natInput.priority, natInput.type, chain('nat', 'PREROUTING').priority], [100, 'nat', -100]);
    assert.equal(chain('filter', 'FLANNEL-FWD').hook, undefined);
    assert.deepEqual(
      chain('filter', 'INPUT').rules.map((r) => [r.text, r.packets]),
      [
        ['-A INPUT -p udp -m udp --dport 8472 -j REJECT --reject-with icmp-host-prohibited', 0],
        ['-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT', 4],
        ['-A INPUT -i cni+ -p tcp -m multiport --dports 22,80:90 -j DROP', 0],
      ],
    );
    assert.equal(
      chain('filter', 'FLANNEL-FWD').rules[0]!.text,
      '-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
    );
  });

  it('reads the output of iptables-save without -c the same, without rule counters', () => {
    const plain = v4(FIREWALLED_IPTABLES_SAVE_PLAIN);
    const counted = v4(FIREWALLED_IPTABLES_SAVE).filter((c) => c.table === 'filter');
    const texts = (chains: NfChain[]) => chains.flatMap((c) => c.rules.map((r) => r.text));
    assert.deepEqual(texts(plain), texts(counted));
    assert.ok(plain.every((c) => c.rules.every((r) => r.packets === undefined)));
    assert.equal(verdictAt(plain, 'forward', POD_TO_POD).verdict, 'accept');
  });

  it("drops pod traffic by Docker's FORWARD policy DROP when nothing of flannel's accepts it", () => {
    const v = verdictAt(v4(DOCKER_ONLY), 'forward', POD_TO_POD);
    assert.deepEqual(v, {
      verdict: 'drop',
      by: { source: 'iptables', family: 'ip', table: 'filter', chain: 'FORWARD', packets: 0 },
      policy: true,
      uncertain: [],
      decisions: [{ verdict: 'drop', by: v.by, policy: true }],
    });
  });

  it('accepts pod traffic through the jump into FLANNEL-FWD, and names the rule in FLANNEL-FWD', () => {
    const v = verdictAt(v4(FIREWALLED_IPTABLES_SAVE), 'forward', POD_TO_POD);
    assert.equal(v.verdict, 'accept');
    assert.equal(v.policy, false);
    assert.deepEqual(v.by, {
      source: 'iptables',
      family: 'ip',
      table: 'filter',
      chain: 'FLANNEL-FWD',
      index: 1,
      packets: 0,
      rule: '-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
    });
    const other: NfPacket = { ...POD_TO_POD, src: '192.168.5.5', dst: '192.168.6.6' };
    assert.equal(
      verdictAt(v4(FIREWALLED_IPTABLES_SAVE), 'forward', other).verdict,
      'drop',
      'only the pod network is accepted',
    );
  });

  it('drops by a `-I FORWARD 1 -j DROP` before the jump, and names that rule', () => {
    const inserted = FIREWALLED_IPTABLES_SAVE.replace(
      '[0:0] -A FORWARD -j DOCKER-USER',
      '[0:0] -A FORWARD -j DROP\n$&',
    );
    const v = verdictAt(v4(inserted), 'forward', POD_TO_POD);
    assert.deepEqual(pick(v, 'chain', 'index', 'rule'), ['drop', 'FORWARD', 1, '-A FORWARD -j DROP']);
    assert.equal(v.policy, false);
  });

  it('rejects vxlan (udp 8472) at INPUT as firewalld does, and accepts udp 4789 and tcp 8472', () => {
    const chains = v4(FIREWALLED_IPTABLES_SAVE);
    const v = verdictAt(chains, 'input', underlay('udp', 8472));
    assert.deepEqual(
      [v.verdict, v.by?.index, v.by?.rule],
      ['reject', 1, '-A INPUT -p udp -m udp --dport 8472 -j REJECT --reject-with icmp-host-prohibited'],
    );
    for (const p of [underlay('udp', 4789), underlay('tcp', 8472)]) {
      const ok = verdictAt(chains, 'input', p);
      assert.deepEqual([ok.verdict, ok.policy, ok.by?.chain], ['accept', true, 'INPUT'], `${p.proto} ${p.dport}`);
    }
  });

  it('takes the packet as NEW: an ESTABLISHED accept does not match it, a NEW one does', () => {
    const established = v4(
      filterTable(['-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT', '-A INPUT -j DROP']),
    );
    assert.deepEqual(pick(verdictAt(established, 'input', underlay('udp', 8472)), 'index'), ['drop', 2]);
    const statefulNew = v4(filterTable(['-A INPUT -m state --state NEW,ESTABLISHED -j ACCEPT', '-A INPUT -j DROP']));
    assert.equal(verdictAt(statefulNew, 'input', underlay('udp', 8472)).verdict, 'accept');
    const notNew = v4(filterTable(['-A INPUT -m conntrack ! --ctstate NEW -j DROP']));
    assert.equal(verdictAt(notNew, 'input', underlay('udp', 8472)).verdict, 'accept');
  });

  it('reports a rule it cannot decide (ipset) as uncertain and lets the packet pass it', () => {
    const rule = '-A INPUT -m set --match-set blocked src -j DROP';
    const v = verdictAt(v4(filterTable([rule])), 'input', underlay('udp', 8472));
    assert.deepEqual([v.verdict, v.policy, v.uncertain], ['accept', true, [rule]]);
    // A match that fails decides: a tcp-only rule cannot drop a udp packet, whatever the set holds.
    const tcpOnly = v4(filterTable(['-A INPUT -p tcp -m set --match-set blocked src -j DROP']));
    assert.deepEqual(verdictAt(tcpOnly, 'input', underlay('udp', 8472)).uncertain, []);
    // An undecidable LOG cannot change the verdict.
    const log = v4(filterTable(['-A INPUT -m addrtype --dst-type LOCAL -j LOG']));
    assert.deepEqual(verdictAt(log, 'input', underlay('udp', 8472)).uncertain, []);
    const unsaid = verdictAt(v4(FIREWALLED_IPTABLES_SAVE), 'input', {
      family: 4,
      src: '192.168.1.12',
      dst: '192.168.1.11',
    });
    assert.equal(unsaid.uncertain[0], chainOf(v4(FIREWALLED_IPTABLES_SAVE), 'filter', 'INPUT').rules[0]!.text);
  });

  it('matches `-i cni+` on every interface name that starts with cni, and multiport lists and ranges', () => {
    const chains = v4(FIREWALLED_IPTABLES_SAVE);
    const at = (iif: string, dport: number) => verdictAt(chains, 'input', underlay('tcp', dport, iif));
    assert.deepEqual([at('cni0', 85).verdict, at('cni0', 85).by?.index], ['drop', 3]);
    assert.equal(at('cni12', 22).verdict, 'drop');
    assert.equal(at('eth0', 85).verdict, 'accept');
    assert.equal(at('cni0', 91).verdict, 'accept');
    const outside = v4(filterTable(['-A INPUT -i eth -j DROP', '-A INPUT ! -i cni+ -j DROP']));
    assert.equal(verdictAt(outside, 'input', underlay('udp', 1, 'eth0')).by?.index, 2, '-i eth is not eth0');
    assert.equal(verdictAt(outside, 'input', underlay('udp', 1, 'cni0')).verdict, 'accept');
  });

  it('comes back from a jump on RETURN or the end of the chain, and not from a goto', () => {
    const nested = v4(filterTable(['-A FORWARD -j A', '-A A -j B', '-A A -j DROP', '-A B -j RETURN'], ['A', 'B']));
    assert.deepEqual(pick(verdictAt(nested, 'forward', POD_TO_POD), 'chain', 'index'), ['drop', 'A', 2]);
    const jump = v4(filterTable(['-A FORWARD -j A', '-A FORWARD -j DROP', '-A A -p tcp'], ['A']));
    assert.equal(verdictAt(jump, 'forward', POD_TO_POD).verdict, 'drop');
    const goto = v4(filterTable(['-A FORWARD -g A', '-A FORWARD -j DROP', '-A A -p tcp'], ['A']));
    const v = verdictAt(goto, 'forward', POD_TO_POD);
    assert.deepEqual([v.verdict, v.policy, v.by?.chain], ['accept', true, 'FORWARD']);
  });

  it('survives a jump loop: the walk stops at the depth bound and says so', () => {
    const loop = v4(filterTable(['-A FORWARD -j A', '-A FORWARD -j DROP', '-A A -j B', '-A B -j A'], ['A', 'B']));
    const v = verdictAt(loop, 'forward', POD_TO_POD);
    assert.deepEqual([v.verdict, v.by?.index], ['drop', 2]);
    assert.equal(v.uncertain.length, 1);
    assert.match(v.uncertain[0]!, /^-A [AB] -j [AB]$/);
  });

  it('reads negations, goto, quoted comments and target options the way iptables-save prints them', () => {
    const extra = v4(IPTABLES_EXTRA).find((c) => c.name === 'EXTRA')!;
    const target = (v: NfRuleVerdict) => (v.type === 'jump' || v.type === 'goto' ? `${v.type} ${v.chain}` : v.type);
    const condition = (m: NfMatch) => (m.on === 'unknown' ? `unknown ${m.what}` : `${m.negate ? '!' : ''}${m.on}`);
    const summary = extra.rules.map((r) => [target(r.verdict), r.matches.map(condition).join(' ')]);
    assert.deepEqual(summary, [
      ['drop', 'unknown -m addrtype unknown --dst-type'],
      ['drop', 'unknown -m mark unknown --mark'],
      ['continue', 'ctstate'],
      ['accept', 'proto !dport'],
      ['return', '!iif !proto'],
      ['goto DOCKER-USER', '!src proto dport'],
      ['reject', 'proto !dport'],
    ]);
    assert.equal(
      extra.rules[3]!.text,
      String.raw`-A EXTRA -p tcp -m tcp ! --dport 22 -m comment --comment "say \"hi\" \\ back" -j ACCEPT`,
    );
    const fromInput = IPTABLES_EXTRA.replace('*filter\n', '*filter\n:INPUT ACCEPT [0:0]\n').replace(
      '[0:0] -A EXTRA -m addrtype',
      '[0:0] -A INPUT -j EXTRA\n$&',
    );
    const v = verdictAt(v4(fromInput), 'input', underlay('udp', 8472));
    // udp 8472 passes the REJECT of all udp but 53 and 8472; addrtype and mark are undecidable.
    assert.deepEqual([v.verdict, v.uncertain.length], ['accept', 2]);
  });

  it('reads ip6tables-save as family ip6: IPv6 packets see it, IPv4 packets do not', () => {
    const chains = parseIptablesSave(FIREWALLED_IP6TABLES_SAVE, 'ip6');
    assert.ok(chains.every((c) => c.family === 'ip6'));
    const vxlan6: NfPacket = { family: 6, src: 'fd00:1::12', dst: 'fd00:1::11', proto: 'udp', dport: 8472 };
    const v = verdictAt(chains, 'input', vxlan6);
    assert.deepEqual([v.verdict, v.by?.family, v.by?.index], ['reject', 'ip6', 2]);
    const pod6: NfPacket = { family: 6, src: 'fd00:10:244:1::5', dst: 'fd00:10:244:2::7', proto: 'tcp', dport: 80 };
    assert.equal(verdictAt(chains, 'forward', pod6).by?.chain, 'FLANNEL-FWD');
    assert.equal(verdictAt(chains, 'forward', { ...pod6, src: 'fd00:99::5' }).verdict, 'drop');
    assert.deepEqual(verdictAt(chains, 'forward', POD_TO_POD), { verdict: 'accept', uncertain: [], decisions: [] });
  });

  it('names the line and what is wrong with malformed input, never a TypeError', () => {
    throwsParse(() => v4('hello world'), /^iptables-save line 1: "hello world" is not a table, chain, rule or COMMIT/);
    throwsParse(() => v4('-A INPUT -j DROP\n'), /line 1: "-A INPUT -j DROP" is not a table/);
    const cut = '*filter\n:INPUT ACCEPT [0:0]\n';
    throwsParse(() => parseIptablesSave(cut, 'ip6'), /^ip6tables-save: table filter has no COMMIT/);
    const openQuote = filterTable(['-A INPUT -m comment --comment "open -j DROP']);
    throwsParse(() => v4(openQuote), /line 5: rule .* has an unterminated quote/);
    throwsParse(() => v4(filterTable(['-A NOPE -j DROP'])), /in chain NOPE, which table filter does not declare/);
    throwsParse(() => v4(filterTable(['-A INPUT -s 10.0.0.300/32 -j DROP'])), /-s 10.0.0.300\/32 is not an address/);
    throwsParse(() => v4(filterTable(['-A INPUT -p'])), /-p has no value/);
    throwsParse(() => v4('*filter\n:INPUT QUEUE [0:0]\nCOMMIT\n'), /chain INPUT has policy QUEUE, not ACCEPT or DROP/);
    throwsParse(() => v4('*filter\n:FOO ACCEPT [0:0]\nCOMMIT\n'), /FOO has policy ACCEPT but is not a built-in chain/);
    assert.deepEqual(v4(''), []);
  });
});

type Expr = Record<string, unknown>;
const match = (left: Expr, right: unknown, op = '=='): Expr => ({ match: { op, left, right } });
const payload = (protocol: string, field: string): Expr => ({ payload: { protocol, field } });
interface TestChain {
  name: string;
  base?: { hook: string; prio: number; policy: string };
  rules: Expr[][];
}

/** `nft -j list ruleset` text of one inet table "t" holding the chains. */
function nftJson(chains: TestChain[]): string {
  const entries: unknown[] = [{ table: { family: 'inet', name: 't' } }];
  const at = { family: 'inet', table: 't' };
  for (const c of chains) entries.push({ chain: { ...at, name: c.name, ...c.base, type: c.base && 'filter' } });
  for (const c of chains) for (const expr of c.rules) entries.push({ rule: { ...at, chain: c.name, expr } });
  return JSON.stringify({ nftables: entries });
}

/** Pod 10.244.2.7 on a peer to pod 10.244.1.5 here, decapsulated by the vxlan device. */
const fromOverlay: NfPacket = {
  family: 4,
  src: '10.244.2.7',
  dst: '10.244.1.5',
  proto: 'tcp',
  dport: 80,
  iif: 'flannel.1',
  oif: 'cni0',
};

describe('nft -j list ruleset', () => {
  it("leaves out iptables-nft's tables (iptables-save reads them) and reads inet filter and flannel-ipv4", () => {
    const chains = parseNftRuleset(FIREWALLED_NFT_RULESET);
    assert.deepEqual(
      chains.map((c) => `${c.family} ${c.table} ${c.name}`),
      [
        'inet filter input',
        'inet filter forward',
        'inet filter helper',
        'inet filter helper2',
        'ip flannel-ipv4 forward',
        'ip flannel-ipv4 postrtg',
      ],
    );
    const fwd = chainOf(chains, 'flannel-ipv4', 'forward');
    const settings = [fwd.source, fwd.hook, fwd.priority, fwd.type, fwd.policy];
    assert.deepEqual(settings, ['nftables', 'forward', 0, 'filter', 'accept']);
    assert.equal(chainOf(chains, 'filter', 'helper').hook, undefined);
  });

  it('renders each rule roughly as `nft list` prints it, with its counter', () => {
    const chains = parseNftRuleset(FIREWALLED_NFT_RULESET);
    assert.deepEqual(
      chains.flatMap((c) => c.rules.map((r) => r.text)),
      [
        'udp dport 8472 counter packets 3 bytes 90 reject with icmpx port-unreachable',
        'jump helper',
        'ip saddr @blocked drop',
        'ip saddr 10.244.0.0/16 accept',
        'ct state established,related accept',
        'meta l4proto { tcp, udp } th dport 53 return',
        'iifname "cni*" counter packets 0 bytes 0 goto helper2',
        'ip6 daddr fd00::/8 drop',
        'tcp dport 1000-2000 reject with tcp reset',
        'log prefix "x" drop',
        'ip saddr 10.244.0.0/16 accept',
        'ip daddr 10.244.0.0/16 accept',
        'meta mark 16384 return',
        'ip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random',
      ],
    );
    assert.equal(chainOf(chains, 'filter', 'input').rules[0]!.packets, 3);
  });

  it("drops by inet filter's policy what flannel-ipv4's forward chain accepted: accept ends only its chain", () => {
    const chains = parseNftRuleset(FIREWALLED_NFT_RULESET);
    chainOf(chains, 'filter', 'forward').priority = 10; // as `priority filter + 10` lists it: after flannel's chain
    const inbound: NfPacket = { ...fromOverlay, src: '192.168.1.50', iif: 'eth0' };
    const v = verdictAt(chains, 'forward', inbound);
    assert.deepEqual(
      v.decisions.map((d) => [d.verdict, `${d.by.table} ${d.by.chain}`, d.by.rule ?? 'policy']),
      [
        ['accept', 'flannel-ipv4 forward', 'ip daddr 10.244.0.0/16 accept'],
        ['drop', 'filter forward', 'policy'],
      ],
    );
    assert.deepEqual([v.verdict, v.policy, v.by?.family], ['drop', true, 'inet']);
    const pod = verdictAt(chains, 'forward', fromOverlay);
    assert.deepEqual([pod.verdict, pod.by?.rule, pod.by?.index], ['accept', 'ip saddr 10.244.0.0/16 accept', 3]);
    assert.deepEqual(pod.uncertain, ['ip saddr @blocked drop'], 'a named set is not looked into');
  });

  it('runs the base chains at a hook lowest priority first, whatever order they are listed in', () => {
    const chains = parseNftRuleset(
      nftJson([
        { name: 'late', base: { hook: 'forward', prio: 10, policy: 'accept' }, rules: [[{ drop: null }]] },
        {
          name: 'early',
          base: { hook: 'forward', prio: -10, policy: 'accept' },
          rules: [[match(payload('udp', 'dport'), 53), { reject: null }]],
        },
      ]),
    );
    assert.deepEqual(
      baseChains(chains, 'forward', 4).map((c) => c.name),
      ['early', 'late'],
    );
    const dns = verdictAt(chains, 'forward', { ...fromOverlay, proto: 'udp', dport: 53 });
    assert.deepEqual([dns.verdict, dns.by?.chain, dns.decisions.length], ['reject', 'early', 1]);
    const web = verdictAt(chains, 'forward', fromOverlay);
    assert.deepEqual(
      web.decisions.map((d) => `${d.verdict} ${d.by.chain}`),
      ['accept early', 'drop late'],
    );
  });

  it('follows jump, return and goto in the captured inet filter table', () => {
    const chains = parseNftRuleset(FIREWALLED_NFT_RULESET);
    const fromPod = (proto: 'udp' | 'tcp', dport: number): NfPacket => ({ ...POD_TO_POD, proto, dport });
    const dropped = verdictAt(chains, 'forward', fromPod('udp', 8472));
    assert.deepEqual(pick(dropped, 'chain', 'index', 'rule'), ['drop', 'helper2', 3, 'log prefix "x" drop']);
    const rejected = verdictAt(chains, 'forward', fromPod('tcp', 1500));
    assert.deepEqual([rejected.verdict, rejected.by?.rule], ['reject', 'tcp dport 1000-2000 reject with tcp reset']);
    // helper returns before its goto: back in forward, the pod network rule accepts.
    const dns = verdictAt(chains, 'forward', fromPod('udp', 53));
    assert.deepEqual(
      dns.decisions.map((d) => `${d.verdict} ${d.by.table} ${d.by.chain} ${d.by.index}`),
      ['accept filter forward 3', 'accept flannel-ipv4 forward 1'],
    );
  });

  it('does not come back from a goto: the base chain policy decides', () => {
    const chain = (verdict: 'goto' | 'jump') =>
      parseNftRuleset(
        nftJson([
          {
            name: 'fwd',
            base: { hook: 'forward', prio: 0, policy: 'accept' },
            rules: [[{ [verdict]: { target: 'side' } }], [{ drop: null }]],
          },
          { name: 'side', rules: [[{ counter: { packets: 7, bytes: 420 } }]] },
        ]),
      );
    const v = verdictAt(chain('goto'), 'forward', fromOverlay);
    assert.deepEqual([v.verdict, v.policy], ['accept', true]);
    assert.equal(verdictAt(chain('jump'), 'forward', fromOverlay).by?.index, 2);
    assert.equal(chain('jump')[1]!.rules[0]!.packets, 7);
  });

  it('runs IPv6 packets through inet chains only, never family ip ones', () => {
    const chains = parseNftRuleset(FIREWALLED_NFT_RULESET);
    const pod6: NfPacket = { ...fromOverlay, family: 6, src: 'fd00:10:244:2::7', dst: 'fd00:10:244:1::5' };
    assert.deepEqual(
      baseChains(chains, 'forward', 6).map((c) => `${c.table} ${c.name}`),
      ['filter forward'],
    );
    const v = verdictAt(chains, 'forward', pod6);
    assert.deepEqual([v.verdict, v.policy, v.decisions.length, v.uncertain], ['drop', true, 1, []]);
    const toUla = verdictAt(chains, 'forward', { ...pod6, iif: 'cni0' });
    assert.deepEqual([toUla.by?.chain, toUla.by?.rule], ['helper2', 'ip6 daddr fd00::/8 drop']);
  });

  it('rejects vxlan at the inet input chain and counts it', () => {
    const chains = parseNftRuleset(FIREWALLED_NFT_RULESET);
    const v = verdictAt(chains, 'input', underlay('udp', 8472));
    assert.deepEqual(pick(v, 'table', 'chain', 'index', 'packets'), ['reject', 'filter', 'input', 1, 3]);
    assert.equal(verdictAt(chains, 'input', underlay('udp', 4789)).verdict, 'accept');
  });

  it("lets iptables' FORWARD policy drop what flannel's nft chain accepts: both run at the hook", () => {
    const chains = [
      ...v4(DOCKER_ONLY),
      ...parseNftRuleset(FIREWALLED_NFT_RULESET).filter((c) => c.table === 'flannel-ipv4'),
    ];
    const v = verdictAt(chains, 'forward', POD_TO_POD);
    assert.deepEqual([v.verdict, v.by?.source, v.by?.chain, v.policy], ['drop', 'iptables', 'FORWARD', true]);
  });

  it('reads comparisons, negated sets, interface wildcards and l4proto numbers', () => {
    const chains = parseNftRuleset(
      nftJson([
        {
          name: 'in',
          base: { hook: 'input', prio: 0, policy: 'accept' },
          rules: [
            [match(payload('tcp', 'dport'), 1024, '<'), { drop: null }],
            [
              match({ meta: { key: 'l4proto' } }, 17),
              match(payload('udp', 'dport'), { set: [53, 8472] }, '!='),
              { reject: null },
            ],
            [match({ meta: { key: 'iifname' } }, 'veth*'), { drop: null }],
          ],
        },
      ]),
    );
    const at = (p: NfPacket) => verdictAt(chains, 'input', p).by?.index ?? 0;
    assert.equal(at(underlay('tcp', 22)), 1);
    assert.equal(at(underlay('tcp', 8080, 'veth1')), 3);
    assert.equal(at(underlay('udp', 4789)), 2);
    assert.equal(verdictAt(chains, 'input', underlay('udp', 8472)).verdict, 'accept');
    assert.equal(chains[0]!.rules[0]!.text, 'tcp dport < 1024 drop');
  });

  it('names what is wrong with input that is not nft -j output, never a TypeError', () => {
    throwsParse(() => parseNftRuleset('table inet filter {'), /^nft -j output is not JSON: /);
    throwsParse(() => parseNftRuleset('{"foo": 1}'), /^nft -j output has no "nftables" array/);
    throwsParse(() => parseNftRuleset('null'), /no "nftables" array/);
    throwsParse(() => parseNftRuleset('[]'), /no "nftables" array/);
    throwsParse(() => parseNftRuleset('{"nftables": [42]}'), /^nft -j entry 1: is not an object$/);
    const one = (entry: object) => () => parseNftRuleset(JSON.stringify({ nftables: [entry] }));
    const rule = { family: 'inet', table: 't', chain: 'c' };
    throwsParse(one({ rule }), /^nft -j entry 1: rule has no "expr" array$/);
    throwsParse(one({ rule: { ...rule, expr: [3] } }), /^nft -j entry 1: expression is not an object$/);
    throwsParse(one({ chain: { family: 'inet', table: 't' } }), /^nft -j entry 1: needs string .*"name"$/);
    assert.deepEqual(parseNftRuleset('{"nftables": []}'), []);
  });
});

describe('masqueradeCount', () => {
  it("sums the packets of FLANNEL-POSTRTG's MASQUERADE rules only", () => {
    const save = [
      '*nat',
      ':POSTROUTING ACCEPT [0:0]',
      ':FLANNEL-POSTRTG - [0:0]',
      '[9:540] -A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
      '[4:240] -A FLANNEL-POSTRTG -s 10.244.1.0/24 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j RETURN',
      '[3:180] -A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
      '[2:120] -A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
      'COMMIT',
      '',
    ].join('\n');
    assert.equal(masqueradeCount(parseIptablesSave(save, 'ip')), 5);
    assert.equal(masqueradeCount(parseIptablesSave('*nat\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n', 'ip')), 0);
  });
});
