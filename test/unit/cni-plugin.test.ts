// The plugin's dispatcher in-process: every CNI command, error code and delegate handshake (test/helpers/cni-dispatch-cases.ts).
import { runPlugin } from '../../src/cni/plugin.ts';
import { describePluginDispatch, type Outcome } from '../helpers/cni-dispatch-cases.ts';

/** Runs the dispatcher in-process; `stdin` null means reading it is a test failure. */
function invoke(env: Record<string, string>, stdin: string | object | null = ''): Outcome {
  let stdout = '';
  let stderr = '';
  const code = runPlugin({
    env,
    readStdin: () => {
      if (stdin === null) throw new Error('stdin must not be read');
      return Buffer.from(typeof stdin === 'string' ? stdin : JSON.stringify(stdin));
    },
    stdout: (d) => (stdout += d.toString()),
    stderr: (t) => (stderr += t),
  });
  return { code, stdout, stderr };
}

describePluginDispatch('flannel CNI plugin dispatch', invoke);
