import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IPv4Net } from '../../src/ip/ipv4.ts';
import { IPv6Net } from '../../src/ip/ipv6.ts';
import { openNetlink, type Netlink } from '../../src/netlink/index.ts';
import { BLACKHOLE_METRIC, ensureBlackholeRoute } from '../../src/daemon/blackhole.ts';
import { ipJson, isRoot, Netns, nsRun } from '../helpers/netns.ts';

describe('--ip-blackhole-route', { skip: !isRoot && 'needs root' }, () => {
  const netns = new Netns();
  let ns = '';
  let nl: Netlink;
  before(async () => {
    ns = netns.add('fbh');
    nl = await openNetlink({ netns: ns });
  });
  after(() => {
    nl?.close();
    netns.cleanup();
  });

  it('adds a high-metric blackhole for the own subnet beside the bridge route, and restores it when deleted', async () => {
    // The bridge's own route for the subnet, as the bridge plugin leaves it.
    nsRun(ns, 'ip', ['link', 'add', 'cni0', 'type', 'bridge']);
    nsRun(ns, 'ip', ['addr', 'add', '10.244.7.1/24', 'dev', 'cni0']);
    nsRun(ns, 'ip', ['link', 'set', 'cni0', 'up']);
    const stop = new AbortController();
    const loop = ensureBlackholeRoute(nl, IPv4Net.parse('10.244.7.0/24'), 1, stop.signal);
    const routes = async () => {
      for (let i = 0; i < 30; i++) {
        const r = ipJson(ns, ['route', 'show', '10.244.7.0/24']);
        if (r.some((x) => x.type === 'blackhole')) return r;
        await new Promise((res) => setTimeout(res, 100));
      }
      return ipJson(ns, ['route', 'show', '10.244.7.0/24']);
    };
    let r = await routes();
    assert.ok(
      r.some((x) => x.type === 'blackhole' && x.metric === BLACKHOLE_METRIC),
      JSON.stringify(r),
    );
    assert.ok(
      r.some((x) => x.dev === 'cni0' && x.protocol === 'kernel'),
      'the bridge route is untouched',
    );
    assert.equal(nsRun(ns, 'ip', ['route', 'get', '10.244.7.9']).includes('dev cni0'), true, 'pods still reach cni0');
    nsRun(ns, 'ip', ['route', 'del', 'blackhole', '10.244.7.0/24', 'metric', String(BLACKHOLE_METRIC)]);
    r = await routes();
    assert.ok(
      r.some((x) => x.type === 'blackhole'),
      'restored by the next period',
    );
    stop.abort();
    await loop;
    assert.equal(ipJson(ns, ['route', 'show', '10.244.7.0/24']).filter((x) => x.type === 'blackhole').length, 1);
  });

  it('does the same for the own IPv6 subnet (dual stack and IPv6-only)', async () => {
    nsRun(ns, 'ip', ['link', 'add', 'cni6', 'type', 'bridge']);
    nsRun(ns, 'ip', ['-6', 'addr', 'add', 'fd44:244:0:7::1/64', 'dev', 'cni6', 'nodad']);
    nsRun(ns, 'ip', ['link', 'set', 'cni6', 'up']);
    const stop = new AbortController();
    const loop = ensureBlackholeRoute(nl, IPv6Net.parse('fd44:244:0:7::/64'), 1, stop.signal);
    const blackholes = () =>
      ipJson(ns, ['-6', 'route', 'show', 'fd44:244:0:7::/64']).filter((x) => x.type === 'blackhole');
    for (let i = 0; i < 30 && blackholes().length === 0; i++) await new Promise((res) => setTimeout(res, 100));
    assert.deepEqual(
      blackholes().map((x) => x.metric),
      [BLACKHOLE_METRIC],
    );
    assert.equal(
      nsRun(ns, 'ip', ['-6', 'route', 'get', 'fd44:244:0:7::9']).includes('dev cni6'),
      true,
      'pods still reach the bridge',
    );
    stop.abort();
    await loop;
    assert.equal(blackholes().length, 1);
  });
});
