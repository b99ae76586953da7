// The host's own settings pod traffic depends on: forwarding, and bridged traffic reaching iptables.
import type { Check, Finding } from '../findings.ts';

export const forwardingCheck: Check = {
  ids: ['ip-forward-disabled', 'bridge-nf-call'],
  run(s) {
    const out: Finding[] = [];
    const env = s.subnetEnv.env;
    const knobs = [
      ...(env?.subnet ? [['net.ipv4.ip_forward', 'IPv4']] : []),
      ...(env?.ipv6Subnet ? [['net.ipv6.conf.all.forwarding', 'IPv6']] : []),
    ];
    for (const [knob, family] of knobs) {
      const v = s.sysctls[knob!];
      if (v === '1') continue;
      out.push({
        id: 'ip-forward-disabled',
        severity: 'error',
        summary: `${family} forwarding is off: this host drops every pod packet that is not its own`,
        evidence: [`${knob} = ${v ?? '(missing)'}`],
        fix: `sysctl -w ${knob}=1 (and set it in /etc/sysctl.d/ so it survives a reboot)`,
      });
    }
    // Without br_netfilter, pod-to-pod traffic on cni0 bypasses iptables (kube-proxy's service rules included).
    if (env && !s.nftables) {
      const knob = 'net.bridge.bridge-nf-call-iptables';
      const v = s.sysctls[knob];
      if (v !== '1') {
        out.push({
          id: 'bridge-nf-call',
          severity: 'warning',
          summary: 'bridged pod traffic does not pass through iptables (br_netfilter not loaded or disabled)',
          evidence: [`${knob} = ${v ?? '(missing: br_netfilter is not loaded)'}`],
          fix: `modprobe br_netfilter && sysctl -w ${knob}=1`,
        });
      }
    }
    return out;
  },
};
