// flanneld entry point: parse flags/env, then hand over to the startup sequence.
import { basename } from 'node:path';
import { setVerbosity } from '../log/log.ts';
import { VERSION } from '../version.ts';
import { FlagError, parseFlags, usage, validateOptions, type Options } from './flags.ts';
import { runFlanneld } from './flanneld.ts';

const argv0 = basename(process.argv[1] ?? 'flanneld').replace(/\.c?js$/, '');
let opts: Options;
try {
  opts = parseFlags(process.argv.slice(2), process.env);
  if (opts.help) {
    process.stdout.write(usage(argv0));
    process.exit(0);
  }
  if (opts.version) {
    process.stderr.write(`${VERSION}\n`);
    process.exit(0);
  }
  validateOptions(opts);
} catch (e) {
  if (!(e instanceof FlagError)) throw e;
  process.stderr.write(`${e.message}\n`);
  if (e.exitCode === 2) process.stderr.write(usage(argv0));
  process.exit(e.exitCode);
}
setVerbosity(opts.v);
runFlanneld(opts).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`flanneld: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
