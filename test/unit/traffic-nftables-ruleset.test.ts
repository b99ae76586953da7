import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IPv4Net } from '../../src/ip/ipv4.ts';
import { chainCleanupPayload } from '../../src/traffic/iptables/restore.ts';
import { chainDifferences, parseChainJson } from '../../src/traffic/nftables/listing.ts';
import { applyScript, chainListing, forwardChain, masqChain, tableScript } from '../../src/traffic/nftables/ruleset.ts';

const NET = IPv4Net.parse('10.244.0.0/16');
const POD = IPv4Net.parse('10.244.1.0/24');

describe('nftables rule text (docs/COMPATIBILITY.md, "nftables rules")', () => {
  it('lists the masquerade chain exactly as the spec shows it', () => {
    assert.equal(
      chainListing(masqChain(NET, POD, true)),
      [
        'table ip flannel-ipv4 {',
        '\tchain postrtg {',
        '\t\tcomment "chain to manage traffic masquerading by flannel"',
        '\t\ttype nat hook postrouting priority srcnat; policy accept;',
        '\t\tmeta mark 0x00004000 return',
        '\t\tip saddr 10.244.1.0/24 ip daddr 10.244.0.0/16 return',
        '\t\tip saddr 10.244.0.0/16 ip daddr 10.244.1.0/24 return',
        '\t\tip saddr != 10.244.1.0/24 ip daddr 10.244.0.0/16 return',
        '\t\tip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random',
        '\t\tip saddr != 10.244.0.0/16 ip daddr 10.244.0.0/16 masquerade fully-random',
        '\t}',
        '}',
        '',
      ].join('\n'),
    );
  });

  it('drops fully-random when it is disabled or unsupported', () => {
    const rules = masqChain(NET, POD, false).rules;
    assert.equal(rules[4], 'ip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade');
    assert.equal(rules[5], 'ip saddr != 10.244.0.0/16 ip daddr 10.244.0.0/16 masquerade');
  });

  it('lists the forward chain exactly as the spec shows it', () => {
    assert.equal(
      chainListing(forwardChain(NET)),
      [
        'table ip flannel-ipv4 {',
        '\tchain forward {',
        '\t\tcomment "chain to accept flannel traffic"',
        '\t\ttype filter hook forward priority filter; policy accept;',
        '\t\tip saddr 10.244.0.0/16 accept',
        '\t\tip daddr 10.244.0.0/16 accept',
        '\t}',
        '}',
        '',
      ].join('\n'),
    );
  });

  it('writes one transaction: table, chain (created if absent), flush, rules', () => {
    assert.equal(
      applyScript(forwardChain(NET)),
      [
        'add table ip flannel-ipv4 { comment "rules for flannel-ipv4" ; }',
        'add chain ip flannel-ipv4 forward { comment "chain to accept flannel traffic" ; type filter hook forward priority filter ; policy accept ; }',
        'flush chain ip flannel-ipv4 forward',
        'add rule ip flannel-ipv4 forward ip saddr 10.244.0.0/16 accept',
        'add rule ip flannel-ipv4 forward ip daddr 10.244.0.0/16 accept',
        '',
      ].join('\n'),
    );
    assert.equal(tableScript(), 'add table ip flannel-ipv4 { comment "rules for flannel-ipv4" ; }\n');
  });
});

/** `nft -j list chain ip flannel-ipv4 postrtg` as nft 1.0.6 prints it (comments are not part of -j output there). */
const prefix = (field: string, addr: string, len: number, op = '==') => ({
  match: { op, left: { payload: { protocol: 'ip', field } }, right: { prefix: { addr, len } } },
});
const listedMasq = (flags: unknown) =>
  JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6', json_schema_version: 1 } },
      {
        chain: {
          family: 'ip',
          table: 'flannel-ipv4',
          name: 'postrtg',
          handle: 1,
          type: 'nat',
          hook: 'postrouting',
          prio: 100,
          policy: 'accept',
        },
      },
      {
        rule: {
          chain: 'postrtg',
          handle: 2,
          expr: [{ match: { op: '==', left: { meta: { key: 'mark' } }, right: 16384 } }, { return: null }],
        },
      },
      {
        rule: {
          chain: 'postrtg',
          handle: 3,
          expr: [prefix('saddr', '10.244.1.0', 24), prefix('daddr', '10.244.0.0', 16), { return: null }],
        },
      },
      {
        rule: {
          chain: 'postrtg',
          handle: 4,
          expr: [prefix('saddr', '10.244.0.0', 16), prefix('daddr', '10.244.1.0', 24), { return: null }],
        },
      },
      {
        rule: {
          chain: 'postrtg',
          handle: 5,
          expr: [prefix('saddr', '10.244.1.0', 24, '!='), prefix('daddr', '10.244.0.0', 16), { return: null }],
        },
      },
      {
        rule: {
          chain: 'postrtg',
          handle: 6,
          expr: [prefix('saddr', '10.244.0.0', 16), prefix('daddr', '224.0.0.0', 4, '!='), { masquerade: { flags } }],
        },
      },
      {
        rule: {
          chain: 'postrtg',
          handle: 7,
          expr: [prefix('saddr', '10.244.0.0', 16, '!='), prefix('daddr', '10.244.0.0', 16), { masquerade: { flags } }],
        },
      },
    ],
  });

describe('nftables listing normalisation (resync)', () => {
  it('renders nft -j rules as the rule text flannel writes, flags as string or array', () => {
    for (const flags of ['fully-random', ['fully-random']]) {
      const got = parseChainJson(listedMasq(flags), 'postrtg');
      assert.deepEqual(got?.rules, masqChain(NET, POD, true).rules);
      assert.deepEqual(chainDifferences(masqChain(NET, POD, true), got), []);
    }
  });

  it('reports a flushed chain, a missing chain and a changed rule', () => {
    const flushed = JSON.stringify({
      nftables: [{ chain: { name: 'postrtg', type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' } }],
    });
    const want = masqChain(NET, POD, true);
    assert.equal(chainDifferences(want, parseChainJson(flushed, 'postrtg')).length, 6);
    assert.deepEqual(chainDifferences(want, undefined), ['chain postrtg is missing']);
    // The masquerade without fully-random differs from the wanted one with it.
    const diffs = chainDifferences(masqChain(NET, POD, false), parseChainJson(listedMasq('fully-random'), 'postrtg'));
    assert.equal(diffs.length, 2);
    assert.match(
      diffs[0]!,
      /^rule 5 of postrtg is "ip saddr 10\.244\.0\.0\/16 ip daddr != 224\.0\.0\.0\/4 masquerade fully-random"/,
    );
  });

  it('never matches an expression it does not know', () => {
    const odd = JSON.stringify({
      nftables: [{ rule: { chain: 'forward', expr: [{ counter: { packets: 0, bytes: 0 } }, { accept: null }] } }],
    });
    const got = parseChainJson(odd, 'forward');
    assert.deepEqual(got?.rules, ['?{"counter":{"packets":0,"bytes":0}} accept']);
    assert.notDeepEqual(chainDifferences(forwardChain(NET), got), []);
  });

  it('rejects output that is not nft JSON', () => {
    assert.throws(() => parseChainJson('{"foo":1}', 'postrtg'), /no "nftables" array/);
  });
});

describe('iptables chain cleanup payload (nftables mode init)', () => {
  it('deletes the jumps, then flushes and deletes the chain', () => {
    const listed = [
      '-P POSTROUTING ACCEPT',
      '-N FLANNEL-POSTRTG',
      '-A POSTROUTING -s 192.0.2.0/24 -j RETURN',
      '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
      '-A FLANNEL-POSTRTG -s 10.244.0.0/16 -m comment --comment "flanneld masq" -j RETURN',
      '-A POSTROUTING -j FLANNEL-POSTRTG-OTHER',
    ];
    assert.equal(
      chainCleanupPayload('nat', 'FLANNEL-POSTRTG', listed),
      [
        '*nat',
        '-D POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
        '-F FLANNEL-POSTRTG',
        '-X FLANNEL-POSTRTG',
        'COMMIT',
        '',
      ].join('\n'),
    );
  });
});
