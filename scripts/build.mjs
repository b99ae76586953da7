#!/usr/bin/env node
// Builds the native addon (node-gyp against the running node's headers, no download) and the three bundles in dist/.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildNative } from './build-native.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
mkdirSync('dist', { recursive: true });

// `npm ci` already built the addon (package.json "install"); rebuild only when its source is newer.
const addon = 'build/Release/flannel_native.node';
const stale =
  !existsSync(addon) ||
  ['binding.gyp', 'src/native/flannel_native.c'].some((f) => statSync(f).mtimeMs > statSync(addon).mtimeMs);
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
  // flanneld and flannelctl load netlink (native prebuilds) and the Kubernetes client from node_modules.
  // flanneld's first line sizes the heap for a long-lived agent: a 1 MiB young generation and V8's memory-saving
  // mode keep RSS near half of the defaults at 5,000 peers for a few percent of CPU, and one V8 worker thread
  // instead of four saves their malloc arenas (~2 MB; docs/scale.md).
  {
    in: 'src/daemon/main.ts',
    out: 'dist/flanneld.cjs',
    packages: 'external',
    banner: '#!/usr/bin/env -S node --max-semi-space-size=1 --optimize-for-size --v8-pool-size=1',
  },
  { in: 'src/cli/flannelctl.ts', out: 'dist/flannelctl.cjs', packages: 'external' },
  // The lab's fake Kubernetes API server: a lab fixture, kept out of the programs users install.
  { in: 'src/lab/kube-api/main.ts', out: 'dist/lab-kube-api.cjs', packages: 'external' },
];
for (const e of entries) {
  if (!existsSync(e.in)) {
    console.error(`build: ${e.in} is missing`);
    process.exit(1);
  }
  await build({
    ...common,
    ...(e.banner ? { banner: { js: e.banner } } : {}),
    entryPoints: [e.in],
    outfile: e.out,
    packages: e.packages,
  });
  chmodSync(e.out, 0o755);
}

// The CNI plugin and flannelctl also as single executables: the container runtime runs the plugin on the host,
// where no node need be installed, and operators run flannelctl there. `bun build --compile` (the npm package's
// own binary, no download) embeds the bundle in bun's runtime; docs/single-executable.md has the measurements.
const BUN_ARCH = { x64: 'x64', arm64: 'aarch64' }[process.arch];
// The platform package ships the binary; bun's own postinstall, where npm runs it, moves it into bun/bin/bun.exe.
const bunCandidates = [`node_modules/@oven/bun-linux-${BUN_ARCH}/bin/bun`, 'node_modules/bun/bin/bun.exe'].map((p) =>
  join(root, p),
);
const bun = bunCandidates.find((p) => existsSync(p) && statSync(p).size > 1e6);
if (!bun) {
  console.error(
    `build: no bun binary at ${bunCandidates.join(' or ')}: run \`npm ci\` (devDependency bun, with @oven/bun-linux-${BUN_ARCH ?? process.arch})`,
  );
  process.exit(1);
}
mkdirSync('dist/bin', { recursive: true });
// From the TypeScript entry points (bun bundles them itself): precompiled bytecode, and no .env or bunfig.toml read
// from whatever directory the runtime starts the plugin in. Each flag is worth milliseconds per pod event.
const executables = [
  { in: 'src/cni/main.ts', out: 'dist/bin/flannel' },
  { in: 'src/cli/flannelctl.ts', out: 'dist/bin/flannelctl' },
];
const compileFlags = [
  '--compile',
  '--minify',
  '--bytecode',
  '--no-compile-autoload-dotenv',
  '--no-compile-autoload-bunfig',
];
for (const e of executables) {
  execFileSync(bun, ['build', ...compileFlags, e.in, '--outfile', e.out], { stdio: ['ignore', 'ignore', 'inherit'] });
}
console.log(`build: ${[...entries, ...executables].map((e) => e.out).join(', ')}`);
