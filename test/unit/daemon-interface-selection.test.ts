import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { selectExternalInterface, interfaceAddress, type HostView } from '../../src/daemon/interface-selection.ts';

function host(extra: Partial<HostView> = {}): HostView {
  return {
    links: [
      { index: 1, name: 'lo', mtu: 65536 },
      { index: 2, name: 'eth0', mtu: 1500 },
      { index: 3, name: 'eth1', mtu: 9000 },
    ],
    addresses: [
      { index: 1, address: '127.0.0.1', scope: 'host', permanent: true, deprecated: false, temporary: false },
      { index: 2, address: '10.0.2.15', scope: 'universe', permanent: false, deprecated: false, temporary: false },
      { index: 3, address: '169.254.3.3', scope: 'link', permanent: true, deprecated: false, temporary: false },
      { index: 3, address: '192.168.56.11', scope: 'universe', permanent: true, deprecated: false, temporary: false },
    ],
    defaultRouteIndex: 2,
    routeGet: async (dst) => (dst.startsWith('192.168.56.') ? { index: 3, prefsrc: '192.168.56.11' } : { index: 2, prefsrc: '10.0.2.15' }),
    ...extra,
  };
}
const none = { iface: [], ifaceRegex: [], ifaceCanReach: '', publicIP: '' };

describe('external interface selection', () => {
  it('uses the default route interface when nothing is given', async () => {
    const e = await selectExternalInterface(none, host());
    assert.deepEqual(e, { name: 'eth0', index: 2, mtu: 1500, ifaceAddr: '10.0.2.15', extAddr: '10.0.2.15' });
  });

  it('uses the interface that owns --public-ip', async () => {
    const e = await selectExternalInterface({ ...none, publicIP: '192.168.56.11' }, host());
    assert.equal(e.name, 'eth1');
    assert.equal(e.extAddr, '192.168.56.11');
  });

  it('keeps the default route interface but advertises --public-ip when nobody owns it (NAT)', async () => {
    const e = await selectExternalInterface({ ...none, publicIP: '203.0.113.9' }, host());
    assert.equal(e.name, 'eth0');
    assert.equal(e.ifaceAddr, '10.0.2.15');
    assert.equal(e.extAddr, '203.0.113.9');
  });

  it('tries each --iface in order, by IP or by name', async () => {
    assert.equal((await selectExternalInterface({ ...none, iface: ['missing0', 'eth1'] }, host())).name, 'eth1');
    const byIp = await selectExternalInterface({ ...none, iface: ['192.168.56.11'] }, host());
    assert.equal(byIp.name, 'eth1');
    assert.equal(byIp.ifaceAddr, '192.168.56.11');
  });

  it('prefers global permanent addresses over link-local ones', () => {
    assert.equal(interfaceAddress(host(), 3), '192.168.56.11');
  });

  it('matches --iface-regex against addresses before names', async () => {
    assert.equal((await selectExternalInterface({ ...none, ifaceRegex: ['^192\\.168\\.'] }, host())).name, 'eth1');
    assert.equal((await selectExternalInterface({ ...none, ifaceRegex: ['^eth1$'] }, host())).ifaceAddr, '192.168.56.11');
  });

  it('follows the route to --iface-can-reach', async () => {
    const e = await selectExternalInterface({ ...none, ifaceCanReach: '192.168.56.99' }, host());
    assert.equal(e.name, 'eth1');
    assert.equal(e.ifaceAddr, '192.168.56.11');
  });

  it('fails with the spec messages', async () => {
    await assert.rejects(selectExternalInterface({ ...none, iface: ['nope0'], ifaceRegex: ['^zz'] }, host()), /Failed to find interface to use that matches the interfaces and\/or regexes provided/);
    await assert.rejects(selectExternalInterface(none, host({ defaultRouteIndex: undefined })), /Failed to find any valid interface to use: no default route/);
    await assert.rejects(selectExternalInterface({ ...none, publicIP: 'not-an-ip' }, host()), /invalid public IP address "not-an-ip"/);
  });
});
