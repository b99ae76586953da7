// Reading subnet.env on the plugin side, with the newest plugin's error wording (the #1 user-facing flannel error).
import { readFileSync } from 'node:fs';
import { parseSubnetEnv, type SubnetEnv } from '../subnet/subnet-env.ts';
import { CniCode, CniError } from './errors.ts';

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
};

/** Go's os.Open wording ("open /run/flannel/subnet.env: no such file or directory"): users search for it. */
function openError(path: string, e: NodeJS.ErrnoException): string {
  const text = (e.code && ERRNO_TEXT[e.code]) ?? e.message;
  return `${e.code === 'EISDIR' ? 'read' : 'open'} ${path}: ${text}`;
}

export function loadSubnetEnv(path: string): SubnetEnv {
  try {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new Error(openError(path, e as NodeJS.ErrnoException));
    }
    return parseSubnetEnv(text, path);
  } catch (e) {
    throw new CniError(
      CniCode.Generic,
      `failed to load flannel 'subnet.env' file: ${(e as Error).message}. Check the flannel pod log for this node.`,
    );
  }
}
