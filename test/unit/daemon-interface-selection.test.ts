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
    routeGet: async (dst) =>
      dst.startsWith('192.168.56.') ? { index: 3, prefsrc: '192.168.56.11' } : { index: 2, prefsrc: '10.0.2.15' },
    ...extra,
  };
}
/** A permanent IPv6 address of interface `index`, with the flags in `more`. */
const v6 = (
  index: number,
  address: string,
  scope = 'universe',
  more: Partial<{ permanent: boolean; deprecated: boolean; temporary: boolean }> = {},
) => ({ index, address, scope, permanent: true, deprecated: false, temporary: false, ...more });
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
    assert.equal(
      (await selectExternalInterface({ ...none, ifaceRegex: ['^eth1$'] }, host())).ifaceAddr,
      '192.168.56.11',
    );
  });

  it('follows the route to --iface-can-reach', async () => {
    const e = await selectExternalInterface({ ...none, ifaceCanReach: '192.168.56.99' }, host());
    assert.equal(e.name, 'eth1');
    assert.equal(e.ifaceAddr, '192.168.56.11');
  });

  it('fails with the spec messages', async () => {
    await assert.rejects(
      selectExternalInterface({ ...none, iface: ['nope0'], ifaceRegex: ['^zz'] }, host()),
      /Failed to find interface to use that matches the interfaces and\/or regexes provided/,
    );
    await assert.rejects(
      selectExternalInterface(none, host({ defaultRouteIndex: undefined })),
      /Failed to find any valid interface to use: no default route/,
    );
    await assert.rejects(
      selectExternalInterface({ ...none, publicIP: 'not-an-ip' }, host()),
      /invalid public IP address "not-an-ip"/,
    );
  });
});

describe('external interface selection, dual stack (docs/COMPATIBILITY.md, "Interface selection")', () => {
  const dualHost = (extra: Partial<HostView> = {}) =>
    host({
      addressesV6: [
        v6(1, '::1', 'host'),
        v6(2, 'fe80::2', 'link'),
        v6(2, 'fc00:2::15', 'universe', { permanent: false }),
        v6(2, 'fc00:2::99', 'universe', { deprecated: true }),
        v6(3, 'fe80::3', 'link'),
        v6(3, 'fc00:56::11'),
      ],
      defaultRouteIndexV6: 2,
      ...extra,
    });
  const dual = { ...none, ipv6: true };

  it('uses the v4 and v6 default route interface with its first usable v6 address', async () => {
    const e = await selectExternalInterface(dual, dualHost());
    assert.deepEqual(e, {
      name: 'eth0',
      index: 2,
      mtu: 1500,
      ifaceAddr: '10.0.2.15',
      extAddr: '10.0.2.15',
      ifaceAddrV6: 'fc00:2::15',
      extAddrV6: 'fc00:2::15',
    });
  });

  it('requires the v6 default route on the v4 default route interface', async () => {
    await assert.rejects(
      selectExternalInterface(dual, dualHost({ defaultRouteIndexV6: 3 })),
      (e: Error) =>
        e.message ===
        'Failed to find any valid interface to use: v6 default route interface eth1 must be the same with v4 default route interface eth0',
    );
    await assert.rejects(
      selectExternalInterface(dual, dualHost({ defaultRouteIndexV6: undefined })),
      /Failed to find any valid interface to use: no IPv6 default route \(::\/0\) found/,
    );
  });

  it('fails when the chosen interface has no IPv6 address', async () => {
    await assert.rejects(
      selectExternalInterface(dual, dualHost({ addressesV6: [v6(2, '::1', 'host')] })),
      /Failed to find any valid interface to use: failed to find IPv6 address for interface eth0/,
    );
  });

  it('falls back to a link-local v6 address only when nothing global is usable', () => {
    assert.equal(interfaceAddress(dualHost(), 3, 6), 'fc00:56::11');
    assert.equal(
      interfaceAddress(
        dualHost({ addressesV6: [v6(3, 'fe80::3', 'link'), v6(3, 'fc00:56::11', 'universe', { deprecated: true })] }),
        3,
        6,
      ),
      'fe80::3',
    );
  });

  it('advertises --public-ipv6 in canonical form and rejects a non-IPv6 value', async () => {
    const e = await selectExternalInterface({ ...dual, publicIPv6: '2001:DB8:0:0::9' }, dualHost());
    assert.equal(e.ifaceAddrV6, 'fc00:2::15');
    assert.equal(e.extAddrV6, '2001:db8::9');
    await assert.rejects(
      selectExternalInterface({ ...dual, publicIPv6: '10.0.0.1' }, dualHost()),
      /invalid public IPv6 address "10\.0\.0\.1": pass an IPv6 address such as --public-ipv6=fc00::11/,
    );
  });

  it('uses the interface owning --public-ip and --public-ipv6, which must be the same one', async () => {
    const e = await selectExternalInterface(
      { ...dual, publicIP: '192.168.56.11', publicIPv6: 'fc00:56::11' },
      dualHost(),
    );
    assert.equal(
      `${e.name} ${e.extAddr} ${e.ifaceAddrV6} ${e.extAddrV6}`,
      'eth1 192.168.56.11 fc00:56::11 fc00:56::11',
    );
    await assert.rejects(
      selectExternalInterface({ ...dual, publicIP: '192.168.56.11', publicIPv6: 'fc00:2::15' }, dualHost()),
      /Failed to find any valid interface to use: public IP 192\.168\.56\.11 is on eth1 but public IPv6 fc00:2::15 is on eth0: both must be on the same interface/,
    );
  });

  it('finds --iface by IPv6 address and --iface-regex needs a v4 and a v6 match on one interface', async () => {
    const byV6 = await selectExternalInterface({ ...dual, iface: ['fc00:56:0::11'] }, dualHost());
    assert.equal(`${byV6.name} ${byV6.ifaceAddr} ${byV6.ifaceAddrV6}`, 'eth1 192.168.56.11 fc00:56::11');
    // "^1" matches 127.0.0.1 (lo, no matching v6), 10.0.2.15 (eth0, none) and 192.168.56.11 (eth1, none): no match;
    // "11$" matches 192.168.56.11 and fc00:56::11, both on eth1.
    await assert.rejects(
      selectExternalInterface({ ...dual, ifaceRegex: ['^1'] }, dualHost()),
      /Failed to find interface to use/,
    );
    const both = await selectExternalInterface({ ...dual, ifaceRegex: ['11$'] }, dualHost());
    assert.equal(`${both.name} ${both.ifaceAddr} ${both.ifaceAddrV6}`, 'eth1 192.168.56.11 fc00:56::11');
    // Only v4 addresses match: falls through to the name pass, which matches nothing either.
    await assert.rejects(
      selectExternalInterface({ ...dual, ifaceRegex: ['^10\\.0\\.'] }, dualHost()),
      /Failed to find interface to use/,
    );
    assert.equal(
      (await selectExternalInterface({ ...none, ifaceRegex: ['^10\\.0\\.'] }, dualHost())).name,
      'eth0',
      'v4 only: one v4 match is enough',
    );
  });
});

describe('external interface selection, IPv6-only (ipv4: false)', () => {
  // No IPv4 default route: an IPv6-only host whose ::/0 route leaves through eth1.
  const v6Host = (extra: Partial<HostView> = {}) =>
    host({
      defaultRouteIndex: undefined,
      addressesV6: [
        v6(1, '::1', 'host'),
        v6(2, 'fe80::2', 'link'),
        v6(2, 'fc00:2::15'),
        v6(3, 'fe80::3', 'link'),
        v6(3, 'fc00:56::11'),
      ],
      defaultRouteIndexV6: 3,
      routeGet: async (dst) =>
        dst.startsWith('fc00:56:') ? { index: 3, prefsrc: 'fc00:56::11' } : { index: 2, prefsrc: 'fc00:2::15' },
      ...extra,
    });
  const only6 = { ...none, ipv4: false, ipv6: true };

  it('uses the ::/0 route interface with no IPv4 default route, and leaves the IPv4 addresses empty', async () => {
    const e = await selectExternalInterface(only6, v6Host());
    assert.deepEqual(e, {
      name: 'eth1',
      index: 3,
      mtu: 9000,
      ifaceAddr: '',
      extAddr: '',
      ifaceAddrV6: 'fc00:56::11',
      extAddrV6: 'fc00:56::11',
    });
    // The IPv4 default route is not consulted even where there is one.
    const withV4 = await selectExternalInterface(only6, v6Host({ defaultRouteIndex: 2 }));
    assert.equal(`${withV4.name} ${withV4.ifaceAddr}|${withV4.extAddrV6}`, 'eth1 |fc00:56::11');
  });

  it('needs no IPv4 address on the chosen interface', async () => {
    const e = await selectExternalInterface(only6, v6Host({ addresses: [] }));
    assert.equal(`${e.name} [${e.ifaceAddr}] [${e.extAddr}] ${e.ifaceAddrV6}`, 'eth1 [] [] fc00:56::11');
  });

  it('advertises --public-ipv6 in canonical form on the interface that owns it', async () => {
    const owned = await selectExternalInterface({ ...only6, publicIPv6: 'FC00:2:0:0::15' }, v6Host());
    assert.deepEqual(owned, {
      name: 'eth0',
      index: 2,
      mtu: 1500,
      ifaceAddr: '',
      extAddr: '',
      ifaceAddrV6: 'fc00:2::15',
      extAddrV6: 'fc00:2::15',
    });
    // Nobody owns it (NAT): the ::/0 interface, advertising the public address.
    const nat = await selectExternalInterface({ ...only6, publicIPv6: '2001:DB8:0::9' }, v6Host());
    assert.equal(`${nat.name} ${nat.ifaceAddrV6} ${nat.extAddrV6} [${nat.extAddr}]`, 'eth1 fc00:56::11 2001:db8::9 []');
    await assert.rejects(
      selectExternalInterface({ ...only6, publicIPv6: 'nope' }, v6Host()),
      /invalid public IPv6 address "nope"/,
    );
  });

  it('ignores --public-ip: it does not pick the interface and is not advertised', async () => {
    const e = await selectExternalInterface({ ...only6, publicIP: '10.0.2.15' }, v6Host());
    assert.equal(`${e.name} [${e.ifaceAddr}] [${e.extAddr}] ${e.extAddrV6}`, 'eth1 [] [] fc00:56::11');
  });

  it('matches --iface-regex against IPv6 addresses, not IPv4 ones', async () => {
    const byV6 = await selectExternalInterface({ ...only6, ifaceRegex: ['^fc00:2:'] }, v6Host());
    assert.equal(
      `${byV6.name} [${byV6.ifaceAddr}] ${byV6.ifaceAddrV6} ${byV6.extAddrV6}`,
      'eth0 [] fc00:2::15 fc00:2::15',
    );
    // 192.168.56.11 is eth1's IPv4 address: on an IPv6-only network that is no match (and no name matches either).
    await assert.rejects(
      selectExternalInterface({ ...only6, ifaceRegex: ['^192\\.168\\.56\\.'] }, v6Host()),
      /Failed to find interface to use/,
    );
    // The same regex picks eth1 on an IPv4 network, so it is the family that decides.
    assert.equal(
      (await selectExternalInterface({ ...none, ifaceRegex: ['^192\\.168\\.56\\.'] }, v6Host({ defaultRouteIndex: 2 })))
        .name,
      'eth1',
    );
    // A name match still works, and then the interface's usable v6 address is taken.
    const byName = await selectExternalInterface({ ...only6, ifaceRegex: ['^eth0$'] }, v6Host());
    assert.equal(`${byName.name} ${byName.ifaceAddrV6}`, 'eth0 fc00:2::15');
  });

  it('finds --iface by IPv6 address or name', async () => {
    const byAddr = await selectExternalInterface({ ...only6, iface: ['fc00:2:0::15'] }, v6Host());
    assert.equal(`${byAddr.name} [${byAddr.ifaceAddr}] ${byAddr.ifaceAddrV6}`, 'eth0 [] fc00:2::15');
    const byName = await selectExternalInterface({ ...only6, iface: ['eth0'] }, v6Host());
    assert.equal(`${byName.name} ${byName.extAddrV6}`, 'eth0 fc00:2::15');
  });

  it('follows the route to an IPv6 --iface-can-reach and refuses an IPv4 one naming IPv6-only', async () => {
    const e = await selectExternalInterface({ ...only6, ifaceCanReach: 'fc00:2::99' }, v6Host());
    assert.equal(`${e.name} [${e.ifaceAddr}] ${e.ifaceAddrV6}`, 'eth0 [] fc00:2::15');
    await assert.rejects(
      selectExternalInterface({ ...only6, ifaceCanReach: '192.168.56.99' }, v6Host()),
      (err: Error) =>
        err.message === '--iface-can-reach "192.168.56.99" is not an IPv6 address (the network is IPv6-only)',
    );
  });

  it('fails without a ::/0 route, or without an IPv6 address on the interface, with the messages', async () => {
    await assert.rejects(
      selectExternalInterface(only6, v6Host({ defaultRouteIndexV6: undefined, defaultRouteIndex: 2 })),
      (err: Error) =>
        err.message ===
        'Failed to find any valid interface to use: no IPv6 default route (::/0) found: add one, or pass --iface, --iface-regex or --iface-can-reach',
    );
    await assert.rejects(
      selectExternalInterface(only6, v6Host({ addressesV6: [v6(3, 'fc00:56::11', 'universe', { deprecated: true })] })),
      /Failed to find any valid interface to use: failed to find IPv6 address for interface eth1/,
    );
  });
});
