// `flannelctl lab trace` on a real vxlan lab (3 hosts × 2 pods, etcd): every hop of a healthy path, across hosts and
// on one host, with --probe counting the echoes through; then one breakage at a time, made on a real host, stops
// the walk at the right hop with the right reason, and the probe's nft trace names the rule that dropped it.
// Nothing the probe adds is left behind.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { nsRun } from '../helpers/netns.ts';
import { until } from '../helpers/wait.ts';
import {
  assertNoProbeTables,
  assertTraceHealthy,
  lab,
  LAB_HOSTS,
  LAB_UNDERLAY as underlay,
  labDownQuietly,
  labSkip,
  labTrace,
  subnetEnv,
  TRACE_HOPS,
  vtepMac,
  withFlanneldPaused,
  FIREWALLD_REJECT_VXLAN,
} from '../helpers/lab.ts';

const [H1, H2] = ['flab-h1', 'flab-h2'];
const CTL = join(import.meta.dirname, '../../dist/flannelctl.cjs');

function podIP(pod: string): string {
  return (JSON.parse(readFileSync('/run/flannel-lab/state.json', 'utf8')) as { pods: Record<string, string> }).pods[
    pod
  ]!;
}

const netOf = (ns: string) => subnetEnv(ns).FLANNEL_SUBNET!.replace('.1/24', '.0');

describe('lab trace on a real vxlan lab', { skip: labSkip }, () => {
  before(() => {
    lab(['up', '--hosts', '3', '--pods-per-host', '2']);
  });
  after(labDownQuietly);

  it('walks every hop of pod → pod on another host, and counts the probe through each', () => {
    const t = assertTraceHealthy('h1-p1', 'h2-p1', TRACE_HOPS.vxlan);
    assert.match(
      t.hops[1]!.entry,
      new RegExp(
        `^ip route get ${podIP('flab-h2-p1').replace(/\./g, '\\.')} from .* iif cni0: unicast via ${netOf(H2).replace(/\./g, '\\.')} dev flannel\\.1$`,
      ),
    );
    assert.equal(t.hops[5]!.entry, `fdb ${vtepMac(H2)} dev flannel.1 dst ${underlay[H2]} permanent`);
    assert.match(t.hops[12]!.entry, /^neighbour .* dev cni0; fdb .* dev veth\w+ master cni0$/);
    assertNoProbeTables(LAB_HOSTS);
  });

  it('walks pod → pod on the same host', () => {
    assertTraceHealthy(
      'h1-p1',
      'h1-p2',
      [/^source pod/, /^route lookup$/, /^netfilter FORWARD/, /^bridge port/],
      false,
    );
  });

  it('stops at the FDB entry, then at the neighbour, when they are deleted', () => {
    const mac = vtepMac(H2);
    withFlanneldPaused(H1, () => {
      nsRun(H1, 'bridge', ['fdb', 'del', mac, 'dev', 'flannel.1', 'dst', underlay[H2]!]);
      const t = labTrace('h1-p1', 'h2-p1');
      assert.equal(t.status, 1);
      assert.equal(t.stoppedAt, `flab-h1 flannel.1: FDB entry for ${mac}`);
      assert.equal(t.id, 'peer-unprogrammed');
      assert.equal(
        t.fix,
        `bridge fdb append ${mac} dev flannel.1 dst ${underlay[H2]} (flanneld restores it within 10 s while it runs)`,
      );
      nsRun(H1, 'ip', ['neigh', 'del', netOf(H2), 'dev', 'flannel.1']);
      const n = labTrace('h1-p1', 'h2-p1');
      assert.equal(n.stoppedAt, `flab-h1 flannel.1: neighbour for the next hop ${netOf(H2)}`, n.stdout);
      assert.match(
        n.fix!,
        new RegExp(`^ip neigh replace ${netOf(H2).replace(/\./g, '\\.')} lladdr ${mac} dev flannel\\.1 nud permanent`),
      );
    });
  });

  it("stops at the receiver's FORWARD, and the probe's nft trace names the rule", async () => {
    await until('h1 repaired its entries', () => labTrace('h1-p1', 'h2-p1').status === 0, 15_000, 500);
    nsRun(H2, 'iptables', ['-w', '-I', 'FORWARD', '1', '-j', 'DROP']);
    try {
      const t = labTrace('h1-p1', 'h2-p1', ['--probe']);
      assert.equal(t.status, 1);
      assert.equal(t.stoppedAt, 'flab-h2: netfilter FORWARD (in flannel.1, out cni0)');
      assert.equal(t.id, 'forward-blocked');
      assert.equal(t.hops.at(-1)!.entry, 'iptables -t filter FORWARD rule 1: -A FORWARD -j DROP');
      assert.equal(t.probe?.received, 0);
      assert.ok(
        t.probe?.droppedBy?.some((d) => d.startsWith('flab-h2: ip filter FORWARD') && d.endsWith('(verdict drop)')),
        JSON.stringify(t.probe),
      );
      assert.ok(
        t.hops.find((h) => h.what === 'decapsulation')!.count! >= 3,
        'the echoes reached h2 and were decapsulated',
      );
    } finally {
      nsRun(H2, 'iptables', ['-w', '-D', 'FORWARD', '1']);
    }
    assertNoProbeTables(LAB_HOSTS);
  });

  it('removes the probe table when interrupted (Ctrl-C) in the middle of the probe', async () => {
    nsRun(H2, 'iptables', ['-w', '-I', 'FORWARD', '1', '-j', 'DROP']); // no echo answers: the probe takes its full time
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        H1,
        process.execPath,
        CTL,
        'trace',
        podIP('flab-h1-p1'),
        podIP('flab-h2-p1'),
        '--probe',
        '--etcd-endpoints=http://192.168.100.2:2379',
        '--subnet-file=/run/flannel-lab/h1/subnet.env',
        '--probe-netns=flab-h1-p1',
      ],
      { stdio: 'ignore' },
    );
    try {
      await until(
        'the probe table in h1',
        () => nsRun(H1, 'nft', ['list', 'tables']).includes('flannel-trace'),
        10_000,
        20,
      );
      process.kill(child.pid!, 'SIGINT'); // ip netns exec execs the command: the pid is flannelctl's
      const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
      assert.equal(code, 130);
    } finally {
      child.kill('SIGKILL');
      nsRun(H2, 'iptables', ['-w', '-D', 'FORWARD', '1']);
    }
    assertNoProbeTables(LAB_HOSTS);
  });

  it("stops at the receiver's INPUT when the overlay port is rejected, and the probe counts nothing past it", () => {
    const rule = ['INPUT', ...FIREWALLD_REJECT_VXLAN];
    nsRun(H2, 'iptables', ['-w', '-I', ...rule]);
    try {
      const t = labTrace('h1-p1', 'h2-p1', ['--probe']);
      assert.equal(t.stoppedAt, 'flab-h2: netfilter INPUT for UDP 8472 (the overlay)', t.stdout);
      assert.equal(t.id, 'overlay-port-blocked');
      assert.equal(t.hops.at(-1)!.count, 0, 'no echo passed INPUT');
      assert.ok(
        t.hops.find((h) => h.what.startsWith('node of lease'))!.count! >= 3,
        'the encapsulated echoes reached h2',
      );
      assert.ok(
        t.probe?.droppedBy?.some((d) => d.startsWith('flab-h2: ip filter INPUT') && /verdict (drop|reject)/.test(d)),
        JSON.stringify(t.probe),
      );
    } finally {
      nsRun(H2, 'iptables', ['-w', '-D', ...rule]);
    }
  });

  it("stops at the peer's route to cni0 when it is gone", () => {
    const net = `${netOf(H2)}/24`;
    const gw = subnetEnv(H2).FLANNEL_SUBNET!.replace('/24', '');
    nsRun(H2, 'ip', ['route', 'del', net, 'dev', 'cni0']);
    try {
      const t = labTrace('h1-p1', 'h2-p1');
      assert.equal(t.stoppedAt, 'flab-h2: route to cni0', t.stdout);
      assert.match(t.fix!, new RegExp(`ip addr replace ${gw.replace(/\./g, '\\.')}/24 dev cni0`));
    } finally {
      nsRun(H2, 'ip', ['route', 'add', net, 'dev', 'cni0', 'proto', 'kernel', 'scope', 'link', 'src', gw]);
    }
    assert.equal(labTrace('h1-p1', 'h2-p1').status, 0);
  });

  it('stops at once for a pod IP that no lease holds', () => {
    const t = labTrace('h1-p1', '10.244.254.7');
    assert.equal(t.status, 1);
    assert.equal(t.stoppedAt, 'flab-h1: the node holding 10.244.254.7');
    assert.match(t.reason!, /no node's lease holds 10\.244\.254\.7/);
  });

  it('refuses a src that is not a pod of the host it runs on, and leaves no probe table behind', () => {
    const r = labTrace('10.244.254.7', 'h1-p1');
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /is no lab pod's address/);
    assertNoProbeTables(LAB_HOSTS);
  });
});
