import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { labCniConfig, labNetworkConfig, labTopology } from '../../src/lab/topology.ts';
import { formatMatrix, parsePingSummary, lossPercent } from '../../src/lab/ping-matrix.ts';

describe('lab topology', () => {
  it('names hosts, pods and underlay addresses', () => {
    const t = labTopology(3, 2, 'vxlan');
    assert.deepEqual(
      t.hosts.map((h) => [h.ns, h.ip]),
      [
        ['flab-h1', '192.168.100.11'],
        ['flab-h2', '192.168.100.12'],
        ['flab-h3', '192.168.100.13'],
      ],
    );
    assert.deepEqual(
      t.hosts[1]!.pods.map((p) => p.ns),
      ['flab-h2-p1', 'flab-h2-p2'],
    );
    for (const h of t.hosts) assert.ok(h.vethHost.length <= 15 && h.vethSwitch.length <= 15);
  });

  it('rejects sizes it cannot build with the flag named', () => {
    assert.throws(() => labTopology(1, 2, 'vxlan'), /--hosts 1/);
    assert.throws(() => labTopology(3, 0, 'vxlan'), /--pods-per-host 0/);
  });

  it('gives each host its own subnet file and CNI state', () => {
    const t = labTopology(2, 1, 'vxlan');
    const c = JSON.parse(labCniConfig(t.hosts[1]!));
    assert.equal(c.type, 'flannel');
    assert.equal(c.subnetFile, '/run/flannel-lab/h2/subnet.env');
    assert.equal(c.ipam.dataDir, '/run/flannel-lab/h2/ipam');
    assert.deepEqual(JSON.parse(labNetworkConfig(t)), { Network: '10.244.0.0/16', Backend: { Type: 'vxlan' } });
    assert.deepEqual(JSON.parse(labNetworkConfig(labTopology(2, 1, 'udp', true))), {
      Network: '10.244.0.0/16',
      EnableNFTables: true,
      Backend: { Type: 'udp' },
    });
    const ds = labTopology(2, 1, 'vxlan', false, true);
    assert.deepEqual(JSON.parse(labNetworkConfig(ds)), {
      Network: '10.244.0.0/16',
      EnableIPv6: true,
      IPv6Network: 'fd44:244::/56',
      Backend: { Type: 'vxlan' },
    });
    assert.equal(ds.hosts[1]!.ipv6, 'fd00:100::12');
  });
});

describe('ping matrix', () => {
  it('parses the iputils summary', () => {
    assert.deepEqual(parsePingSummary('3 packets transmitted, 2 received, 33.3333% packet loss, time 401ms'), {
      sent: 3,
      received: 2,
    });
    assert.equal(parsePingSummary('ping: connect: Network is unreachable'), undefined);
    assert.equal(lossPercent({ sent: 3, received: 2 }), 33);
  });

  it('formats a table with a cell per pair', () => {
    const text = formatMatrix(
      ['a', 'b'],
      [
        { label: 'a', ip: '10.0.0.1' },
        { label: 'b', ip: '10.0.0.2' },
      ],
      [
        { from: 'a', to: 'b', sent: 3, received: 3 },
        { from: 'b', to: 'a', sent: 3, received: 0 },
      ],
    );
    const lines = text.split('\n');
    assert.match(lines[2]!, /^a\s+-\s+0%/);
    assert.match(lines[3]!, /^b\s+100%\s+-/);
  });
});
