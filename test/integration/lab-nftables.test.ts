// The lab with "EnableNFTables": true: full ping matrix, flannel's nft tables on every host, no iptables chains.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { nsRun } from '../helpers/netns.ts';
import {
  assertDoctorHealthy,
  assertTraceHealthy,
  TRACE_HOPS,
  assertNoLabNamespaces,
  lab,
  LAB_HOSTS,
  labDoctor,
  labDownQuietly,
  labSkip,
} from '../helpers/lab.ts';

describe('lab with nftables rules', { skip: labSkip }, () => {
  after(labDownQuietly);

  it('passes the ping matrix with the rules in nftables only', () => {
    const out = lab(['up', '--nftables']);
    assert.match(out, /"EnableNFTables":true/);
    assert.match(out, /All 42 pairs at 0 % loss\./, out);
    for (const h of LAB_HOSTS) {
      const tables = JSON.parse(nsRun(h, 'nft', ['-j', 'list', 'tables']))
        .nftables.filter((x: any) => x.table)
        .map((x: any) => `${x.table.family} ${x.table.name}`);
      assert.ok(tables.includes('ip flannel-ipv4'), `${h}: ${tables}`);
      const chain = nsRun(h, 'nft', ['list', 'chain', 'ip', 'flannel-ipv4', 'postrtg']);
      assert.match(chain, /ip saddr 10\.244\.0\.0\/16 ip daddr != 224\.0\.0\.0\/4 masquerade/);
      assert.doesNotMatch(nsRun(h, 'iptables', ['-t', 'nat', '-S']), /FLANNEL-POSTRTG/);
    }
    assertDoctorHealthy(LAB_HOSTS);
    assertTraceHealthy('h1-p1', 'h2-p1', TRACE_HOPS.vxlan);
    // Another table's forward chain with policy drop drops pod traffic whatever flannel's own chain accepts.
    nsRun(
      'flab-h2',
      'nft',
      ['-f', '-'],
      'table inet fw {\n chain forward {\n  type filter hook forward priority 10; policy drop;\n }\n}\n',
    );
    try {
      const d = labDoctor('flab-h2');
      assert.deepEqual(d.ids, ['forward-blocked'], d.stdout);
      assert.ok(d.findings[0]!.evidence.includes('nft inet fw forward: policy DROP'), d.stdout);
    } finally {
      nsRun('flab-h2', 'nft', ['delete', 'table', 'inet', 'fw']);
    }
    assert.equal(labDoctor('flab-h2').status, 0);
    lab(['down']);
    assertNoLabNamespaces();
  });
});
