// flannelctl's command line: `--help` everywhere (stdout, exit 0), bad usage named on stderr with exit 2, and the
// invocations the Makefile, the manifests and the integration tests use parsed as before. No command runs here: the
// handlers are fakes, so nothing needs root.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { commandNames, type Invocation } from '../../src/cli/command-line.ts';
import { FLANNELCTL } from '../../src/cli/commands.ts';
import { HANDLERS, runCli } from '../../src/cli/run.ts';

const FLANNELCTL_TS = join(import.meta.dirname, '../../src/cli/flannelctl.ts');

/** runCli with handlers that only record what they were given. */
async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string; ran: Invocation[] }> {
  let stdout = '';
  let stderr = '';
  const ran: Invocation[] = [];
  const fake = Object.fromEntries(
    Object.keys(HANDLERS).map((name) => [name, async (inv: Invocation) => (ran.push(inv), 0)]),
  );
  const code = await runCli(argv, { out: (t) => (stdout += t), err: (t) => (stderr += t) }, fake);
  return { code, stdout, stderr, ran };
}

// Every command and group, and the options its usage must name.
const COMMANDS: Array<[string, string[]]> = [
  ['', []],
  ['lab', []],
  [
    'lab up',
    ['--hosts N', '--pods-per-host M', '--backend vxlan|host-gw|udp', '--kube', '--nftables', '--dual-stack', '--ipv6'],
  ],
  ['lab status', []],
  ['lab restart', ['<host>']],
  ['lab peers', ['<host>']],
  ['lab down', []],
  ['install', ['--mode MODE', '<source>', '<destination>']],
  ['peers', ['--url URL']],
];

describe('flannelctl --help', () => {
  for (const [command, names] of COMMANDS) {
    const words = command ? command.split(' ') : [];
    for (const ask of [
      [...words, '--help'],
      [...words, '-h'],
      ['help', ...words],
    ]) {
      it(`flannelctl ${ask.join(' ')}: usage on stdout, exit 0`, async () => {
        const r = await cli(ask);
        assert.equal(r.code, 0);
        assert.equal(r.stderr, '');
        assert.deepEqual(r.ran, []);
        const synopsis = `Usage: ${['flannelctl', ...words].join(' ')}`;
        const first = r.stdout.split('\n')[0]!;
        assert.ok(first === synopsis || first.startsWith(`${synopsis} `), r.stdout);
        for (const n of names) assert.ok(r.stdout.includes(n), `${n} missing from\n${r.stdout}`);
        // A group's usage lists its commands; a command's lists its options, --help among them.
        if (command === '' || command === 'lab') assert.match(r.stdout, /\nCommands:\n/);
        else assert.match(r.stdout, /\nOptions:\n(.*\n)* {2}-h, --help +print this help and exit\n$/);
      });
    }
  }

  it('the top-level usage lists every command, with its summary', async () => {
    const r = await cli(['--help']);
    for (const line of [
      'lab up ',
      'lab status ',
      'lab restart <host> ',
      'lab peers <host> ',
      'lab down ',
      'install <source> <destination> ',
      'peers ',
    ]) {
      assert.match(r.stdout, new RegExp(`^  ${line.replace(/[<>]/g, '.')}`, 'm'), line);
    }
    assert.match(r.stdout, /^ {2}lab up +start etcd \(or a fake Kubernetes API\)/m);
    assert.doesNotMatch(r.stdout, /kube-api-server/);
    // The same text for every way of asking.
    assert.equal((await cli(['help'])).stdout, r.stdout);
    assert.equal((await cli(['-h'])).stdout, r.stdout);
  });

  it('lab up --help shows each option with its default and a synopsis of them all', async () => {
    const { stdout } = await cli(['lab', 'up', '--help']);
    assert.match(stdout, /^ {2}--hosts N +number of hosts \(default 3\)$/m);
    assert.match(stdout, /^ {2}--pods-per-host M +pods on each host \(default 2\)$/m);
    assert.match(stdout, /^ {2}--backend vxlan\|host-gw\|udp +flanneld's backend \(default vxlan\)$/m);
    assert.match(
      stdout,
      /^Usage: flannelctl lab up \[--hosts N\] \[--pods-per-host M\] \[--backend vxlan\|host-gw\|udp\] \[--kube\]\n +\[--nftables\] \[--dual-stack\] \[--ipv6\]\n/,
    );
  });

  it('--help wins over the other words of the command', async () => {
    const r = await cli(['lab', 'up', '--hosts', '3', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: flannelctl lab up /);
    assert.equal((await cli(['install', '-h', 'only-one'])).code, 0);
  });

  it('every command of the table has a handler, and every handler a command', () => {
    assert.deepEqual(Object.keys(HANDLERS).sort(), commandNames(FLANNELCTL).sort());
  });

  it('the process writes the usage to stdout and exits 0 (no root needed)', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', FLANNELCTL_TS, 'lab', '--help'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /^Usage: flannelctl lab <command>\n/);
  });
});

describe('flannelctl bad usage', () => {
  const cases: Array<[string[], string, string]> = [
    [[], 'missing command; choose one of lab, install, doctor, trace, peers', 'flannelctl'],
    [['nope'], 'unknown command nope; choose one of lab, install, doctor, trace, peers', 'flannelctl'],
    [['--bogus'], 'unknown option --bogus; give a command first (lab, install, doctor, trace, peers)', 'flannelctl'],
    [['lab'], 'lab: missing command; choose one of up, status, restart, peers, doctor, trace, down', 'flannelctl lab'],
    [
      ['lab', 'nope'],
      'lab: unknown command nope; choose one of up, status, restart, peers, doctor, trace, down',
      'flannelctl lab',
    ],
    [['lab', 'up', '--bogus'], 'lab up: unknown option --bogus', 'flannelctl lab up'],
    [['lab', 'up', '--hosts'], 'lab up: --hosts needs a value', 'flannelctl lab up'],
    [['lab', 'up', '--hosts', '--kube'], 'lab up: --hosts needs a value', 'flannelctl lab up'],
    [['lab', 'up', '--hosts', 'three'], 'lab up: --hosts three: expected a whole number', 'flannelctl lab up'],
    [
      ['lab', 'up', '--backend=vxlan6'],
      'lab up: --backend vxlan6: choose one of vxlan, host-gw, udp',
      'flannelctl lab up',
    ],
    [['lab', 'up', '--kube=yes'], 'lab up: --kube takes no value (got --kube=yes)', 'flannelctl lab up'],
    [['lab', 'up', 'extra'], 'lab up: unexpected argument extra', 'flannelctl lab up'],
    [
      ['lab', 'up', '--dual-stack', '--ipv6'],
      'lab up: --dual-stack and --ipv6 exclude each other: --dual-stack runs IPv4 and IPv6 pod networks, --ipv6 only IPv6',
      'flannelctl lab up',
    ],
    [
      ['lab', 'up', '--ipv6', '--backend', 'udp'],
      'lab up: --backend udp carries IPv4 only; use --backend vxlan or host-gw with --ipv6',
      'flannelctl lab up',
    ],
    [
      ['lab', 'up', '--dual-stack', '--backend', 'udp'],
      'lab up: --backend udp carries IPv4 only; use --backend vxlan or host-gw with --dual-stack',
      'flannelctl lab up',
    ],
    [['lab', 'restart'], 'lab restart: missing <host>', 'flannelctl lab restart'],
    [['lab', 'peers', 'h1', 'h2'], 'lab peers: unexpected argument h2', 'flannelctl lab peers'],
    [['lab', 'down', '--force'], 'lab down: unknown option --force', 'flannelctl lab down'],
    [['lab', 'status', '-v'], 'lab status: unknown option -v', 'flannelctl lab status'],
    [['install', 'a'], 'install: missing <destination>', 'flannelctl install'],
    [
      ['install', '--mode=999', 'a', 'b'],
      'install: --mode 999: not an octal permission like 0755 or 0644',
      'flannelctl install',
    ],
    [['peers', 'h1'], 'peers: unexpected argument h1', 'flannelctl peers'],
    [['peers', '--uri', 'http://x'], 'peers: unknown option --uri', 'flannelctl peers'],
    [
      ['help', 'lab', 'sideways'],
      'lab: unknown command sideways; choose one of up, status, restart, peers, doctor, trace, down',
      'flannelctl lab',
    ],
  ];
  for (const [argv, message, usageOf] of cases) {
    it(`flannelctl ${argv.join(' ')}: exit 2, "${message}" and the usage of ${usageOf} on stderr`, async () => {
      const r = await cli(argv);
      assert.equal(r.code, 2);
      assert.equal(r.stdout, '');
      assert.deepEqual(r.ran, []);
      const help = await cli(['help', ...usageOf.split(' ').slice(1)]);
      assert.equal(r.stderr, `flannelctl: ${message}\n${help.stdout}`);
    });
  }

  it('a command that fails exits 1 with its message and no usage', async () => {
    let stderr = '';
    const code = await runCli(
      ['lab', 'down'],
      { out: () => {}, err: (t) => (stderr += t) },
      {
        'lab down': async () => {
          throw new Error('no lab host "h9"');
        },
      },
    );
    assert.equal(code, 1);
    assert.equal(stderr, 'flannelctl: no lab host "h9"\n');
  });
});

describe('flannelctl invocations in use', () => {
  const parsed = async (argv: string[]) => {
    const r = await cli(argv);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.ran.length, 1);
    const { command, strings, flags, args } = r.ran[0]!;
    return { command, strings, flags, args };
  };
  const upFlags = { kube: false, nftables: false, 'dual-stack': false, ipv6: false };

  it('lab up with every option, in both value forms', async () => {
    assert.deepEqual(
      await parsed([
        'lab',
        'up',
        '--hosts',
        '3',
        '--pods-per-host',
        '2',
        '--backend',
        'vxlan',
        '--kube',
        '--nftables',
        '--ipv6',
      ]),
      {
        command: 'lab up',
        strings: { hosts: '3', 'pods-per-host': '2', backend: 'vxlan' },
        flags: { ...upFlags, kube: true, nftables: true, ipv6: true },
        args: [],
      },
    );
    assert.deepEqual(
      await parsed(['lab', 'up', '--hosts=4', '--pods-per-host=3', '--backend=host-gw', '--dual-stack']),
      {
        command: 'lab up',
        strings: { hosts: '4', 'pods-per-host': '3', backend: 'host-gw' },
        flags: { ...upFlags, 'dual-stack': true },
        args: [],
      },
    );
  });

  it('lab up defaults: 3 hosts, 2 pods each, vxlan', async () => {
    assert.deepEqual((await parsed(['lab', 'up'])).strings, { hosts: '3', 'pods-per-host': '2', backend: 'vxlan' });
    assert.deepEqual((await parsed(['lab', 'up', '--backend', 'udp'])).strings.backend, 'udp');
  });

  it('lab status, restart, peers, down', async () => {
    assert.equal((await parsed(['lab', 'status'])).command, 'lab status');
    assert.deepEqual((await parsed(['lab', 'restart', 'h2'])).args, ['h2']);
    assert.deepEqual(await parsed(['lab', 'peers', 'flab-h2']), {
      command: 'lab peers',
      strings: {},
      flags: {},
      args: ['flab-h2'],
    });
    assert.equal((await parsed(['lab', 'down'])).command, 'lab down');
  });

  it('has no fake API server: the lab starts dist/lab-kube-api.cjs, not a flannelctl command', async () => {
    assert.equal((await cli(['lab', 'kube-api-server'])).code, 2);
    const { readFileSync } = await import('node:fs');
    const importsOf = (file: string) => [...readFileSync(file, 'utf8').matchAll(/from '([^']+)'/g)].map((m) => m[1]!);
    for (const f of [
      '../../src/cli/run.ts',
      '../../src/cli/commands.ts',
      '../../src/lab/lab.ts',
      '../../src/lab/kube-lab.ts',
    ]) {
      assert.ok(
        !importsOf(join(import.meta.dirname, f)).some((i) => i.includes('kube-api/')),
        `${f} imports the fake API server`,
      );
    }
  });

  it('install as the DaemonSet runs it, options before or between the arguments', async () => {
    assert.deepEqual(
      await parsed(['install', '--mode=0755', '/opt/flannel-ts/dist/flannel.cjs', '/opt/cni/bin/flannel']),
      {
        command: 'install',
        strings: { mode: '0755' },
        flags: {},
        args: ['/opt/flannel-ts/dist/flannel.cjs', '/opt/cni/bin/flannel'],
      },
    );
    assert.deepEqual((await parsed(['install', 'a', '--mode', '600', 'b'])).strings, { mode: '600' });
    assert.deepEqual((await parsed(['install', 'a', 'b'])).strings, { mode: '0644' });
    // `--` ends the options: a file name may then start with a dash.
    assert.deepEqual((await parsed(['install', '--', '-odd', 'b'])).args, ['-odd', 'b']);
  });

  it('peers with --url in both forms, and its default', async () => {
    assert.deepEqual((await parsed(['peers', '--url', 'http://127.0.0.1:9000'])).strings, {
      url: 'http://127.0.0.1:9000',
    });
    assert.deepEqual((await parsed(['peers', '--url=10.0.0.1:8081'])).strings, { url: '10.0.0.1:8081' });
    assert.deepEqual((await parsed(['peers'])).strings, { url: 'http://127.0.0.1:8081' });
  });
});

describe('lab backends', () => {
  it("are flanneld's backend registry, in its order", async () => {
    const { LAB_BACKENDS } = await import('../../src/cli/commands.ts');
    const { backendTypes } = await import('../../src/backend/registry.ts');
    assert.deepEqual([...LAB_BACKENDS], [...backendTypes]);
  });
});
