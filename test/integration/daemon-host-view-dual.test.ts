// hostView + interface selection in dual stack against a real kernel: v6 addresses and the ::/0 default route as the
// kernel holds them in a namespace this test creates.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ipn, isRoot } from '../helpers/netns.ts';
import { NetlinkNs } from '../helpers/netlink-ns.ts';
import type { Netlink } from '../../src/netlink/index.ts';
import { hostView } from '../../src/daemon/host-view.ts';
import { selectExternalInterface } from '../../src/daemon/interface-selection.ts';

const none = { iface: [], ifaceRegex: [], ifaceCanReach: '', publicIP: '', ipv6: true };

describe('host view, dual stack', { skip: !isRoot && 'needs root' }, () => {
  const fx = new NetlinkNs();
  let a: string;
  let nl: Netlink;

  before(async () => {
    a = fx.pair('fl-hva', 'fl-hvb', '192.168.211');
    fx.netns.link(a, 'eth1', '192.168.212.1/24', fx.b, 'eth1', '192.168.212.2/24');
    // nodad: the address is usable at once instead of "tentative".
    ipn(a, '-6', 'addr', 'add', 'fd00:211::1/64', 'dev', 'eth0', 'nodad');
    ipn(a, '-6', 'addr', 'add', 'fd00:212::1/64', 'dev', 'eth1', 'nodad');
    ipn(a, 'route', 'add', 'default', 'via', '192.168.211.2', 'dev', 'eth0');
    nl = await fx.open();
  });

  after(() => fx.close());

  it('reads v6 addresses and the ::/0 route only when asked', async () => {
    const v4only = await hostView(nl);
    assert.equal(v4only.addressesV6, undefined);
    ipn(a, '-6', 'route', 'replace', 'default', 'via', 'fd00:211::2', 'dev', 'eth0');
    const view = await hostView(nl, { ipv6: true });
    const eth0 = view.links.find((l) => l.name === 'eth0')!.index;
    assert.equal(view.defaultRouteIndex, eth0);
    assert.equal(view.defaultRouteIndexV6, eth0);
    assert.ok(view.addressesV6!.some((x) => x.index === eth0 && x.address === 'fd00:211::1' && x.scope === 'universe'));
    const e = await selectExternalInterface(none, view);
    assert.equal(
      `${e.name} ${e.ifaceAddr} ${e.ifaceAddrV6} ${e.extAddrV6}`,
      'eth0 192.168.211.1 fd00:211::1 fd00:211::1',
    );
  });

  it('refuses a v6 default route on another interface than the v4 one', async () => {
    ipn(a, '-6', 'route', 'replace', 'default', 'via', 'fd00:212::2', 'dev', 'eth1');
    await assert.rejects(
      selectExternalInterface(none, await hostView(nl, { ipv6: true })),
      (e: Error) =>
        e.message ===
        'Failed to find any valid interface to use: v6 default route interface eth1 must be the same with v4 default route interface eth0',
    );
  });
});
