#!/usr/bin/env node
// Builds the native addon (src/native) with node-gyp against the headers of the node that runs this script, so
// nothing is downloaded and no distribution's layout is assumed: Debian's /usr/bin/node has /usr/include/node,
// the official images' /usr/local/bin/node has /usr/local/include/node.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const MIN_NODE = [20, 18];

/** <prefix> of <prefix>/bin/node: where node-gyp finds include/node. */
export function nodeHeadersDir(execPath = process.execPath) {
  return resolve(dirname(execPath), '..');
}

export function checkNodeVersion(version = process.versions.node) {
  const [major, minor] = version.split('.').map(Number);
  if (major < MIN_NODE[0] || (major === MIN_NODE[0] && minor < MIN_NODE[1])) {
    throw new Error(
      `node ${version} is too old: flannel-ts needs Node.js >= ${MIN_NODE.join('.')} ` +
        "(Debian 12's own nodejs package is 18; install Node.js 20 from the Node.js project's Debian packages or binaries, see README)",
    );
  }
}

export function buildNative(root = join(dirname(fileURLToPath(import.meta.url)), '..')) {
  checkNodeVersion();
  const nodedir = nodeHeadersDir();
  const header = join(nodedir, 'include/node/node_api.h');
  if (!existsSync(header)) {
    throw new Error(
      `${header} is missing: node-gyp needs the headers of ${process.execPath} (${process.version}); ` +
        'install the Node.js package that ships them (its include/node directory) or use a Node.js binary distribution',
    );
  }
  const gyp = join(root, 'node_modules/node-gyp/bin/node-gyp.js');
  execFileSync(process.execPath, [gyp, 'rebuild', `--nodedir=${nodedir}`, '--loglevel=warn'], {
    stdio: 'inherit',
    cwd: root,
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    buildNative();
  } catch (e) {
    console.error(`build-native: ${e instanceof Error ? e.message : e}`);
    process.exit(1);
  }
}
