// The lab with "EnableNFTables": true: full ping matrix, flannel's nft tables on every host, no iptables chains.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { nsRun } from '../helpers/netns.ts';
import { assertNoLabNamespaces, lab, LAB_HOSTS, labDownQuietly, labSkip } from '../helpers/lab.ts';

describe('lab with nftables rules', { skip: labSkip }, () => {
  after(labDownQuietly);

  it('passes the ping matrix with the rules in nftables only', () => {
    const out = lab(['up', '--nftables']);
    assert.match(out, /"EnableNFTables":true/);
    assert.match(out, /All 42 pairs at 0 % loss\./, out);
    for (const h of LAB_HOSTS) {
      const tables = JSON.parse(nsRun(h, 'nft', ['-j', 'list', 'tables'])).nftables.filter((x: any) => x.table).map((x: any) => `${x.table.family} ${x.table.name}`);
      assert.ok(tables.includes('ip flannel-ipv4'), `${h}: ${tables}`);
      const chain = nsRun(h, 'nft', ['list', 'chain', 'ip', 'flannel-ipv4', 'postrtg']);
      assert.match(chain, /ip saddr 10\.244\.0\.0\/16 ip daddr != 224\.0\.0\.0\/4 masquerade/);
      assert.doesNotMatch(nsRun(h, 'iptables', ['-t', 'nat', '-S']), /FLANNEL-POSTRTG/);
    }
    lab(['down']);
    assertNoLabNamespaces();
  });
});
