// The lab as its tests see it: `flannelctl lab …` from dist/, the files it writes under /run/flannel-lab, the
// leases in its etcd, and what `lab down` must leave behind (nothing). The lab owns the global flab-* namespaces.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { netnsList, netnsPids } from '../../src/lab/exec.ts';
import { ipJson, isRoot, processGone } from './netns.ts';

export { processGone };

const CTL = join(import.meta.dirname, '../../dist/flannelctl.cjs');
const STATE_DIR = '/run/flannel-lab';

export const labSkip = !isRoot || !existsSync(CTL) ? 'needs root and `npm run build`' : false;

export const LAB_HOSTS = ['flab-h1', 'flab-h2', 'flab-h3'];
export const LAB_UNDERLAY: Record<string, string> = {
  'flab-h1': '192.168.100.11',
  'flab-h2': '192.168.100.12',
  'flab-h3': '192.168.100.13',
};
/** A lab host's IPv6 underlay address (dual stack and IPv6-only labs): fd00:100::<last v4 octet>. */
export const labUnderlayV6 = (h: string) => `fd00:100::${LAB_UNDERLAY[h]!.split('.')[3]}`;

/** The user chains of a netfilter table in a lab host (`-N` lines of `iptables -S`). */
export function iptablesChains(ns: string, bin: 'iptables' | 'ip6tables', table: string): string[] {
  const out = execFileSync('ip', ['netns', 'exec', ns, bin, '-w', '-t', table, '-S'], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l.startsWith('-N '))
    .map((l) => l.slice(3));
}

/** `flannelctl lab <args>`; its stdout. Throws when it exits non-zero. */
export function lab(args: string[]): string {
  return execFileSync(process.execPath, [CTL, 'lab', ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 240_000,
  });
}

/** `lab up <args>`, keeping the output of a failed matrix (it exits non-zero) for the test to assert on. */
export function labUpOutput(args: string[]): string {
  try {
    return lab(['up', ...args]);
  } catch (e) {
    return String((e as { stdout?: string }).stdout ?? e);
  }
}

export interface DoctorRun {
  status: number | null;
  stdout: string;
  stderr: string;
  /** --json's findings by id, in order. */
  ids: string[];
  findings: Array<{ id: string; severity: string; summary: string; evidence: string[]; fix: string }>;
  checked: string[];
}

function doctorRun(argv: string[]): DoctorRun {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 60_000 });
  let d = { findings: [] as DoctorRun['findings'], checked: [] as string[] };
  try {
    d = JSON.parse(r.stdout);
  } catch {
    /* asserted by the caller through ids/status */
  }
  return {
    status: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    ids: d.findings.map((f) => f.id),
    findings: d.findings,
    checked: d.checked,
  };
}

/** `flannelctl lab doctor <host> --json [args]`: with the lab's etcd or API server and the host's health server. */
export function labDoctor(host: string, args: string[] = []): DoctorRun {
  return doctorRun([process.execPath, CTL, 'lab', 'doctor', host, '--json', ...args]);
}

/** `flannelctl doctor --json <args>` run inside a lab host's namespace directly (e.g. without --health-url). */
export function doctorIn(ns: string, args: string[]): DoctorRun {
  return doctorRun(['ip', 'netns', 'exec', ns, process.execPath, CTL, 'doctor', '--json', ...args]);
}

/** Every host's `lab doctor --probe` finds nothing and exits 0. */
export function assertDoctorHealthy(hosts: readonly string[]): void {
  for (const h of hosts) {
    const d = labDoctor(h, ['--probe']);
    assert.deepEqual(d.findings, [], `${h}: ${d.stdout}${d.stderr}`);
    assert.equal(d.status, 0, d.stderr);
    assert.ok(d.checked.includes('overlay-unreachable') && d.checked.includes('forward-blocked'), d.stdout);
  }
}

export interface TraceRun {
  status: number | null;
  stdout: string;
  stderr: string;
  hops: Array<{ where: string; what: string; entry: string; ok: boolean; count?: number }>;
  stoppedAt?: string;
  reason?: string;
  id?: string;
  fix?: string;
  probe?: { sent: number; received: number; stoppedAt?: string; droppedBy?: string[] };
}

/** `flannelctl lab trace <src> <dst> --json [args]`, its output parsed. */
export function labTrace(src: string, dst: string, args: string[] = []): TraceRun {
  const r = spawnSync(process.execPath, [CTL, 'lab', 'trace', src, dst, '--json', ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  let t: Partial<TraceRun> = { hops: [] };
  try {
    t = JSON.parse(r.stdout);
  } catch {
    /* asserted by the caller through status/hops */
  }
  return { ...t, hops: t.hops ?? [], status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Every hop ok, in order, exit 0; with --probe every counted hop saw every echo and all were answered. */
export function assertTraceHealthy(
  src: string,
  dst: string,
  whats: RegExp[],
  probe = true,
  args: string[] = [],
): TraceRun {
  const t = labTrace(src, dst, [...(probe ? ['--probe'] : []), ...args]);
  assert.equal(t.status, 0, t.stdout + t.stderr);
  assert.equal(t.stoppedAt, undefined, t.stdout);
  assert.equal(t.hops.length, whats.length, t.hops.map((h) => h.what).join(' | '));
  t.hops.forEach((h, i) => {
    assert.ok(h.ok, `${h.where}: ${h.what}: ${h.entry}`);
    assert.match(h.what, whats[i]!);
  });
  if (probe) {
    assert.deepEqual([t.probe?.sent, t.probe?.received], [3, 3], t.stdout);
    for (const h of t.hops.filter((x) => x.count !== undefined))
      assert.ok(h.count! >= 3, `${h.where}: ${h.what} counted ${h.count}`);
    assert.ok(t.hops.filter((x) => x.count !== undefined).length >= 3, t.stdout);
  }
  return t;
}

/** The hops of a pod → pod trace across two nodes, per backend (what trace calls each). */
export const TRACE_HOPS: Record<'vxlan' | 'host-gw' | 'udp', RegExp[]> = {
  vxlan: [
    /^source pod/,
    /^route lookup$/,
    /^netfilter FORWARD/,
    /^vxlan encapsulation$/,
    /^neighbour for the next hop/,
    /^FDB entry/,
    /^underlay route/,
    /^node of lease/,
    /^netfilter INPUT for UDP 8472/,
    /^decapsulation$/,
    /^netfilter FORWARD/,
    /^route to cni0$/,
    /^bridge port/,
  ],
  'host-gw': [
    /^source pod/,
    /^route lookup$/,
    /^netfilter FORWARD/,
    /^next hop/,
    /^underlay route/,
    /^node of lease/,
    /^arrival$/,
    /^netfilter FORWARD/,
    /^route to cni0$/,
    /^bridge port/,
  ],
  udp: [
    /^source pod/,
    /^route lookup$/,
    /^netfilter FORWARD/,
    /^udp encapsulation/,
    /^underlay route/,
    /^node of lease/,
    /^netfilter INPUT for UDP 8285/,
    /^udp decapsulation/,
    /^netfilter FORWARD/,
    /^route to cni0$/,
    /^bridge port/,
  ],
};

/** No probe table is left in any lab host. */
export function assertNoProbeTables(hosts: readonly string[]): void {
  for (const h of hosts) {
    const out = execFileSync('ip', ['netns', 'exec', h, 'nft', 'list', 'tables'], { encoding: 'utf8' });
    assert.doesNotMatch(out, /flannel-trace/, `${h}: ${out}`);
  }
}

/** A rule spec (after the chain) rejecting vxlan's UDP the way firewalld does ("admin prohibited"). */
export const FIREWALLD_REJECT_VXLAN = '-p udp -m udp --dport 8472 -j REJECT --reject-with icmp-host-prohibited'.split(
  ' ',
);

/** Runs `f` with the host's flanneld (the host namespace's one process) stopped by SIGSTOP, resuming it after. */
export function withFlanneldPaused(ns: string, f: () => void): void {
  const pids = netnsPids(ns);
  assert.equal(pids.length, 1, `one process (flanneld) in ${ns}: ${pids.join(' ')}`);
  process.kill(pids[0]!, 'SIGSTOP');
  try {
    f();
  } finally {
    process.kill(pids[0]!, 'SIGCONT');
  }
}

/** For `after`: takes the lab down; a failure here is left to the test that checks `lab down` itself. */
export function labDownQuietly(): void {
  try {
    lab(['down']);
  } catch {
    /* checked by the tests */
  }
}

/** The subnet.env path of `host` ('flab-h1' or 'h1'). */
export function subnetEnvFile(host: string): string {
  return `${STATE_DIR}/${host.replace('flab-', '')}/subnet.env`;
}

export function subnetEnv(host: string): Record<string, string> {
  const text = readFileSync(subnetEnvFile(host), 'utf8');
  return Object.fromEntries(
    text
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

/** The VtepMAC: the address of flannel.1 in host namespace `ns`. */
export function vtepMac(ns: string): string {
  return (ipJson(ns, ['link', 'show', 'flannel.1']) as Array<{ address: string }>)[0]!.address;
}

export function etcdctl(args: string[]): string {
  return execFileSync(
    'ip',
    ['netns', 'exec', 'flab-etcd', 'etcdctl', '--endpoints=http://192.168.100.2:2379', ...args],
    { encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' } },
  );
}

/** The subnet keys in the lab's etcd: value and etcd lease ID ('0' for none). */
export function etcdLeases(): Record<string, { value: string; lease: string }> {
  const out = etcdctl(['get', '--prefix', '/coreos.com/network/subnets/', '-w', 'json']);
  // Lease IDs are int64: keep them as strings, JSON numbers would lose precision.
  const kvs = (JSON.parse(out.replace(/"lease":(\d+)/g, '"lease":"$1"')).kvs ?? []) as {
    key: string;
    value: string;
    lease?: string;
  }[];
  return Object.fromEntries(
    kvs.map((kv) => [
      Buffer.from(kv.key, 'base64').toString(),
      { value: Buffer.from(kv.value, 'base64').toString(), lease: kv.lease ?? '0' },
    ]),
  );
}

/** The subnet keys in the lab's etcd and their values. */
export function etcdValues(): Record<string, string> {
  return Object.fromEntries(Object.entries(etcdLeases()).map(([key, { value }]) => [key, value]));
}

export function assertNoLabNamespaces(): void {
  assert.doesNotMatch(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }), /flab-/);
}

/** The pids running in the lab's namespaces now: what `lab down` must stop (taken before it runs). */
export function labPids(): number[] {
  return netnsList()
    .filter((n) => n.startsWith('flab-'))
    .flatMap(netnsPids);
}

/**
 * After `lab down`: no flab-* namespace, no state directory and none of `pids` (the lab's own processes, from
 * labPids() before the down) left running. Other flanneld or etcd processes on the machine are not the lab's.
 */
export function assertLabGone(opts: { pids?: number[] } = {}): void {
  assertNoLabNamespaces();
  assert.equal(existsSync(STATE_DIR), false);
  const left = (opts.pids ?? []).filter((pid) => !processGone(pid));
  assert.deepEqual(left, [], 'lab processes still running after lab down');
}

export interface LabBackendSuite {
  backend: string;
  /** FLANNEL_MTU every host's subnet.env holds. */
  mtu: number;
  /** The exact lease JSON a host with this underlay address publishes, and how the test title says it. */
  leaseValue: (underlayIP: string) => string;
  leaseText: string;
}

/**
 * `lab up --hosts 3 --pods-per-host 2 --backend <b>`, the checks every backend shares (full ping matrix, the leases in
 * etcd, subnet.env's MTU), then the backend's own tests (`own`), then `lab down` leaving nothing behind.
 */
export function describeLabBackend(o: LabBackendSuite, own: () => void): void {
  describe(`lab: 3 hosts × 2 pods over ${o.backend}`, { skip: labSkip }, () => {
    let upOutput = '';
    before(() => {
      upOutput = labUpOutput(['--hosts', '3', '--pods-per-host', '2', '--backend', o.backend]);
    });
    after(labDownQuietly);

    it('ends with a full ping matrix at 0 % loss', () => {
      assert.match(upOutput, /All 42 pairs at 0 % loss\./, upOutput);
    });

    it(`publishes ${o.backend} leases ${o.leaseText} and writes MTU ${o.mtu} to subnet.env`, () => {
      const leases = etcdValues();
      assert.equal(Object.keys(leases).length, 3);
      for (const h of LAB_HOSTS) {
        const env = subnetEnv(h);
        assert.equal(env.FLANNEL_MTU, String(o.mtu));
        const key = `/coreos.com/network/subnets/${env.FLANNEL_SUBNET!.replace('.1/24', '.0-24')}`;
        assert.equal(leases[key], o.leaseValue(LAB_UNDERLAY[h]!));
      }
    });

    own();

    it('lab down leaves no namespace or file behind', () => {
      lab(['down']);
      assertLabGone();
    });
  });
}
