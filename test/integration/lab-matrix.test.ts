// The rest of the lab matrix (backend × IPv4 / IPv6 / dual stack × iptables / nftables, and the kube subnet manager
// with IPv6) that the other lab tests do not run: each a small lab (2 hosts, 1 pod each) whose ping matrices must be
// at 0 % loss, plus the rule tables each mode must (not) hold.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { iptablesChains, lab, LAB_HOSTS, labDownQuietly, labSkip, labUpOutput, subnetEnv } from '../helpers/lab.ts';

const [h1] = LAB_HOSTS as [string];

/** The chains of flannel's nft tables in a host: "ip flannel-ipv4 postrtg"… */
function nftChains(ns: string): string[] {
  const out = JSON.parse(
    execFileSync('ip', ['netns', 'exec', ns, 'nft', '-j', 'list', 'chains'], { encoding: 'utf8' }),
  ) as { nftables: Array<{ chain?: { family: string; table: string; name: string } }> };
  return out.nftables.flatMap((o) =>
    o.chain?.table.startsWith('flannel-') ? [`${o.chain.family} ${o.chain.table} ${o.chain.name}`] : [],
  );
}

interface Case {
  args: string[];
  /** Per family: 2 pod pairs + 2 pod → other host's underlay. */
  pairs: number;
  /** nftables mode: the flannel chains each host holds. */
  nft?: string[];
  /** subnet.env keys each host has. */
  env: string[];
}

const V4_CHAINS = ['ip flannel-ipv4 postrtg', 'ip flannel-ipv4 forward'];
const V6_CHAINS = ['ip6 flannel-ipv6 postrtg', 'ip6 flannel-ipv6 forward'];
const V4_ENV = ['FLANNEL_NETWORK', 'FLANNEL_SUBNET'];
const V6_ENV = ['FLANNEL_IPV6_NETWORK', 'FLANNEL_IPV6_SUBNET'];
const COMMON_ENV = ['FLANNEL_MTU', 'FLANNEL_IPMASQ'];

const cases: Case[] = [
  { args: ['--backend', 'vxlan', '--ipv6', '--nftables'], pairs: 4, nft: V6_CHAINS, env: [...V6_ENV, ...COMMON_ENV] },
  {
    args: ['--backend', 'vxlan', '--dual-stack', '--nftables'],
    pairs: 8,
    nft: [...V4_CHAINS, ...V6_CHAINS],
    env: [...V4_ENV, ...V6_ENV, ...COMMON_ENV],
  },
  { args: ['--backend', 'host-gw', '--nftables'], pairs: 4, nft: V4_CHAINS, env: [...V4_ENV, ...COMMON_ENV] },
  { args: ['--backend', 'host-gw', '--ipv6', '--nftables'], pairs: 4, nft: V6_CHAINS, env: [...V6_ENV, ...COMMON_ENV] },
  {
    args: ['--backend', 'host-gw', '--dual-stack', '--nftables'],
    pairs: 8,
    nft: [...V4_CHAINS, ...V6_CHAINS],
    env: [...V4_ENV, ...V6_ENV, ...COMMON_ENV],
  },
  { args: ['--backend', 'udp', '--nftables'], pairs: 4, nft: V4_CHAINS, env: [...V4_ENV, ...COMMON_ENV] },
  { args: ['--backend', 'vxlan', '--dual-stack', '--kube'], pairs: 8, env: [...V4_ENV, ...V6_ENV, ...COMMON_ENV] },
  { args: ['--backend', 'host-gw', '--ipv6', '--kube'], pairs: 4, env: [...V6_ENV, ...COMMON_ENV] },
];

describe('lab matrix: the remaining backend × family × rules-mode combinations', { skip: labSkip }, () => {
  after(labDownQuietly);

  for (const c of cases) {
    it(`${c.args.join(' ')}: ${c.pairs} pairs at 0 % loss`, () => {
      const out = labUpOutput(['--hosts', '2', '--pods-per-host', '1', ...c.args]);
      assert.match(out, new RegExp(`All ${c.pairs} pairs at 0 % loss\\.`), out);
      assert.deepEqual(Object.keys(subnetEnv(h1)), c.env);
      if (c.nft) {
        // Only the enabled families' chains, and none of iptables mode's.
        assert.deepEqual(nftChains(h1).sort(), [...c.nft].sort());
        assert.equal(iptablesChains(h1, 'iptables', 'nat').includes('FLANNEL-POSTRTG'), false);
        assert.equal(iptablesChains(h1, 'ip6tables', 'nat').includes('FLANNEL-POSTRTG'), false);
      } else {
        assert.equal(
          iptablesChains(h1, 'iptables', 'nat').includes('FLANNEL-POSTRTG'),
          c.env.includes('FLANNEL_NETWORK'),
        );
        assert.equal(
          iptablesChains(h1, 'ip6tables', 'nat').includes('FLANNEL-POSTRTG'),
          c.env.includes('FLANNEL_IPV6_NETWORK'),
        );
      }
      lab(['down']);
    });
  }
});
