// scripts/build-native.mjs: the addon is built against the headers of the node that runs the build, wherever it lives.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
// @ts-expect-error: a plain .mjs build script without type declarations
import { checkNodeVersion, nodeHeadersDir } from '../../scripts/build-native.mjs';

const root = join(import.meta.dirname, '../..');

describe('build-native', () => {
  it("takes node-gyp's --nodedir from the running node's prefix", () => {
    assert.equal(nodeHeadersDir('/usr/bin/node'), '/usr');
    assert.equal(nodeHeadersDir('/usr/local/bin/node'), '/usr/local');
    assert.equal(nodeHeadersDir('/opt/node-v20.18.0-linux-x64/bin/node'), '/opt/node-v20.18.0-linux-x64');
  });

  it('refuses a node older than 20.18, naming the version and where to get a newer one', () => {
    assert.throws(
      () => checkNodeVersion('18.19.0'),
      /node 18\.19\.0 is too old: flannel-ts needs Node\.js >= 20\.18 .*Debian 12's own nodejs package is 18/,
    );
    assert.throws(() => checkNodeVersion('20.17.9'), /too old/);
    checkNodeVersion('20.18.0');
    checkNodeVersion('22.1.0');
  });

  it('no build step hard-codes a distribution path for the headers', () => {
    for (const f of ['package.json', 'scripts/build.mjs', 'Dockerfile']) {
      assert.doesNotMatch(readFileSync(join(root, f), 'utf8'), /--nodedir=\/usr\b/, f);
    }
  });
});
