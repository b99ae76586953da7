// Our netlink facade against a real kernel, in namespaces this test creates; checked with iproute2.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { bridgeJson, ipJson, ipn, isRoot, Netns, nsRun } from '../helpers/netns.ts';
import { NetlinkError, openNetlink, type LinkWatchEvent, type Netlink } from '../../src/netlink/index.ts';

describe('netlink facade', { skip: !isRoot && 'needs root' }, () => {
  const netns = new Netns();
  let a: string;
  let b: string;
  let nl: Netlink;
  let nlB: Netlink;
  let eth0: number;

  before(async () => {
    a = netns.add('fl-nla');
    b = netns.add('fl-nlb');
    netns.link(a, 'eth0', '192.168.210.1/24', b, 'eth0', '192.168.210.2/24');
    nl = await openNetlink({ netns: a });
    nlB = await openNetlink({ netns: `/var/run/netns/${b}` });
    eth0 = (await nl.linkByName('eth0'))!.index;
  });

  after(() => {
    nl?.close();
    nlB?.close();
    netns.cleanup();
  });

  it('lives in the namespace it was opened in (name or path), one process driving several', async () => {
    const mine = await nl.links();
    assert.deepEqual(
      mine.map((l) => l.name).sort(),
      ipJson(a, ['link'])
        .map((l: any) => l.ifname)
        .sort(),
    );
    const peer = (await nlB.linkByName('eth0'))!;
    assert.equal(peer.mac, ipJson(b, ['link', 'show', 'eth0'])[0].address);
    assert.notEqual(peer.mac, (await nl.linkByName('eth0'))!.mac);
  });

  it('reads addresses and routes like ip -json does', async () => {
    const addrs = await nl.addresses(4, eth0);
    assert.deepEqual(
      addrs.map((x) => `${x.address}/${x.prefixLen} ${x.scope} ${x.permanent}`),
      ['192.168.210.1/24 universe true'],
    );
    const lo = (await nl.addresses(4)).find((x) => x.address === '127.0.0.1')!;
    assert.equal(lo.scope, 'host');
    const main = await nl.routes(4, { table: 254 });
    assert.deepEqual(
      main.map((r) => `${r.dst} ${r.scope} ${r.protocol} ${r.oif}`),
      [`192.168.210.0/24 link kernel ${eth0}`],
    );
    assert.ok(
      (await nl.routes(4)).some((r) => r.table === 255 && r.type === 'local'),
      'all tables without a filter',
    );
  });

  // ip -json leaves out the default protocol (boot).
  it('reads every route, neighbour and bridge FDB entry of the namespace as ip -json and bridge -json show them', async () => {
    ipn(a, 'route', 'add', '10.80.0.0/16', 'via', '192.168.210.2', 'metric', '7', 'proto', 'static');
    ipn(a, 'route', 'add', '10.81.0.0/16', 'dev', 'eth0', 'src', '192.168.210.1', 'table', '1000');
    ipn(a, 'neigh', 'add', '192.168.210.9', 'lladdr', '0e:00:00:00:00:09', 'nud', 'stale', 'dev', 'eth0');
    ipn(a, 'link', 'add', 'br-dump', 'type', 'bridge');
    ipn(a, 'link', 'add', 'vp-dump', 'type', 'veth', 'peer', 'name', 'vq-dump');
    ipn(a, 'link', 'set', 'vp-dump', 'master', 'br-dump');
    nsRun(a, 'bridge', ['fdb', 'add', '0e:00:00:00:00:0a', 'dev', 'vp-dump', 'master', 'static']);
    try {
      const routes = [...(await nl.routes(4, { table: 254 })), ...(await nl.routes(4, { table: 1000 }))];
      const ipRoutes = [...ipJson(a, ['-4', 'route', 'show']), ...ipJson(a, ['-4', 'route', 'show', 'table', '1000'])];
      assert.deepEqual(
        routes.map((r) => `${r.dst} ${r.gateway ?? '-'} ${r.priority ?? '-'} ${r.protocol} ${r.prefsrc ?? '-'}`).sort(),
        ipRoutes
          .map(
            (r: any) =>
              `${r.dst}${r.dst.includes('/') ? '' : '/32'} ${r.gateway ?? '-'} ${r.metric ?? '-'} ${r.protocol ?? 'boot'} ${r.prefsrc ?? '-'}`,
          )
          .sort(),
      );
      assert.ok(routes.some((r) => r.table === 1000 && r.prefsrc === '192.168.210.1'));
      const neigh = (await nl.neighbours(eth0)).find((n) => n.ip === '192.168.210.9');
      const ipNeigh = ipJson(a, ['neigh', 'show', '192.168.210.9', 'dev', 'eth0'])[0];
      assert.deepEqual(
        [neigh?.mac, neigh?.state.map((x) => x.toUpperCase()), neigh?.permanent],
        [ipNeigh.lladdr, ipNeigh.state, false],
      );
      const br = (await nl.linkByName('br-dump'))!.index;
      const port = (await nl.linkByName('vp-dump'))!.index;
      const entry = (await nl.fdbOfBridge(br)).find((f) => f.mac === '0e:00:00:00:00:0a');
      const shown = bridgeJson(a, ['fdb', 'show', 'br', 'br-dump']).find((f: any) => f.mac === '0e:00:00:00:00:0a');
      assert.deepEqual([entry?.index, entry?.self, shown.ifname, shown.master], [port, false, 'vp-dump', 'br-dump']);
    } finally {
      ipn(a, 'link', 'del', 'vp-dump');
      ipn(a, 'link', 'del', 'br-dump');
      ipn(a, 'neigh', 'del', '192.168.210.9', 'dev', 'eth0');
      ipn(a, 'route', 'del', '10.80.0.0/16');
      ipn(a, 'route', 'del', '10.81.0.0/16', 'table', '1000');
    }
  });

  it('creates a vxlan with port, learning and GBP and reads them back', async () => {
    await nl.createVxlan({
      name: 'vx42',
      id: 42,
      local: '192.168.210.1',
      link: eth0,
      port: 4789,
      learning: true,
      gbp: true,
      mac: '0e:42:00:00:00:01',
      mtu: 1400,
    });
    const [ip] = ipJson(a, ['-d', 'link', 'show', 'vx42']);
    assert.equal(ip.address, '0e:42:00:00:00:01');
    assert.equal(ip.mtu, 1400);
    assert.equal(ip.linkinfo.info_data.port, 4789);
    assert.equal(ip.linkinfo.info_data.learning, true);
    assert.equal(ip.linkinfo.info_data.gbp, true);
    const link = (await nl.linkByName('vx42'))!;
    assert.deepEqual(link.vxlan, {
      id: 42,
      local: '192.168.210.1',
      link: eth0,
      port: 4789,
      learning: true,
      gbp: true,
      group: null,
      l2miss: false,
      l3miss: false,
    });
    await nl.setLinkMtu(link.index, 1300);
    await nl.setLinkMac(link.index, '0e:42:00:00:00:02');
    await nl.setLinkUp(link.index);
    const after = ipJson(a, ['link', 'show', 'vx42'])[0];
    assert.deepEqual([after.mtu, after.address, after.flags.includes('UP')], [1300, '0e:42:00:00:00:02', true]);
    await nl.deleteLink(link.index);
    assert.equal(await nl.linkByName('vx42'), undefined);
  });

  it('reports kernel errors with the errno name and the operation', async () => {
    await nl.addAddress(eth0, '192.168.211.1/32');
    const dup = await nl.addAddress(eth0, '192.168.211.1/32').catch((e) => e);
    assert.ok(dup instanceof NetlinkError);
    assert.equal(dup.code, 'EEXIST');
    assert.equal(dup.op, `newAddress 192.168.211.1/32 dev ${eth0}`);
    await nl.deleteAddress(eth0, '192.168.211.1/32');
    assert.equal((await nl.deleteRoute({ dst: '10.9.9.0/24' }).catch((e) => e)).code, 'ESRCH');
    assert.equal((await nl.deleteLink(999_999).catch((e) => e)).code, 'ENODEV');
    await assert.rejects(
      nl.createVxlan({ name: 'vxbad', id: 2 ** 24, learning: false, gbp: false }),
      (e: any) => e.code === 'ERANGE' || e.code === 'EINVAL',
    );
  });

  it('replaces and deletes routes: scope link, via a gateway, onlink', async () => {
    await nl.replaceRoute({ dst: '10.50.0.0/24', oif: eth0 });
    await nl.replaceRoute({ dst: '10.51.0.0/24', gateway: '192.168.210.2' });
    await nl.replaceRoute({ dst: '10.52.0.0/24', gateway: '10.52.0.0', oif: eth0, onlink: true });
    // Filtered by `proto boot` (what we write, like iproute2), so ip leaves the proto out of each line.
    const lines = () =>
      nsRun(a, 'ip', ['-4', 'route', 'show', 'proto', 'boot'])
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean);
    assert.deepEqual(lines(), [
      '10.50.0.0/24 dev eth0 scope link',
      '10.51.0.0/24 via 192.168.210.2 dev eth0',
      '10.52.0.0/24 via 10.52.0.0 dev eth0 onlink',
    ]);
    const onlink = (await nl.routes(4, { dst: '10.52.0.0/24' }))[0]!;
    assert.deepEqual([onlink.onlink, onlink.gateway, onlink.scope], [true, '10.52.0.0', 'universe']);
    await nl.replaceRoute({ dst: '10.51.0.0/24', gateway: '192.168.210.9' });
    assert.ok(lines().includes('10.51.0.0/24 via 192.168.210.9 dev eth0'));
    // A scope-link route must be deletable too (delete uses scope NOWHERE, like iproute2).
    for (const dst of ['10.50.0.0/24', '10.51.0.0/24', '10.52.0.0/24']) await nl.deleteRoute({ dst });
    assert.deepEqual(lines(), []);
  });

  it('answers route lookups like ip route get', async () => {
    await nl.replaceRoute({ dst: '10.60.0.0/16', gateway: '192.168.210.2' });
    assert.deepEqual(await nl.routeGet('10.60.1.1'), {
      type: 'unicast',
      oif: eth0,
      gateway: '192.168.210.2',
      prefsrc: '192.168.210.1',
    });
    assert.deepEqual(await nl.routeGet('192.168.210.2'), { type: 'unicast', oif: eth0, prefsrc: '192.168.210.1' });
    assert.equal((await nl.routeGet('8.8.8.8').catch((e) => e)).code, 'ENETUNREACH');
    await nl.deleteRoute({ dst: '10.60.0.0/16' });
  });

  it('replaces neighbours and appends, replaces and deletes FDB entries on a vxlan device', async () => {
    await nl.createVxlan({ name: 'vx1', id: 1, local: '192.168.210.1', link: eth0, learning: false, gbp: false });
    const vx = (await nl.linkByName('vx1'))!.index;
    await nl.replaceNeighbour({ index: vx, ip: '10.70.2.0', mac: '0e:00:00:00:00:02' });
    await nl.replaceNeighbour({ index: vx, ip: '10.70.2.0', mac: '0e:00:00:00:00:03' });
    assert.deepEqual(
      ipJson(a, ['neigh', 'show', 'dev', 'vx1']).map((n: any) => `${n.dst} ${n.lladdr} ${n.state}`),
      ['10.70.2.0 0e:00:00:00:00:03 PERMANENT'],
    );
    assert.deepEqual(await nl.neighbours(vx), [
      { index: vx, ip: '10.70.2.0', mac: '0e:00:00:00:00:03', permanent: true, state: ['permanent'] },
    ]);

    await nl.appendFdb({ index: vx, mac: '00:00:00:00:00:00', dst: '192.168.210.2' });
    await nl.appendFdb({ index: vx, mac: '00:00:00:00:00:00', dst: '192.168.210.3' });
    await nl.replaceFdb({ index: vx, mac: '0e:00:00:00:00:03', dst: '192.168.210.2' });
    await nl.replaceFdb({ index: vx, mac: '0e:00:00:00:00:03', dst: '192.168.210.4' });
    const fdbLines = () =>
      bridgeJson(a, ['fdb', 'show', 'dev', 'vx1'])
        .map((f: any) => `${f.mac} ${f.dst} ${f.flags} ${f.state}`)
        .sort();
    assert.deepEqual(fdbLines(), [
      '00:00:00:00:00:00 192.168.210.2 self permanent',
      '00:00:00:00:00:00 192.168.210.3 self permanent',
      '0e:00:00:00:00:03 192.168.210.4 self permanent',
    ]);
    assert.deepEqual(
      (await nl.fdb(vx)).map((f) => `${f.mac} ${f.dst}`).sort(),
      fdbLines().map((l) => l.split(' ').slice(0, 2).join(' ')),
    );
    await nl.deleteFdb({ index: vx, mac: '00:00:00:00:00:00', dst: '192.168.210.3' });
    await nl.deleteFdb({ index: vx, mac: '0e:00:00:00:00:03', dst: '192.168.210.4' });
    await nl.deleteNeighbour({ index: vx, ip: '10.70.2.0' });
    assert.deepEqual(fdbLines(), ['00:00:00:00:00:00 192.168.210.2 self permanent']);
    assert.deepEqual(ipJson(a, ['neigh', 'show', 'dev', 'vx1']), []);
    await nl.deleteLink(vx);
  });

  it('pipelines a batch of 2000 routes and reports each failure', async () => {
    const dsts = Array.from({ length: 2000 }, (_, i) => `10.${100 + (i >> 8)}.${i & 255}.0/24`);
    const errors = await nl.batch(
      dsts.map((dst) => () => nl.replaceRoute({ dst, gateway: '10.99.0.1', oif: eth0, onlink: true })),
    );
    assert.deepEqual(errors, []);
    assert.equal((await nl.routes(4, { oif: eth0 })).filter((r) => r.gateway === '10.99.0.1').length, 2000);
    assert.equal(nsRun(a, 'ip', ['-4', 'route', 'show', 'via', '10.99.0.1']).trim().split('\n').length, 2000);
    const del = await nl.batch([...dsts, '10.250.0.0/24'].map((dst) => () => nl.deleteRoute({ dst })));
    assert.deepEqual(
      del.map((e) => e.code),
      ['ESRCH'],
    );
    assert.equal(nsRun(a, 'ip', ['-4', 'route', 'show', 'via', '10.99.0.1']).trim(), '');
  });

  it('sends one turn of mixed writes together: a refused one in the middle fails alone, the rest land in order', async () => {
    await nl.createVxlan({ name: 'vx3', id: 3, local: '192.168.210.1', link: eth0, learning: false, gbp: false });
    await nl.setLinkUp((await nl.linkByName('vx3'))!.index);
    const vx = (await nl.linkByName('vx3'))!.index;
    const writes = Array.from({ length: 300 }, (_, i) => i).flatMap((i) => {
      const ip = `10.${81 + (i >> 8)}.${i & 255}.0`;
      const mac = `0e:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
      return [
        nl.replaceNeighbour({ index: vx, ip, mac }),
        nl.replaceFdb({ index: vx, mac, dst: `198.18.${i >> 8}.${i & 255}` }),
        nl.replaceRoute({ dst: `${ip}/24`, gateway: ip, oif: vx, onlink: true }),
      ];
    });
    const refused = nl.replaceNeighbour({ index: 999_999, ip: '10.99.9.9', mac: '0e:00:00:00:99:99' });
    const after = nl.replaceRoute({ dst: '10.90.0.0/24', gateway: '10.90.0.0', oif: vx, onlink: true });
    const settled = await Promise.allSettled([...writes, refused, after]);
    const failed = settled.flatMap((r) => (r.status === 'rejected' ? [`${r.reason.op}: ${r.reason.code}`] : []));
    assert.deepEqual(failed, ['newNeighbor 10.99.9.9 lladdr 0e:00:00:00:99:99 dev 999999: ENODEV']);
    assert.equal(ipJson(a, ['neigh', 'show', 'dev', 'vx3', 'nud', 'permanent']).length, 300);
    assert.equal(
      bridgeJson(a, ['fdb', 'show', 'dev', 'vx3']).filter((f: any) => f.dst?.startsWith('198.18.')).length,
      300,
    );
    assert.equal(
      ipJson(a, ['route', 'show', 'dev', 'vx3']).filter((r: any) => r.flags?.includes('onlink')).length,
      301,
    );
    await nl.deleteLink(vx);
  });

  it('streams link events until aborted', async () => {
    const ctl = new AbortController();
    const seen: LinkWatchEvent[] = [];
    const done = (async () => {
      for await (const ev of nl.watchLinks(ctl.signal)) {
        seen.push(ev);
        if (ev.type === 'del' && ev.link.name === 'evt0') break;
      }
    })();
    await new Promise((r) => setTimeout(r, 50));
    ipn(a, 'link', 'add', 'evt0', 'type', 'veth', 'peer', 'name', 'evt1');
    ipn(a, 'link', 'del', 'evt0');
    const timer = setTimeout(() => ctl.abort(), 2000);
    await done;
    clearTimeout(timer);
    ctl.abort();
    assert.ok(seen.some((e) => e.type === 'new' && e.link.name === 'evt0' && e.link.kind === 'veth'));
    assert.ok(seen.some((e) => e.type === 'del' && e.link.name === 'evt0'));
  });

  it('refuses requests after close and bad options up front', async () => {
    const h = await openNetlink({ netns: a });
    h.close();
    assert.equal((await h.links().catch((e) => e)).code, 'ECLOSED');
    await assert.rejects(openNetlink({ timeoutMs: 0 }), /timeoutMs 0 must be positive/);
    await assert.rejects(openNetlink({ netns: 'fl-no-such-ns' }), /network namespace \/var\/run\/netns\/fl-no-such-ns/);
  });
});
