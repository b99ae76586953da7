// The flannel CNI plugin's dispatch cases (CNI error codes and messages, the delegate handshake, scratch files), run
// against any way of invoking the plugin: in-process (test/unit/cni-plugin.test.ts) and as the executable users
// install (test/integration/cni-executable.test.ts), so every error path keeps its CNI error JSON in both.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the plugin once with exactly `env`; `stdin` null means the plugin must not need it. */
export type Invoke = (env: Record<string, string>, stdin?: string | object | null) => Outcome;

function errorOf(o: Outcome): { cniVersion: string; code: number; msg: string; details?: string } {
  assert.equal(o.code, 1, `exit status 1 expected, stdout: ${o.stdout}`);
  return JSON.parse(o.stdout);
}

const SUBNET_ENV =
  'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n';
const EXPECTED_DELEGATE =
  '{"cniVersion":"0.3.1","hairpinMode":true,"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.244.1.0/24"}]],"routes":[{"dst":"10.244.0.0/16"}],"type":"host-local"},"isDefaultGateway":true,"isGateway":true,"mtu":1450,"name":"cbr0","type":"bridge"}';

// A stand-in delegate: records its stdin and environment, answers with a result or (when told to) a CNI error.
const FAKE_BRIDGE = `#!/bin/sh
/bin/cat > "$FAKE_DIR/stdin.$CNI_COMMAND"
echo "$CNI_COMMAND $CNI_CONTAINERID $CNI_IFNAME $CNI_NETNS" > "$FAKE_DIR/env.$CNI_COMMAND"
if [ -e "$FAKE_DIR/fail.$CNI_COMMAND" ]; then printf '{"code":11,"msg":"delegate says try later"}'; exit 1; fi
if [ -e "$FAKE_DIR/crash" ]; then echo "segfault" >&2; exit 2; fi
[ "$CNI_COMMAND" = ADD ] && printf '{"cniVersion":"0.3.1","ips":[{"version":"4","address":"10.244.1.2/24"}]}'
exit 0
`;

/** The cases, as one suite named `name`. */
export function describePluginDispatch(name: string, invoke: Invoke): void {
  describe(name, () => {
    let dir: string;
    let env: Record<string, string>;
    let conf: Record<string, unknown>;

    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'cni-plugin-'));
      mkdirSync(join(dir, 'bin'));
      mkdirSync(join(dir, 'empty'));
      writeFileSync(join(dir, 'bin', 'bridge'), FAKE_BRIDGE);
      chmodSync(join(dir, 'bin', 'bridge'), 0o755);
      writeFileSync(join(dir, 'subnet.env'), SUBNET_ENV);
      env = {
        // Nothing on PATH: a runtime gives the plugin CNI_PATH for its delegates, and no node.
        PATH: '/nonexistent',
        FAKE_DIR: dir,
        CNI_COMMAND: 'ADD',
        CNI_CONTAINERID: 'c0ffee',
        CNI_NETNS: '/var/run/netns/pod',
        CNI_IFNAME: 'eth0',
        CNI_PATH: `${join(dir, 'empty')}:${join(dir, 'bin')}`,
      };
      conf = {
        cniVersion: '0.3.1',
        name: 'cbr0',
        type: 'flannel',
        subnetFile: join(dir, 'subnet.env'),
        dataDir: join(dir, 'data'),
        delegate: { hairpinMode: true, isDefaultGateway: true },
      };
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('prints the version JSON for VERSION without reading stdin', () => {
      const o = invoke({ CNI_COMMAND: 'VERSION' }, null);
      assert.equal(o.code, 0);
      assert.deepEqual(JSON.parse(o.stdout), {
        cniVersion: '1.1.0',
        supportedVersions: ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'],
      });
    });

    it('prints the about text to stderr when CNI_COMMAND is unset', () => {
      const o = invoke({}, null);
      assert.equal(o.code, 0);
      assert.equal(o.stdout, '');
      assert.match(
        o.stderr,
        /^CNI Plugin flannel version v\S+ \(linux\/\w+\) commit \S+\nCNI protocol versions supported: 0\.1\.0, 0\.2\.0, 0\.3\.0, 0\.3\.1, 0\.4\.0, 1\.0\.0, 1\.1\.0\n$/,
      );
    });

    it('answers 4 for missing or invalid CNI_* variables, naming them', () => {
      let e = errorOf(invoke({ CNI_COMMAND: 'ADD', CNI_IFNAME: 'eth0' }, conf));
      assert.equal(e.code, 4);
      assert.match(e.msg, /^required env variables \[CNI_CONTAINERID,CNI_NETNS,CNI_PATH\] missing/);
      assert.deepEqual(
        invoke({ ...env, CNI_COMMAND: 'DEL', CNI_NETNS: '' }, conf).code,
        0,
        'DEL does not need CNI_NETNS',
      );
      e = errorOf(invoke({ ...env, CNI_COMMAND: 'BOGUS' }, conf));
      assert.equal(e.code, 4);
      assert.match(e.msg, /unknown CNI_COMMAND: BOGUS/);
      e = errorOf(invoke({ ...env, CNI_CONTAINERID: '../../etc/passwd' }, conf));
      assert.equal(e.code, 4);
      assert.match(e.msg, /CNI_CONTAINERID "\.\.\/\.\.\/etc\/passwd" has invalid characters/);
      e = errorOf(invoke({ ...env, CNI_IFNAME: 'averyveryverylongname' }, conf));
      assert.equal(e.code, 4);
    });

    it('answers 6 for stdin that is not a JSON object and 7 for an invalid config', () => {
      let e = errorOf(invoke(env, '{"name": '));
      assert.equal(e.code, 6);
      assert.match(e.msg, /^error decoding network config from stdin: /);
      e = errorOf(invoke(env, '[1]'));
      assert.equal(e.code, 6);
      e = errorOf(invoke(env, { cniVersion: '0.3.1' }));
      assert.equal(e.code, 7);
      assert.equal(e.cniVersion, '0.3.1');
      assert.match(e.msg, /^missing network name/);
      e = errorOf(invoke(env, { ...conf, delegate: { name: 'x' } }));
      assert.deepEqual(
        [e.code, e.msg],
        [7, "'delegate' dictionary must not have 'name' field, it'll be set by flannel"],
      );
    });

    it('answers 1 for a cniVersion it does not speak, and for CHECK/GC/STATUS below their minimum', () => {
      let e = errorOf(invoke(env, { ...conf, cniVersion: '0.9.9' }));
      assert.equal(e.code, 1);
      assert.equal(
        e.details,
        'config is "0.9.9", plugin supports ["0.1.0" "0.2.0" "0.3.0" "0.3.1" "0.4.0" "1.0.0" "1.1.0"]',
      );
      e = errorOf(invoke({ ...env, CNI_COMMAND: 'CHECK' }, conf));
      assert.equal(e.code, 1);
      assert.match(e.msg, /config version does not allow CHECK/);
      e = errorOf(invoke({ ...env, CNI_COMMAND: 'GC' }, { ...conf, cniVersion: '1.0.0' }));
      assert.equal(e.code, 1);
      e = errorOf(invoke({ ...env, CNI_COMMAND: 'STATUS' }, conf));
      assert.equal(e.code, 1);
    });

    it('CHECK (>= 0.4.0) and GC (>= 1.1.0) succeed silently', () => {
      assert.deepEqual(invoke({ ...env, CNI_COMMAND: 'CHECK' }, { ...conf, cniVersion: '0.4.0' }), {
        code: 0,
        stdout: '',
        stderr: '',
      });
      assert.deepEqual(invoke({ ...env, CNI_COMMAND: 'GC' }, { ...conf, cniVersion: '1.1.0' }), {
        code: 0,
        stdout: '',
        stderr: '',
      });
    });

    it('STATUS reports 50 while subnet.env is missing and succeeds once it exists', () => {
      const missing = join(dir, 'no-such', 'subnet.env');
      const e = errorOf(
        invoke({ ...env, CNI_COMMAND: 'STATUS' }, { ...conf, cniVersion: '1.1.0', subnetFile: missing }),
      );
      assert.equal(e.code, 50);
      assert.match(e.msg, new RegExp(`open ${missing}: no such file or directory`));
      assert.equal(invoke({ ...env, CNI_COMMAND: 'STATUS' }, { ...conf, cniVersion: '1.1.0' }).code, 0);
    });

    it('ADD without subnet.env fails with the newest plugin message (999)', () => {
      const missing = join(dir, 'nope', 'subnet.env');
      const e = errorOf(invoke(env, { ...conf, subnetFile: missing }));
      assert.equal(e.code, 999);
      assert.equal(
        e.msg,
        `failed to load flannel 'subnet.env' file: open ${missing}: no such file or directory. Check the flannel pod log for this node.`,
      );
      const partial = join(dir, 'partial.env');
      writeFileSync(partial, 'FLANNEL_NETWORK=10.244.0.0/16\n');
      assert.equal(
        errorOf(invoke(env, { ...conf, subnetFile: partial })).msg,
        `failed to load flannel 'subnet.env' file: ${partial} is missing FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ. Check the flannel pod log for this node.`,
      );
    });

    it('ADD saves the delegate config (0600 in a 0700 dir), hands it to the delegate found on CNI_PATH and prints its result', () => {
      const o = invoke(env, conf);
      assert.equal(o.code, 0, o.stdout);
      assert.equal(o.stdout, '{"cniVersion":"0.3.1","ips":[{"version":"4","address":"10.244.1.2/24"}]}');
      assert.ok(o.stderr.includes(EXPECTED_DELEGATE), 'delegate config printed to stderr');
      const saved = join(dir, 'data', 'c0ffee');
      assert.equal(readFileSync(saved, 'utf8'), EXPECTED_DELEGATE);
      assert.equal(statSync(saved).mode & 0o777, 0o600);
      assert.equal(statSync(join(dir, 'data')).mode & 0o777, 0o700);
      assert.equal(readFileSync(join(dir, 'stdin.ADD'), 'utf8'), EXPECTED_DELEGATE);
      assert.equal(readFileSync(join(dir, 'env.ADD'), 'utf8'), 'ADD c0ffee eth0 /var/run/netns/pod\n');
    });

    it("passes a failing delegate's error JSON through with exit 1, and describes one that prints none", () => {
      writeFileSync(join(dir, 'fail.ADD'), '');
      try {
        const o = invoke({ ...env, CNI_CONTAINERID: 'failing' }, conf);
        assert.deepEqual([o.code, o.stdout], [1, '{"code":11,"msg":"delegate says try later"}']);
        assert.ok(existsSync(join(dir, 'data', 'failing')), 'saved so that the runtime DEL can clean up');
      } finally {
        rmSync(join(dir, 'fail.ADD'));
      }
      writeFileSync(join(dir, 'crash'), '');
      try {
        const e = errorOf(invoke({ ...env, CNI_CONTAINERID: 'crashing' }, conf));
        assert.equal(e.code, 999);
        assert.match(e.msg, /bin\/bridge \(ADD\) exited with status 2 without a CNI result/);
      } finally {
        rmSync(join(dir, 'crash'));
      }
    });

    it('ADD names the delegate type and CNI_PATH when the plugin is not installed', () => {
      const e = errorOf(invoke({ ...env, CNI_PATH: join(dir, 'empty') }, { ...conf, delegate: { type: 'macvlan-x' } }));
      assert.equal(e.code, 999);
      assert.match(e.msg, new RegExp(`failed to find plugin "macvlan-x" in path \\[${join(dir, 'empty')}\\]; install`));
    });

    it('DEL replays the saved bytes to the delegate and removes the file only on success', () => {
      const saved = join(dir, 'data', 'deleteme');
      mkdirSync(join(dir, 'data'), { recursive: true });
      // The real plugin's bytes, written by hand: DEL must work for pods the real plugin added.
      writeFileSync(saved, EXPECTED_DELEGATE, { mode: 0o600 });
      const delEnv = { ...env, CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'deleteme', CNI_NETNS: '' };
      writeFileSync(join(dir, 'fail.DEL'), '');
      try {
        const o = invoke(delEnv, conf);
        assert.deepEqual([o.code, o.stdout], [1, '{"code":11,"msg":"delegate says try later"}']);
        assert.ok(existsSync(saved), 'kept after a failed delegate DEL');
      } finally {
        rmSync(join(dir, 'fail.DEL'));
      }
      const o = invoke(delEnv, conf);
      assert.deepEqual([o.code, o.stdout], [0, '']);
      assert.equal(readFileSync(join(dir, 'stdin.DEL'), 'utf8'), EXPECTED_DELEGATE);
      assert.equal(existsSync(saved), false);
      assert.deepEqual(invoke(delEnv, conf), { code: 0, stdout: '', stderr: '' }, 'DEL again: nothing to do');
    });

    it('DEL works without subnet.env and shrugs off an unparseable saved file', () => {
      const delEnv = { ...env, CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'garbage' };
      const noEnv = { ...conf, subnetFile: join(dir, 'absent.env') };
      writeFileSync(join(dir, 'data', 'garbage'), '{not json');
      const o = invoke(delEnv, noEnv);
      assert.equal(o.code, 0);
      assert.equal(o.stdout, '');
      assert.match(o.stderr, /ignoring unusable saved config/);
      assert.equal(existsSync(join(dir, 'data', 'garbage')), false);
    });
  });
}
