// How this program was started, so that it can start itself or its sibling programs again: under node as
// `node [loader flags] <script>`, or as a single executable (dist/bin/*, `bun build --compile`), whose script lives
// inside the binary at a /$bunfs/ path.
import { accessSync, constants, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

export const isCompiled = (process.argv[1] ?? '').startsWith('/$bunfs/');

/** The argv that runs this very program again (tsx's loader kept when run from source). */
export function selfArgv(): string[] {
  return isCompiled ? [process.execPath] : [process.execPath, ...process.execArgv, process.argv[1]!];
}

/** dist/ of this build: beside dist/*.cjs, the parent of dist/bin/*; from source, the repository's dist/. */
export function distDir(): string {
  if (isCompiled) return dirname(dirname(process.execPath));
  const here = dirname(process.argv[1] ?? '.');
  return basename(here) === 'dist' ? here : resolve(here, '../../dist');
}

/** The node that runs dist/*.cjs: this one, or the first `node` on PATH when this is a single executable. */
export function nodeExecutable(): string {
  if (!isCompiled) return process.execPath;
  for (const dir of (process.env.PATH ?? '').split(':').filter(Boolean)) {
    const p = join(dir, 'node');
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  throw new Error('flanneld (dist/flanneld.cjs) runs under node, and no node is on PATH: install Node.js >= 20.18');
}

/**
 * The node flags a script's `#!/usr/bin/env -S node <flags>` line asks for (dist/flanneld.cjs sets its heap sizing
 * there, docs/scale.md), so that starting it as `node <script>` runs it the same as executing it.
 */
export function shebangFlags(firstLine: string): string[] {
  const m = /^#!\/usr\/bin\/env -S node((?: --?[\w-]+(?:=\S+)?)*)\s*$/.exec(firstLine);
  return m ? m[1]!.split(' ').filter(Boolean) : [];
}

/** The argv that starts flanneld's bundle (`dist/flanneld.cjs`) under node with the flags of its first line. */
export function flanneldArgv(script: string): string[] {
  const head = readFileSync(script, 'utf8').slice(0, 300).split('\n')[0] ?? '';
  return [nodeExecutable(), ...shebangFlags(head), script];
}
