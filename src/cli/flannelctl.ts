// flannelctl: the operator tool. `lab` runs a local multi-host cluster in network namespaces; `install` copies a file
// into place atomically (the DaemonSet's init containers); `peers` shows flanneld's per-peer status. The commands are
// in commands.ts, their handlers in run.ts.
import { runCli } from './run.ts';

runCli(process.argv.slice(2)).then((code) => process.exit(code));
