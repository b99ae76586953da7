// The CNI commands of the flannel plugin. Each returns what goes to stdout, or throws a CniError.
import { isObject } from '../util/json.ts';
import { buildDelegate } from './delegate.ts';
import { goMarshal } from './go-json.ts';
import type { CniArgs } from './env.ts';
import { CniCode, CniError } from './errors.ts';
import { execPlugin, findPlugin } from './invoke.ts';
import type { FlannelNetConf } from './netconf.ts';
import { readScratch, removeScratch, saveScratch, scratchPath } from './scratch.ts';
import { loadSubnetEnv } from './subnet-file.ts';
import { versionAtLeast } from './versions.ts';

export interface CommandContext {
  args: CniArgs;
  conf: FlannelNetConf;
  /** The effective protocol version of the config ("0.1.0" when absent). */
  version: string;
  env: NodeJS.ProcessEnv;
  stderr(text: string): void;
}

/** stdout bytes and exit status; a failed delegate's own error JSON is passed through with status 1. */
export interface Reply {
  stdout: Buffer | string;
  exitCode: number;
}

const OK: Reply = { stdout: '', exitCode: 0 };

function runDelegate(ctx: CommandContext, type: string, command: 'ADD' | 'DEL', bytes: string | Buffer): Reply {
  const plugin = findPlugin(type, ctx.args.path);
  const r = execPlugin(plugin, command, bytes, ctx.env);
  if (r.ok) return { stdout: r.stdout, exitCode: 0 };
  if (r.stdout.length > 0) return { stdout: r.stdout, exitCode: 1 };
  throw r.error;
}

export function cmdAdd(ctx: CommandContext): Reply {
  const env = loadSubnetEnv(ctx.conf.subnetFile);
  const delegate = buildDelegate(ctx.conf, env);
  const type = delegate.type as string;
  const bytes = goMarshal(delegate);
  ctx.stderr(`flannel: delegate config for ${type}: ${bytes}\n`);
  // Saved before the delegate runs: if it fails half-way, the runtime's DEL still finds what to undo.
  saveScratch(ctx.conf.dataDir, ctx.args.containerId, bytes);
  return runDelegate(ctx, type, 'ADD', bytes);
}

export function cmdDel(ctx: CommandContext): Reply {
  const { dataDir } = ctx.conf;
  const id = ctx.args.containerId;
  const saved = readScratch(dataDir, id);
  if (!saved) return OK;
  let type: unknown;
  try {
    const conf: unknown = JSON.parse(saved.toString());
    type = isObject(conf) ? conf.type : undefined;
  } catch {
    type = undefined;
  }
  if (typeof type !== 'string' || !type) {
    // Nothing can ever be replayed from it; keeping it would only fail every later DEL.
    ctx.stderr(
      `flannel: ignoring unusable saved config ${scratchPath(dataDir, id)} (not a delegate config with a "type"); removed it\n`,
    );
    removeScratch(dataDir, id);
    return OK;
  }
  const reply = runDelegate(ctx, type, 'DEL', saved);
  if (reply.exitCode === 0) removeScratch(dataDir, id);
  return reply;
}

export function cmdCheck(ctx: CommandContext): Reply {
  if (!versionAtLeast(ctx.version, '0.4.0')) {
    throw new CniError(
      CniCode.IncompatibleVersion,
      `config version does not allow CHECK: cniVersion "${ctx.version}" is below 0.4.0`,
    );
  }
  return OK;
}

function requireV110(ctx: CommandContext, what: string): void {
  if (!versionAtLeast(ctx.version, '1.1.0')) {
    throw new CniError(
      CniCode.IncompatibleVersion,
      `config version does not allow ${what}: cniVersion "${ctx.version}" is below 1.1.0`,
    );
  }
}

export function cmdGc(ctx: CommandContext): Reply {
  requireV110(ctx, 'GC');
  return OK;
}

/** Ready when ADD could succeed: subnet.env is readable and complete, and the delegate plugin is installed. */
export function cmdStatus(ctx: CommandContext): Reply {
  requireV110(ctx, 'STATUS');
  try {
    loadSubnetEnv(ctx.conf.subnetFile);
    const type = typeof ctx.conf.delegate.type === 'string' ? ctx.conf.delegate.type : 'bridge';
    if (ctx.args.path.length > 0) findPlugin(type, ctx.args.path);
  } catch (e) {
    throw new CniError(CniCode.NotAvailable, `flannel is not ready: ${(e as Error).message}`);
  }
  return OK;
}
