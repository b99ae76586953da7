// `flannelctl lab up --kube`: the fake Kubernetes API server instead of etcd, flanneld --kube-subnet-mgr on each
// host, the full ping matrix, the node annotations/conditions flanneld wrote, and the VtepMAC kept across a
// restart that lost the device.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import {
  assertDoctorHealthy,
  assertTraceHealthy,
  TRACE_HOPS,
  lab,
  LAB_HOSTS,
  labDownQuietly,
  labSkip,
  subnetEnvFile,
  vtepMac,
} from '../helpers/lab.ts';

const P = 'flannel.alpha.coreos.com/';

function apiNode(name: string): any {
  const token = readFileSync('/run/flannel-lab/kube-token', 'utf8').trim();
  const out = execFileSync(
    'ip',
    [
      'netns',
      'exec',
      'flab-h1',
      'curl',
      '-sf',
      '-H',
      `Authorization: Bearer ${token}`,
      `http://192.168.100.2:6443/api/v1/nodes/${name}`,
    ],
    { encoding: 'utf8' },
  );
  return JSON.parse(out);
}

describe('lab --kube: 3 hosts × 2 pods with the Kubernetes subnet manager', { skip: labSkip }, () => {
  let upOutput = '';
  before(() => {
    upOutput = lab(['up', '--kube', '--hosts', '3', '--pods-per-host', '2']);
  });
  after(labDownQuietly);

  it('ends with a full ping matrix at 0 % loss', () => {
    assert.match(upOutput, /All 42 pairs at 0 % loss\./, upOutput);
  });

  it("uses each node's podCIDR and publishes the spec annotations and NetworkUnavailable condition", () => {
    for (const [i, h] of ['h1', 'h2', 'h3'].entries()) {
      const env = readFileSync(subnetEnvFile(h), 'utf8');
      assert.match(env, new RegExp(`^FLANNEL_SUBNET=10\\.244\\.${i + 1}\\.1/24$`, 'm'));
      const node = apiNode(h);
      assert.deepEqual(node.metadata.annotations, {
        [`${P}backend-data`]: JSON.stringify({ VNI: 1, VtepMAC: vtepMac(`flab-${h}`) }),
        [`${P}backend-type`]: 'vxlan',
        [`${P}kube-subnet-manager`]: 'true',
        [`${P}public-ip`]: `192.168.100.${11 + i}`,
      });
      const [c] = node.status.conditions;
      assert.deepEqual(
        [c.type, c.status, c.reason, c.message],
        ['NetworkUnavailable', 'False', 'FlannelIsUp', 'Flannel is running on this node'],
      );
    }
  });

  it('lab doctor and lab trace read the Nodes and net-conf.json: nothing wrong, every hop in place', () => {
    assertDoctorHealthy(LAB_HOSTS);
    assertTraceHealthy('h1-p1', 'h3-p2', TRACE_HOPS.vxlan);
  });

  it('recreates a lost vxlan device with the VtepMAC from the node annotation after a restart', () => {
    const before = vtepMac('flab-h2');
    for (const pid of execFileSync('ip', ['netns', 'pids', 'flab-h2'], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean)) {
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('flanneld')) process.kill(Number(pid), 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
    const deadline = Date.now() + 10_000;
    while (
      execFileSync('ip', ['netns', 'pids', 'flab-h2'], { encoding: 'utf8' }).trim() !== '' &&
      Date.now() < deadline
    )
      execFileSync('sleep', ['0.1']);
    execFileSync('ip', ['-n', 'flab-h2', 'link', 'del', 'flannel.1']);
    lab(['restart', 'h2']);
    assert.equal(vtepMac('flab-h2'), before);
    assert.match(lab(['status']), /All 42 pairs at 0 % loss\./);
  });
});
