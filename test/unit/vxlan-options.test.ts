import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  deviceName,
  parsePeerBackendData,
  parseVxlanOptions,
  vxlanBackendData,
} from '../../src/backend/vxlan/options.ts';
import { vxlanIncompatibility } from '../../src/backend/vxlan/compat.ts';
import type { LinkInfo, VxlanSpec } from '../../src/netlink/index.ts';
import { vxlanLink } from '../helpers/inspect-fixtures.ts';

describe('vxlan options', () => {
  it('defaults to VNI 1, kernel port, no GBP/learning/direct routing and the external MTU', () => {
    assert.deepEqual(parseVxlanOptions({ Type: 'vxlan' }, 1500), {
      vni: 1,
      port: 0,
      gbp: false,
      learning: false,
      directRouting: false,
      mtu: 1500,
    });
  });

  it('reads keys case-insensitively', () => {
    const o = parseVxlanOptions(
      { vni: 4096, PORT: 4789, gbp: true, learning: true, directrouting: true, mtu: 9000 },
      1500,
    );
    assert.deepEqual(o, { vni: 4096, port: 4789, gbp: true, learning: true, directRouting: true, mtu: 9000 });
    assert.equal(deviceName(o.vni), 'flannel.4096');
  });

  it('rejects out-of-range values naming the option and the fix', () => {
    assert.throws(
      () => parseVxlanOptions({ VNI: 2 ** 24 }, 1500),
      /Backend.VNI 16777216 is out of range; it must be between 0 and 16777215/,
    );
    assert.throws(() => parseVxlanOptions({ Port: 70000 }, 1500), /Backend.Port 70000 is out of range/);
    assert.throws(() => parseVxlanOptions({ MTU: 100 }, 1500), /vxlan MTU 100 is too small.*at least 118/);
    assert.throws(() => parseVxlanOptions({ VNI: '1' }, 1500), /Backend.VNI must be an integer/);
    assert.throws(
      () => parseVxlanOptions({ DirectRouting: 'yes' }, 1500),
      /Backend.DirectRouting must be true or false/,
    );
  });

  it('publishes BackendData with VNI before VtepMAC, as real flannel does', () => {
    assert.equal(JSON.stringify(vxlanBackendData(1, '0e:2a:00:00:00:01')), '{"VNI":1,"VtepMAC":"0e:2a:00:00:00:01"}');
  });

  it('reads a peer VtepMAC from new, old (no VNI) and oddly-cased BackendData and refuses junk', () => {
    assert.deepEqual(parsePeerBackendData({ VNI: 1, VtepMAC: 'C6:D2:32:6F:8F:44' }), {
      vni: 1,
      vtepMac: 'c6:d2:32:6f:8f:44',
    });
    assert.deepEqual(parsePeerBackendData({ VtepMAC: '82:4b:b6:2f:54:4e' }), { vtepMac: '82:4b:b6:2f:54:4e' });
    assert.deepEqual(parsePeerBackendData({ vtepmac: '82:4b:b6:2f:54:4e' }), { vtepMac: '82:4b:b6:2f:54:4e' });
    assert.equal(parsePeerBackendData(null), null);
    assert.equal(parsePeerBackendData({ VtepMAC: 'nope' }), null);
    assert.equal(parsePeerBackendData('x'), null);
  });
});

describe('vxlan device compatibility', () => {
  const want: VxlanSpec = {
    name: 'flannel.1',
    id: 1,
    local: '192.168.1.11',
    link: 2,
    port: 0,
    learning: false,
    gbp: false,
  };
  const link = (vx: Partial<NonNullable<LinkInfo['vxlan']>>, kind = 'vxlan'): LinkInfo => ({
    ...vxlanLink(7, 'flannel.1', 1450, '0e:00:00:00:00:01', '192.168.1.11', vx),
    kind,
  });

  it('reuses a device that matches', () => {
    assert.equal(vxlanIncompatibility(link({}), want), null);
  });

  it('compares index, local IP and port only when both sides have one', () => {
    assert.equal(vxlanIncompatibility(link({ link: null, local: null }), want), null);
    assert.equal(vxlanIncompatibility(link({ port: 4789 }), want), null, 'we asked for the kernel default port');
    assert.equal(vxlanIncompatibility(link({ port: 4789 }), { ...want, port: 4789 }), null);
    assert.equal(vxlanIncompatibility(link({}), { ...want, port: 4789 }), 'port 8472 != 4789');
    assert.equal(vxlanIncompatibility(link({ link: 3 }), want), 'vtep (external) interface index 3 != 2');
    assert.equal(
      vxlanIncompatibility(link({ local: '192.168.1.99' }), want),
      'vtep (external) IP 192.168.1.99 != 192.168.1.11',
    );
  });

  it('recreates on a different VNI, GBP, l2miss or a non-vxlan device', () => {
    assert.equal(vxlanIncompatibility(link({ id: 2 }), want), 'VNI 2 != 1');
    assert.equal(vxlanIncompatibility(link({ gbp: true }), want), 'GBP true != false');
    assert.equal(vxlanIncompatibility(link({ l2miss: true }), want), 'l2miss on != off');
    assert.match(
      vxlanIncompatibility({ ...link({}), kind: 'veth', vxlan: undefined }, want)!,
      /veth device, not vxlan/,
    );
  });
});
