// udp: flannel0 (the TUN device the userspace forwarder reads) with its MTU, and the one route that sends all of
// Network into it; the peers themselves live in flanneld's memory (GET /peers shows them).
import { UDP_OVERHEAD } from '../../backend/udp/options.ts';
import type { Check, Finding } from '../findings.ts';
import { ownInterface } from './underlay.ts';

const TUN = 'flannel0';

export const udpDeviceCheck: Check = {
  ids: ['vtep-mismatch', 'mtu-mismatch', 'peer-unprogrammed'],
  run(s) {
    const env = s.subnetEnv.env;
    const network = env?.networks[0];
    if (s.backend?.type !== 'udp' || !env?.subnet || !network) return [];
    const dev = s.links.find((l) => l.name === TUN);
    if (!dev) {
      return [
        {
          id: 'vtep-mismatch',
          severity: 'error',
          summary: `${TUN} is missing: no pod traffic leaves this node`,
          evidence: [`no link ${TUN}`],
          fix: 'restart flanneld on this node (it creates the device)',
        },
      ];
    }
    const out: Finding[] = [];
    const ext = ownInterface(s, 4)?.link;
    if (ext && dev.mtu > ext.mtu - UDP_OVERHEAD) {
      out.push({
        id: 'mtu-mismatch',
        severity: 'error',
        summary: `${TUN}'s MTU ${dev.mtu} leaves no room for the ${UDP_OVERHEAD}-byte UDP header on ${ext.name} (MTU ${ext.mtu})`,
        evidence: [`${TUN} mtu ${dev.mtu}`, `${ext.name} mtu ${ext.mtu}`],
        fix: `ip link set ${TUN} mtu ${ext.mtu - UDP_OVERHEAD} (flanneld sets it so at start)`,
      });
    }
    const routed = s.routes.some((r) => r.dst === network.toString() && r.oif === dev.index && r.type === 'unicast');
    if (!routed) {
      out.push({
        id: 'peer-unprogrammed',
        severity: 'error',
        summary: `no route sends ${network} into ${TUN}: pods on other nodes are unreachable`,
        evidence: [`missing: route ${network} dev ${TUN}`],
        fix: `restart flanneld, or: ip route replace ${network} dev ${TUN}`,
      });
    }
    return out;
  },
};
