// Our netlink facade with IPv6 (dual stack, docs/COMPATIBILITY.md, "vxlan backend"): a vxlan with an IPv6 local, /128
// address, neighbour, FDB to an IPv6 VTEP, onlink route; checked with iproute2 in namespaces this test creates.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { bridgeJson, ipJson, isRoot, nsRun, run } from '../helpers/netns.ts';
import { NetlinkNs } from '../helpers/netlink-ns.ts';
import type { Netlink } from '../../src/netlink/index.ts';

const isMulticast6 = (ip: string) => /^ff[0-9a-f]{2}:/i.test(ip);

describe('netlink facade, IPv6', { skip: !isRoot && 'needs root' }, () => {
  const fx = new NetlinkNs();
  let a: string;
  let nl: Netlink;
  let eth0: number;

  before(async () => {
    a = fx.pair('fl-n6a', 'fl-n6b', '192.168.212');
    run('ip', ['-n', a, 'addr', 'add', 'fd12::1/64', 'dev', 'eth0', 'nodad']);
    nl = await fx.open();
    eth0 = (await nl.linkByName('eth0'))!.index;
  });

  after(() => fx.close());

  it('creates a vxlan whose local is IPv6 (IFLA_VXLAN_LOCAL6) and reads it back', async () => {
    await nl.createVxlan({ name: 'vx6', id: 7, local: 'fd12::1', link: eth0, learning: false, gbp: false, mtu: 1430 });
    const [ip] = ipJson(a, ['-d', 'link', 'show', 'vx6']);
    assert.equal(ip.linkinfo.info_data.local6, 'fd12::1');
    assert.equal(ip.linkinfo.info_data.local, undefined);
    assert.equal(ip.linkinfo.info_data.id, 7);
    assert.equal(ip.mtu, 1430);
    const link = (await nl.linkByName('vx6'))!;
    assert.equal(link.vxlan?.local, 'fd12::1');
    assert.equal(link.vxlan?.link, eth0);
    await nl.deleteLink(link.index);
  });

  it('adds and removes a /128 address, and reads IPv6 addresses back', async () => {
    await nl.createVxlan({ name: 'vx6a', id: 8, local: 'fd12::1', link: eth0, learning: false, gbp: false });
    const vx = (await nl.linkByName('vx6a'))!.index;
    await nl.addAddress(vx, 'fd00:10:244:1::/128');
    const shown = ipJson(a, ['-6', 'addr', 'show', 'dev', 'vx6a'])[0].addr_info.map(
      (i: any) => `${i.local}/${i.prefixlen}`,
    );
    assert.deepEqual(shown, ['fd00:10:244:1::/128']);
    assert.deepEqual(
      (await nl.addresses(6, vx)).map((x) => `${x.address}/${x.prefixLen} ${x.scope}`),
      ['fd00:10:244:1::/128 universe'],
    );
    await nl.deleteAddress(vx, 'fd00:10:244:1::/128');
    assert.deepEqual(await nl.addresses(6, vx), []);
    await nl.deleteLink(vx);
  });

  it('programs an IPv6 peer on the device: neighbour, FDB dst IPv6, onlink route; then deletes them', async () => {
    await nl.createVxlan({ name: 'vx6b', id: 9, local: 'fd12::1', link: eth0, learning: false, gbp: false });
    const vx = (await nl.linkByName('vx6b'))!.index;
    await nl.setLinkUp(vx);
    await nl.replaceNeighbour({ index: vx, ip: 'fd00:10:244:2::', mac: '0e:00:00:00:06:02' });
    await nl.replaceFdb({ index: vx, mac: '0e:00:00:00:06:02', dst: 'fd12::2' });
    await nl.replaceRoute({ dst: 'fd00:10:244:2::/64', gateway: 'fd00:10:244:2::', oif: vx, onlink: true });

    // Bringing the link up makes the kernel add multicast entries of its own (e.g. ff02::16 noarp for MLD): not ours.
    const neigh = ipJson(a, ['-6', 'neigh', 'show', 'dev', 'vx6b'])
      .filter((n: any) => !isMulticast6(n.dst))
      .map((n: any) => `${n.dst} ${n.lladdr} ${n.state}`);
    assert.deepEqual(neigh, ['fd00:10:244:2:: 0e:00:00:00:06:02 PERMANENT']);
    assert.deepEqual(
      (await nl.neighbours(vx, 6)).filter((n) => !isMulticast6(n.ip)),
      [{ index: vx, ip: 'fd00:10:244:2::', mac: '0e:00:00:00:06:02', permanent: true, state: ['permanent'] }],
    );
    const fdb = bridgeJson(a, ['fdb', 'show', 'dev', 'vx6b']).map(
      (f: any) => `${f.mac} ${f.dst} ${f.flags} ${f.state}`,
    );
    assert.deepEqual(fdb, ['0e:00:00:00:06:02 fd12::2 self permanent']);
    assert.deepEqual(
      (await nl.fdb(vx)).map((f) => `${f.mac} ${f.dst}`),
      ['0e:00:00:00:06:02 fd12::2'],
    );
    const route = nsRun(a, 'ip', ['-6', 'route', 'show', 'proto', 'boot']).trim();
    assert.equal(route, 'fd00:10:244:2::/64 via fd00:10:244:2:: dev vx6b metric 1024 onlink pref medium');
    const r = (await nl.routes(6, { dst: 'fd00:10:244:2::/64' }))[0]!;
    assert.deepEqual([r.gateway, r.oif, r.onlink, r.table], ['fd00:10:244:2::', vx, true, 254]);

    await nl.deleteRoute({ dst: 'fd00:10:244:2::/64', gateway: 'fd00:10:244:2::', oif: vx });
    await nl.deleteFdb({ index: vx, mac: '0e:00:00:00:06:02', dst: 'fd12::2' });
    await nl.deleteNeighbour({ index: vx, ip: 'fd00:10:244:2::' });
    assert.equal(nsRun(a, 'ip', ['-6', 'route', 'show', 'proto', 'boot']).trim(), '');
    assert.deepEqual(bridgeJson(a, ['fdb', 'show', 'dev', 'vx6b']), []);
    assert.deepEqual(
      ipJson(a, ['-6', 'neigh', 'show', 'dev', 'vx6b']).filter((n: any) => !isMulticast6(n.dst)),
      [],
    );
    await nl.deleteLink(vx);
  });

  it('replaces a plain IPv6 gateway route and answers IPv6 route lookups', async () => {
    await nl.replaceRoute({ dst: 'fd00:10:244:3::/64', gateway: 'fd12::2', oif: eth0 });
    assert.equal(
      nsRun(a, 'ip', ['-6', 'route', 'show', 'proto', 'boot']).trim(),
      'fd00:10:244:3::/64 via fd12::2 dev eth0 metric 1024 pref medium',
    );
    assert.deepEqual(await nl.routeGet('fd00:10:244:3::5'), {
      type: 'unicast',
      oif: eth0,
      gateway: 'fd12::2',
      prefsrc: 'fd12::1',
    });
    const direct = await nl.routeGet('fd12::2');
    assert.deepEqual([direct.gateway, direct.oif], [undefined, eth0]);
    await nl.deleteRoute({ dst: 'fd00:10:244:3::/64', gateway: 'fd12::2' });
    assert.equal(nsRun(a, 'ip', ['-6', 'route', 'show', 'proto', 'boot']).trim(), '');
  });
});
