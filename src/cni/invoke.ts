// Running the delegate plugin: find it on CNI_PATH, hand it the config on stdin, collect its result.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';
import { isObject } from '../util/json.ts';
import { CniCode, CniError } from './errors.ts';

/** The first executable file named `type` in the CNI_PATH directories. */
export function findPlugin(type: string, dirs: string[]): string {
  if (!type || type.includes('/')) {
    throw new CniError(
      CniCode.InvalidNetworkConfig,
      `invalid delegate plugin type "${type}"; it must be a plugin file name such as "bridge"`,
    );
  }
  for (const dir of dirs) {
    const p = join(dir, type);
    try {
      if (!statSync(p).isFile()) continue;
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  throw new CniError(
    CniCode.Generic,
    `failed to find plugin "${type}" in path [${dirs.join(' ')}]; install the "${type}" CNI plugin into one of these directories or fix CNI_PATH`,
  );
}

export type DelegateOutcome = { ok: true; stdout: Buffer } | { ok: false; stdout: Buffer; error: CniError };

/** Runs `plugin` with CNI_COMMAND=`command` and the rest of our environment; its stderr goes to ours. */
export function execPlugin(
  plugin: string,
  command: string,
  stdin: string | Buffer,
  env: NodeJS.ProcessEnv,
): DelegateOutcome {
  const r = spawnSync(plugin, [], {
    input: stdin,
    env: { ...env, CNI_COMMAND: command },
    stdio: ['pipe', 'pipe', 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) {
    return {
      ok: false,
      stdout: Buffer.alloc(0),
      error: new CniError(CniCode.Generic, `running delegate plugin ${plugin}: ${r.error.message}`),
    };
  }
  const stdout = r.stdout ?? Buffer.alloc(0);
  if (r.status === 0) return { ok: true, stdout };
  // A well-formed CNI error from the delegate is passed through as is.
  try {
    const e: unknown = JSON.parse(stdout.toString());
    if (isObject(e) && typeof e.code === 'number') {
      return {
        ok: false,
        stdout,
        error: new CniError(e.code, String(e.msg ?? ''), typeof e.details === 'string' ? e.details : ''),
      };
    }
  } catch {
    /* not JSON: described below */
  }
  const how = r.signal ? `was killed by ${r.signal}` : `exited with status ${r.status}`;
  const out = stdout.toString().trim();
  return {
    ok: false,
    stdout: Buffer.alloc(0),
    error: new CniError(
      CniCode.Generic,
      `delegate plugin ${plugin} (${command}) ${how}${out ? `: ${out.slice(0, 500)}` : ' without a CNI result'}`,
    ),
  };
}
