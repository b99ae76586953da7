// The CNI plugin executable users install (dist/bin/flannel, a single file with no node behind it), through every
// dispatch case the in-process tests check: the same CNI error JSON and codes, run with nothing on PATH.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describePluginDispatch, type Outcome } from '../helpers/cni-dispatch-cases.ts';

const executable = process.env.FLANNEL_CNI_PLUGIN ?? join(import.meta.dirname, '../../dist/bin/flannel');
if (!existsSync(executable)) throw new Error(`${executable} is missing: run \`npm run build\``);

function invoke(env: Record<string, string>, stdin: string | object | null = ''): Outcome {
  const input = stdin === null ? '' : typeof stdin === 'string' ? stdin : JSON.stringify(stdin);
  const r = spawnSync(executable, [], { env, input, encoding: 'utf8', timeout: 20_000 });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describePluginDispatch(`flannel CNI plugin executable (${executable})`, invoke);
