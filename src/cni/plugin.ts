// The plugin's dispatcher: environment and stdin in, CNI result or CNI error out. Pure of process globals.
import { VERSION } from '../version.ts';
import { cmdAdd, cmdCheck, cmdDel, cmdGc, cmdStatus, type CommandContext, type Reply } from './commands.ts';
import { parseCommand, readCniArgs } from './env.ts';
import { CURRENT_VERSION, SUPPORTED_VERSIONS, versionJSON } from './versions.ts';
import { asCniError, formatCniError } from './errors.ts';
import { configVersion, decodeConfig, parseNetConf } from './netconf.ts';

export interface PluginIO {
  env: NodeJS.ProcessEnv;
  readStdin(): Buffer;
  stdout(data: Buffer | string): void;
  stderr(text: string): void;
}

const GO_ARCH: Record<string, string> = {
  x64: 'amd64',
  ia32: '386',
  arm64: 'arm64',
  arm: 'arm',
  ppc64: 'ppc64le',
  s390x: 's390x',
};

function aboutText(): string {
  const arch = GO_ARCH[process.arch] ?? process.arch;
  return `CNI Plugin flannel version ${VERSION} (${process.platform}/${arch}) commit unknown\nCNI protocol versions supported: ${SUPPORTED_VERSIONS.join(', ')}\n`;
}

/** Runs one CNI invocation; returns the process exit status. */
export function runPlugin(io: PluginIO): number {
  const rawCommand = io.env.CNI_COMMAND ?? '';
  if (!rawCommand) {
    io.stderr(aboutText());
    return 0;
  }
  // Errors before the config is read carry the newest protocol version.
  let errVersion = CURRENT_VERSION;
  let reply: Reply;
  try {
    const command = parseCommand(rawCommand);
    if (command === 'VERSION') {
      io.stdout(versionJSON());
      return 0;
    }
    const args = readCniArgs(io.env, command);
    const raw = decodeConfig(io.readStdin());
    const version = configVersion(raw);
    errVersion = version;
    const ctx: CommandContext = { args, conf: parseNetConf(raw), version, env: io.env, stderr: io.stderr };
    const run = { ADD: cmdAdd, DEL: cmdDel, CHECK: cmdCheck, GC: cmdGc, STATUS: cmdStatus }[command];
    reply = run(ctx);
  } catch (e) {
    io.stdout(formatCniError(asCniError(e), errVersion));
    return 1;
  }
  if (reply.stdout.length > 0) io.stdout(reply.stdout);
  return reply.exitCode;
}
