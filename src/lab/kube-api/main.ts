// dist/lab-kube-api.cjs: the lab's fake Kubernetes API server as its own program (`lab up --kube` starts it in the
// lab's control-plane namespace), so that the executables users install (flannelctl, the CNI plugin) do not carry it.
import { parseArgs } from 'node:util';
import { runKubeApiServer } from './run.ts';

const USAGE = 'usage: lab-kube-api.cjs --listen HOST:PORT --token TOKEN --nodes NAME=CIDR[+CIDR],… [--ready-file FILE]';

async function main(): Promise<number> {
  let v;
  try {
    v = parseArgs({
      options: {
        listen: { type: 'string', default: '127.0.0.1:6443' },
        token: { type: 'string' },
        nodes: { type: 'string' },
        'ready-file': { type: 'string' },
      },
    }).values;
  } catch (e) {
    process.stderr.write(`lab-kube-api: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (!v.token || !v.nodes) {
    process.stderr.write(`lab-kube-api: --token and --nodes are required\n${USAGE}\n`);
    return 2;
  }
  await runKubeApiServer({
    listen: v.listen!,
    token: v.token,
    nodes: v.nodes.split(',').filter(Boolean),
    readyFile: v['ready-file'],
  });
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`lab-kube-api: ${(e as Error).message}\n`);
    process.exit(1);
  },
);
