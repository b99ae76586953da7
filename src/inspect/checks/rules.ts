// The rules pod and overlay traffic meet: FORWARD for pod packets (Docker's policy DROP, a DROP inserted before
// flannel's accepts, FLANNEL-FWD gone after a firewalld reload), POSTROUTING's masquerade when FLANNEL_IPMASQ is true,
// and INPUT for the backend's UDP port (firewalld's "admin prohibited" reject). The rules are read as the listers
// print them and judged with the netfilter model; the wanted rules are the traffic module's own (traffic/*/rules).
import { forwardRuleSet, masqRuleSet, ruleText, type IptRule } from '../../traffic/iptables/rules.ts';
import { chainDifferences, parseChainJson } from '../../traffic/nftables/listing.ts';
import { TABLE_V4, TABLE_V6, forwardChain, masqChain, type NftChain } from '../../traffic/nftables/ruleset.ts';
import { deviceName, deviceNameV6 } from '../../backend/vxlan/options.ts';
import { formatIPv4, type IPv4Net } from '../../ip/ipv4.ts';
import { formatIPv6, type IPv6Net } from '../../ip/ipv6.ts';
import { errorMessage } from '../../log/log.ts';
import { isObject } from '../../util/json.ts';
import { verdictAt, type NfChain, type NfPacket, type NfVerdict } from '../netfilter.ts';
import { parseIptablesSave } from '../netfilter-iptables.ts';
import { parseNftRuleset } from '../netfilter-nft.ts';
import type { Check, Finding } from '../findings.ts';
import type { NodeSnapshot } from '../snapshot.ts';
import { ownLease } from './subnet.ts';
import { ownInterface } from './underlay.ts';

type Net = IPv4Net | IPv6Net;

/** One IP family's view: its pod networks, the flannel device pod packets cross, and the rule lister's text. */
export interface Side {
  family: 4 | 6;
  network: Net;
  subnet: Net;
  saveText?: string;
  save: 'iptables' | 'ip6tables';
}

export function sides(s: NodeSnapshot): Side[] {
  const env = s.subnetEnv.env;
  if (!env) return [];
  const out: Side[] = [];
  if (env.subnet && env.networks[0])
    out.push({
      family: 4,
      network: env.networks[0],
      subnet: env.subnet,
      saveText: s.netfilter.iptables,
      save: 'iptables',
    });
  if (env.ipv6Subnet && env.ipv6Networks[0])
    out.push({
      family: 6,
      network: env.ipv6Networks[0],
      subnet: env.ipv6Subnet,
      saveText: s.netfilter.ip6tables,
      save: 'ip6tables',
    });
  return out;
}

/** Whether the lister of the rules flanneld writes in this mode gave its text (it fails without root, for one). */
function listed(s: NodeSnapshot, side: Side): boolean {
  return s.nftables ? s.netfilter.nft !== undefined : side.saveText !== undefined;
}

/** Every chain the listers printed (iptables of the family, and nft's own tables); unreadable text is noted. */
export function chainsOf(s: NodeSnapshot, side: Side, notes: string[]): NfChain[] {
  const out: NfChain[] = [];
  try {
    if (side.saveText !== undefined) out.push(...parseIptablesSave(side.saveText, side.family === 4 ? 'ip' : 'ip6'));
  } catch (e) {
    notes.push(`${side.save}-save: ${errorMessage(e)}`);
  }
  try {
    if (s.netfilter.nft !== undefined) out.push(...parseNftRuleset(s.netfilter.nft));
  } catch (e) {
    notes.push(`nft -j list ruleset: ${errorMessage(e)}`);
  }
  return out;
}

/** The address `n` after the net's own (n = 2: its first pod). */
function host(net: Net, n: number | bigint): string {
  return typeof net.ip === 'bigint' ? formatIPv6(net.ip + BigInt(n)) : formatIPv4((net.ip as number) + Number(n));
}

/** The device pod packets to and from other nodes cross: the overlay device, or flannel's interface for host-gw. */
export function overlayDevice(s: NodeSnapshot, family: 4 | 6): string | undefined {
  const b = s.backend;
  if (b?.type === 'vxlan') return family === 4 ? deviceName(b.vni) : deviceNameV6(b.vni);
  if (b?.type === 'udp') return 'flannel0';
  return ownInterface(s, family)?.link.name;
}

/** A pod on another node: in a peer's subnet when there is a peer, else elsewhere in Network. */
function remotePod(s: NodeSnapshot, side: Side): string {
  const own = ownLease(s);
  const peer = Array.isArray(s.leases)
    ? s.leases.find((l) => l !== own && (side.family === 4 ? l.subnet : l.ipv6Subnet))
    : undefined;
  const subnet = peer ? (side.family === 4 ? peer.subnet : peer.ipv6Subnet) : undefined;
  if (subnet) return host(subnet, 2);
  // No peer yet: a pod of the next subnet-sized piece of Network.
  const size = 1n << BigInt((side.family === 4 ? 32 : 128) - side.subnet.prefix);
  return side.subnet.ip === side.network.ip ? host(side.network, size + 2n) : host(side.network, 2);
}

/** Where a verdict was decided, as evidence: the table, chain and rule, or the policy. */
export function where(v: NfVerdict): string {
  const by = v.by!;
  const place =
    by.source === 'iptables'
      ? `${by.family === 'ip6' ? 'ip6tables' : 'iptables'} -t ${by.table} ${by.chain}`
      : `nft ${by.family} ${by.table} ${by.chain}`;
  return v.policy ? `${place}: policy ${v.verdict.toUpperCase()}` : `${place} rule ${by.index}: ${by.rule}`;
}

/** What to let through instead: pod traffic (FORWARD), or the overlay's UDP port (INPUT). */
export type Allowed = { kind: 'pods' } | { kind: 'port'; port: number };

/** The command that takes a dropping rule or policy out of the way, or lets `allowed` through before it. */
export function removal(v: NfVerdict, side: Side, allowed: Allowed = { kind: 'pods' }): string {
  const by = v.by!;
  const ip = side.family === 4 ? 'ip' : 'ip6';
  if (by.source === 'iptables') {
    const cmd = by.family === 'ip6' ? 'ip6tables' : 'iptables';
    if (!v.policy) return `${cmd} -t ${by.table} -D ${by.chain} ${by.index}`;
    return allowed.kind === 'pods'
      ? `${cmd} -t ${by.table} -P ${by.chain} ACCEPT, or accept ${side.network} there before the policy`
      : `${cmd} -t ${by.table} -I ${by.chain} -p udp --dport ${allowed.port} -j ACCEPT`;
  }
  if (!v.policy)
    return `nft -a list chain ${by.family} ${by.table} ${by.chain}, then nft delete rule ${by.family} ${by.table} ${by.chain} handle <its handle>`;
  return allowed.kind === 'pods'
    ? `nft add rule ${by.family} ${by.table} ${by.chain} ${ip} saddr ${side.network} accept (and daddr likewise)`
    : `nft insert rule ${by.family} ${by.table} ${by.chain} udp dport ${allowed.port} accept`;
}

/** The wanted rule texts of an iptables set that the listing lacks; --random-fully depends on the iptables version. */
function missingRules(want: readonly IptRule[], chains: NfChain[], table: string): string[] {
  const bare = (t: string) => t.replace(/ --random-fully$/, '');
  const have = new Set(
    chains.filter((c) => c.source === 'iptables' && c.table === table).flatMap((c) => c.rules.map((r) => bare(r.text))),
  );
  return want.map((r) => ruleText(r)).filter((t) => !have.has(bare(t)));
}

/** The differences of a flannel nft chain from the listing, read with the nftables traffic manager's own reader. */
function nftDifferences(s: NodeSnapshot, want: NftChain): string[] {
  if (s.netfilter.nft === undefined) return [`nft -j list ruleset gave nothing: ${s.netfilter.errors.join('; ')}`];
  try {
    const doc: unknown = JSON.parse(s.netfilter.nft);
    const entries = isObject(doc) && Array.isArray(doc.nftables) ? (doc.nftables as unknown[]) : [];
    const ofTable = entries.filter(
      (e) =>
        isObject(e) &&
        Object.values(e).some((v) => isObject(v) && v.family === want.table.family && v.table === want.table.name),
    );
    return chainDifferences(want, parseChainJson(JSON.stringify({ nftables: ofTable }), want.name));
  } catch (e) {
    return [`nft -j list ruleset: ${errorMessage(e)}`];
  }
}

export const forwardCheck: Check = {
  ids: ['forward-blocked'],
  run(s) {
    const out: Finding[] = [];
    for (const side of sides(s)) {
      const notes: string[] = [];
      const chains = chainsOf(s, side, notes);
      const dev = overlayDevice(s, side.family);
      const local = host(side.subnet, 2);
      const remote = remotePod(s, side);
      const packets: Array<[string, NfPacket]> = [
        [
          `${remote} → ${local} (in on ${dev}, out on cni0)`,
          { family: side.family, src: remote, dst: local, proto: 'tcp', dport: 80, iif: dev, oif: 'cni0' },
        ],
        [
          `${local} → ${remote} (in on cni0, out on ${dev})`,
          { family: side.family, src: local, dst: remote, proto: 'tcp', dport: 80, iif: 'cni0', oif: dev },
        ],
      ];
      for (const [what, p] of packets) {
        const v = verdictAt(chains, 'forward', p);
        if (v.verdict === 'accept') continue;
        out.push({
          id: 'forward-blocked',
          severity: 'error',
          summary: `pod traffic ${what} is ${v.verdict === 'drop' ? 'dropped' : 'rejected'} in FORWARD: pods on different nodes cannot talk`,
          evidence: [where(v), ...notes],
          fix: `${removal(v, side)}; flanneld's own accepts (FLANNEL-FWD) must come first${s.nftables ? '' : ' (restart flanneld to put them back)'}`,
        });
        break;
      }
      // flanneld's accepts gone (a firewalld reload flushes them): pods pass only while the policy happens to accept.
      // Without the lister's text (it failed: netfilter.errors says why) nothing can be called missing.
      const missing = !listed(s, side)
        ? []
        : s.nftables
          ? nftDifferences(s, forwardChain(side.network))
          : missingRules(forwardRuleSet(side.network).rules, chains, 'filter');
      if (missing.length > 0 && !out.some((f) => f.id === 'forward-blocked')) {
        out.push({
          id: 'forward-blocked',
          severity: 'warning',
          summary: `flanneld's forward rules for ${side.network} are missing: pod traffic passes only while nothing else in FORWARD drops it`,
          evidence: missing.map((m) => (s.nftables ? m : `missing: ${m}`)),
          fix: 'restart flanneld (it restores its rules within 5 s while it runs: check its log if they stay missing)',
        });
      }
    }
    return out;
  },
};

export const masqueradeCheck: Check = {
  ids: ['masquerade-missing'],
  run(s) {
    if (!s.subnetEnv.env?.ipMasq) return [];
    const out: Finding[] = [];
    for (const side of sides(s)) {
      if (!listed(s, side)) continue;
      const missing = s.nftables
        ? nftDifferences(
            s,
            side.family === 4
              ? masqChain(side.network as IPv4Net, side.subnet as IPv4Net, false)
              : masqChain(side.network as IPv6Net, side.subnet as IPv6Net, false),
          ).filter((d) => !/fully-random/.test(d))
        : missingRules(
            side.family === 4
              ? masqRuleSet(side.network as IPv4Net, side.subnet as IPv4Net, false).rules
              : masqRuleSet(side.network as IPv6Net, side.subnet as IPv6Net, false).rules,
            chainsOf(s, side, []),
            'nat',
          );
      if (missing.length === 0) continue;
      out.push({
        id: 'masquerade-missing',
        severity: 'error',
        summary: `FLANNEL_IPMASQ is true but the masquerade rules for ${side.subnet} are ${s.nftables ? `not as flanneld writes them in ${side.family === 4 ? TABLE_V4.name : TABLE_V6.name}` : 'incomplete'}: pods cannot reach addresses outside ${side.network}`,
        evidence: missing.map((m) => (s.nftables ? m : `missing: ${m}`)),
        fix: 'restart flanneld (it restores its rules within 5 s while it runs); if another tool flushes the nat table, make it leave FLANNEL-POSTRTG alone',
      });
    }
    return out;
  },
};

export const overlayPortCheck: Check = {
  ids: ['overlay-port-blocked'],
  run(s) {
    const b = s.backend;
    if ((b?.type !== 'vxlan' && b?.type !== 'udp') || !b.port) return [];
    const out: Finding[] = [];
    for (const side of sides(s)) {
      const me = ownInterface(s, side.family);
      if (!me) continue;
      const notes: string[] = [];
      const chains = chainsOf(s, side, notes);
      const peer =
        s.underlay.find((u) => (u.ip.includes(':') ? 6 : 4) === side.family)?.ip ??
        (side.family === 4 ? '192.0.2.1' : '2001:db8::1');
      const v = verdictAt(chains, 'input', {
        family: side.family,
        src: peer,
        dst: me.ip,
        proto: 'udp',
        dport: b.port,
        iif: me.link.name,
      });
      if (v.verdict === 'accept') continue;
      out.push({
        id: 'overlay-port-blocked',
        severity: 'error',
        summary: `${b.type} packets from peers (UDP ${b.port} to ${me.ip}) are ${v.verdict === 'drop' ? 'dropped' : 'rejected'} in INPUT: no pod traffic arrives from other nodes`,
        evidence: [where(v), ...notes],
        fix: `${removal(v, side, { kind: 'port', port: b.port })}${v.policy ? '' : `, or allow it first: ${side.save} -I INPUT -p udp --dport ${b.port} -j ACCEPT`} (firewalld: firewall-cmd --permanent --add-port=${b.port}/udp && firewall-cmd --reload)`,
      });
    }
    return out;
  },
};
