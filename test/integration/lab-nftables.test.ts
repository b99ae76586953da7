// The lab with "EnableNFTables": true: full ping matrix, flannel's nft tables on every host, no iptables chains.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot, nsRun } from '../helpers/netns.ts';

const dist = join(import.meta.dirname, '../../dist');
const ctl = (args: string[]) => execFileSync(process.execPath, [join(dist, 'flannelctl.cjs'), 'lab', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 });

describe('lab with nftables rules', { skip: !isRoot || !existsSync(join(dist, 'flannelctl.cjs')) ? 'needs root and `npm run build`' : false }, () => {
  after(() => {
    try {
      ctl(['down']);
    } catch {
      /* best effort */
    }
  });

  it('passes the ping matrix with the rules in nftables only', () => {
    const out = ctl(['up', '--nftables']);
    assert.match(out, /"EnableNFTables":true/);
    assert.match(out, /All 42 pairs at 0 % loss\./, out);
    for (const h of ['flab-h1', 'flab-h2', 'flab-h3']) {
      const tables = JSON.parse(nsRun(h, 'nft', ['-j', 'list', 'tables'])).nftables.filter((x: any) => x.table).map((x: any) => `${x.table.family} ${x.table.name}`);
      assert.ok(tables.includes('ip flannel-ipv4'), `${h}: ${tables}`);
      const chain = nsRun(h, 'nft', ['list', 'chain', 'ip', 'flannel-ipv4', 'postrtg']);
      assert.match(chain, /ip saddr 10\.244\.0\.0\/16 ip daddr != 224\.0\.0\.0\/4 masquerade/);
      assert.doesNotMatch(nsRun(h, 'iptables', ['-t', 'nat', '-S']), /FLANNEL-POSTRTG/);
    }
    ctl(['down']);
    assert.doesNotMatch(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }), /flab-/);
  });
});
