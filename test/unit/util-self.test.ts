// The node flags flanneld's first line carries, read back so that `node dist/flanneld.cjs` runs like the file itself.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { flanneldArgv, shebangFlags } from '../../src/util/self.ts';

const BUNDLE = join(import.meta.dirname, '../../dist/flanneld.cjs');

describe('shebang flags', () => {
  it('reads the flags of an env -S node line and nothing from other lines', () => {
    assert.deepEqual(shebangFlags('#!/usr/bin/env -S node --max-semi-space-size=1 --optimize-for-size'), [
      '--max-semi-space-size=1',
      '--optimize-for-size',
    ]);
    assert.deepEqual(shebangFlags('#!/usr/bin/env node'), []);
    assert.deepEqual(shebangFlags('"use strict";'), []);
    // Not flags: a script path or a shell command must not become node arguments.
    assert.deepEqual(shebangFlags('#!/usr/bin/env -S node /tmp/x.js'), []);
    assert.deepEqual(shebangFlags('#!/usr/bin/env -S node --x; rm -rf /'), []);
  });

  it('starts the built flanneld with the flags its first line names', {
    skip: !existsSync(BUNDLE) && 'run npm run build',
  }, () => {
    const first = readFileSync(BUNDLE, 'utf8').split('\n')[0]!;
    const argv = flanneldArgv(BUNDLE);
    assert.equal(argv.at(-1), BUNDLE);
    assert.ok(argv.includes('--max-semi-space-size=1'), first);
    assert.deepEqual(argv.slice(1, -1), shebangFlags(first));
  });
});
