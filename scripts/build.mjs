#!/usr/bin/env node
// Builds the native addon (node-gyp against the running node's headers, no download) and the three bundles in dist/.
import { build } from 'esbuild';
import { chmodSync, copyFileSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildNative } from './build-native.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
mkdirSync('dist', { recursive: true });

// `npm ci` already built the addon (package.json "install"); rebuild only when its source is newer.
const addon = 'build/Release/flannel_native.node';
const stale = !existsSync(addon) || ['binding.gyp', 'src/native/flannel_native.c'].some((f) => statSync(f).mtimeMs > statSync(addon).mtimeMs);
if (stale) buildNative(root);
copyFileSync(addon, 'dist/flannel_native.node');

const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  banner: { js: '#!/usr/bin/env node' },
  logLevel: 'warning',
  // import.meta.url is empty in CJS; the native loader falls back to the script's directory.
  logOverride: { 'empty-import-meta': 'silent' },
};
const entries = [
  // The CNI plugin is one self-contained file: it starts on every pod event, so nothing is resolved at run time.
  { in: 'src/cni/main.ts', out: 'dist/flannel.cjs', packages: 'bundle' },
  // flanneld and flannelctl load etcd3/netlink (native prebuilds) from node_modules.
  { in: 'src/daemon/main.ts', out: 'dist/flanneld.cjs', packages: 'external' },
  { in: 'src/cli/flannelctl.ts', out: 'dist/flannelctl.cjs', packages: 'external' },
];
for (const e of entries) {
  if (!existsSync(e.in)) {
    console.error(`build: ${e.in} is missing`);
    process.exit(1);
  }
  await build({ ...common, entryPoints: [e.in], outfile: e.out, packages: e.packages });
  chmodSync(e.out, 0o755);
}
console.log(`build: ${entries.map((e) => e.out).join(', ')}`);
