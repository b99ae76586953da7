// Dual stack rule builders: the ip6tables sets and the `ip6 flannel-ipv6` chains, exact text
// (docs/COMPATIBILITY.md, "iptables rules", "nftables rules").
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IPv4Net } from '../../src/ip/ipv4.ts';
import { IPv6Net } from '../../src/ip/ipv6.ts';
import { dualStackMasq } from '../../src/traffic/families.ts';
import { afterAll } from '../../src/util/tasks.ts';
import { deletePlan, restorePayload, setupPlan } from '../../src/traffic/iptables/restore.ts';
import { forwardRuleSet, masqRuleSet, ruleText } from '../../src/traffic/iptables/rules.ts';
import { chainDifferences, parseChainJson } from '../../src/traffic/nftables/listing.ts';
import {
  applyScript,
  chainListing,
  forwardChain,
  masqChain,
  TABLE_V6,
  tableScript,
} from '../../src/traffic/nftables/ruleset.ts';

const NET6 = IPv6Net.parse('2001:db8:42::/56');
const POD6 = IPv6Net.parse('2001:db8:42:1::/64');
const NET4 = IPv4Net.parse('10.244.0.0/16');
const POD4 = IPv4Net.parse('10.244.1.0/24');

describe('ip6tables masquerade rule set (IPv6, docs/COMPATIBILITY.md, "iptables rules")', () => {
  it('renders the v4 rules with the v6 network/subnet and ff00::/8', () => {
    const set = masqRuleSet(NET6, POD6, true);
    assert.equal(set.family, 'ipv6');
    assert.equal(set.table, 'nat');
    assert.equal(set.chain, 'FLANNEL-POSTRTG');
    assert.deepEqual(
      set.rules.map((r) => ruleText(r)),
      [
        '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
        '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
        '-A FLANNEL-POSTRTG -s 2001:db8:42:1::/64 -d 2001:db8:42::/56 -m comment --comment "flanneld masq" -j RETURN',
        '-A FLANNEL-POSTRTG -s 2001:db8:42::/56 -d 2001:db8:42:1::/64 -m comment --comment "flanneld masq" -j RETURN',
        '-A FLANNEL-POSTRTG ! -s 2001:db8:42::/56 -d 2001:db8:42:1::/64 -m comment --comment "flanneld masq" -j RETURN',
        '-A FLANNEL-POSTRTG -s 2001:db8:42::/56 ! -d ff00::/8 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
        '-A FLANNEL-POSTRTG ! -s 2001:db8:42::/56 -d 2001:db8:42::/56 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
      ],
    );
  });

  it('drops --random-fully when disabled, and the v4 set keeps family ipv4 and 224.0.0.0/4', () => {
    const texts = masqRuleSet(NET6, POD6, false).rules.map((r) => ruleText(r));
    assert.equal(
      texts[5],
      '-A FLANNEL-POSTRTG -s 2001:db8:42::/56 ! -d ff00::/8 -m comment --comment "flanneld masq" -j MASQUERADE',
    );
    assert.ok(texts.every((t) => !t.includes('random-fully')));
    const v4 = masqRuleSet(NET4, POD4, true);
    assert.equal(v4.family, 'ipv4');
    assert.match(ruleText(v4.rules[5]!), / ! -d 224\.0\.0\.0\/4 /);
  });

  it('refuses a network and subnet of different families', () => {
    assert.throws(
      () => (masqRuleSet as (a: unknown, b: unknown, c: boolean) => unknown)(NET6, POD4, true),
      /different IP families/,
    );
  });

  it('builds the same restore payloads as v4 (chain flush, jump deleted and re-appended)', () => {
    assert.equal(
      restorePayload(setupPlan(masqRuleSet(NET6, POD6, false), (r) => (r.chain === 'POSTROUTING' ? 1 : 0))),
      [
        '*nat',
        ':FLANNEL-POSTRTG - [0:0]',
        '-D POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
        '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
        '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
        '-A FLANNEL-POSTRTG -s 2001:db8:42:1::/64 -d 2001:db8:42::/56 -m comment --comment "flanneld masq" -j RETURN',
        '-A FLANNEL-POSTRTG -s 2001:db8:42::/56 -d 2001:db8:42:1::/64 -m comment --comment "flanneld masq" -j RETURN',
        '-A FLANNEL-POSTRTG ! -s 2001:db8:42::/56 -d 2001:db8:42:1::/64 -m comment --comment "flanneld masq" -j RETURN',
        '-A FLANNEL-POSTRTG -s 2001:db8:42::/56 ! -d ff00::/8 -m comment --comment "flanneld masq" -j MASQUERADE',
        '-A FLANNEL-POSTRTG ! -s 2001:db8:42::/56 -d 2001:db8:42::/56 -m comment --comment "flanneld masq" -j MASQUERADE',
        'COMMIT',
        '',
      ].join('\n'),
    );
    const del = restorePayload(deletePlan(masqRuleSet(NET6, POD6, true), (r) => (r.chain === 'POSTROUTING' ? 1 : 0)));
    assert.equal(del, '*nat\n-D POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG\nCOMMIT\n');
  });
});

describe('ip6tables forward rule set (IPv6, docs/COMPATIBILITY.md, "iptables rules")', () => {
  it('renders exactly the spec rules for the v6 network', () => {
    const set = forwardRuleSet(NET6);
    assert.equal(set.family, 'ipv6');
    assert.equal(set.table, 'filter');
    assert.deepEqual(
      set.rules.map((r) => ruleText(r)),
      [
        '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
        '-A FLANNEL-FWD -s 2001:db8:42::/56 -m comment --comment "flanneld forward" -j ACCEPT',
        '-A FLANNEL-FWD -d 2001:db8:42::/56 -m comment --comment "flanneld forward" -j ACCEPT',
      ],
    );
  });
});

describe('nftables ip6 flannel-ipv6 (IPv6, docs/COMPATIBILITY.md, "nftables rules")', () => {
  it('lists the masquerade chain with ip6 saddr/daddr and ff00::/8', () => {
    assert.equal(
      chainListing(masqChain(NET6, POD6, true)),
      [
        'table ip6 flannel-ipv6 {',
        '\tchain postrtg {',
        '\t\tcomment "chain to manage traffic masquerading by flannel"',
        '\t\ttype nat hook postrouting priority srcnat; policy accept;',
        '\t\tmeta mark 0x00004000 return',
        '\t\tip6 saddr 2001:db8:42:1::/64 ip6 daddr 2001:db8:42::/56 return',
        '\t\tip6 saddr 2001:db8:42::/56 ip6 daddr 2001:db8:42:1::/64 return',
        '\t\tip6 saddr != 2001:db8:42:1::/64 ip6 daddr 2001:db8:42::/56 return',
        '\t\tip6 saddr 2001:db8:42::/56 ip6 daddr != ff00::/8 masquerade fully-random',
        '\t\tip6 saddr != 2001:db8:42::/56 ip6 daddr 2001:db8:42::/56 masquerade fully-random',
        '\t}',
        '}',
        '',
      ].join('\n'),
    );
    assert.ok(masqChain(NET6, POD6, false).rules.every((r) => !r.includes('fully-random')));
  });

  it('writes the v6 table and forward chain in one transaction', () => {
    assert.equal(tableScript(TABLE_V6), 'add table ip6 flannel-ipv6 { comment "rules for flannel-ipv6" ; }\n');
    assert.equal(
      applyScript(forwardChain(NET6)),
      [
        'add table ip6 flannel-ipv6 { comment "rules for flannel-ipv6" ; }',
        'add chain ip6 flannel-ipv6 forward { comment "chain to accept flannel traffic" ; type filter hook forward priority filter ; policy accept ; }',
        'flush chain ip6 flannel-ipv6 forward',
        'add rule ip6 flannel-ipv6 forward ip6 saddr 2001:db8:42::/56 accept',
        'add rule ip6 flannel-ipv6 forward ip6 daddr 2001:db8:42::/56 accept',
        '',
      ].join('\n'),
    );
  });

  it('renders a host prefix as the bare address, as nft lists it', () => {
    const rules = forwardChain(IPv6Net.parse('2001:db8::7/128')).rules;
    assert.deepEqual(rules, ['ip6 saddr 2001:db8::7 accept', 'ip6 daddr 2001:db8::7 accept']);
  });

  it('reads nft -j ip6 output back into the same text (the resync sees no difference)', () => {
    const p = (field: string, addr: string, len: number, op = '==') => ({
      match: { op, left: { payload: { protocol: 'ip6', field } }, right: { prefix: { addr, len } } },
    });
    const json = JSON.stringify({
      nftables: [
        {
          chain: {
            family: 'ip6',
            table: 'flannel-ipv6',
            name: 'forward',
            handle: 1,
            type: 'filter',
            hook: 'forward',
            prio: 0,
            policy: 'accept',
          },
        },
        { rule: { chain: 'forward', handle: 2, expr: [p('saddr', '2001:db8:42::', 56), { accept: null }] } },
        { rule: { chain: 'forward', handle: 3, expr: [p('daddr', '2001:db8:42::', 56), { accept: null }] } },
      ],
    });
    assert.deepEqual(chainDifferences(forwardChain(NET6), parseChainJson(json, 'forward')), []);
    // The v4 chain of the same shape is a different rule set.
    assert.notDeepEqual(chainDifferences(forwardChain(NET4), parseChainJson(json, 'forward')), []);
  });
});

describe('dual stack parameters', () => {
  const base = {
    network: NET4,
    subnet: POD4,
    resyncSeconds: 5,
    randomFully: true,
    signal: new AbortController().signal,
  };

  it('takes the v6 pair when both are given, nothing when neither is', () => {
    assert.equal(dualStackMasq(base), undefined);
    assert.deepEqual(dualStackMasq({ ...base, ipv6Network: NET6, ipv6Subnet: POD6 }), { network: NET6, subnet: POD6 });
  });

  it('rejects half a pair with a message naming both fields', () => {
    assert.throws(
      () => dualStackMasq({ ...base, ipv6Network: NET6 }),
      /need both ipv6Network and ipv6Subnet .*no subnet/,
    );
    assert.throws(
      () => dualStackMasq({ ...base, ipv6Subnet: POD6 }),
      /need both ipv6Network and ipv6Subnet .*no network/,
    );
  });

  it('signals the first apply once every loop had its own, each loop counted once', () => {
    let calls = 0;
    const [a, b] = afterAll(2, () => calls++);
    a!();
    a!();
    assert.equal(calls, 0);
    b!();
    assert.equal(calls, 1);
    b!();
    assert.equal(calls, 1);
  });
});
