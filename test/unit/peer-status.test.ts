import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PeerStatusBook } from '../../src/backend/peer-status.ts';
import { VxlanPeerStatus, outcomeOf } from '../../src/backend/vxlan/status.ts';
import { IPv4Net } from '../../src/ip/ipv4.ts';
import { IPv6Net } from '../../src/ip/ipv6.ts';

/** A book on a clock the test moves: each tick is one second after 2026-01-01T00:00:00Z. */
function book(): { book: PeerStatusBook; tick(): void } {
  let t = Date.parse('2026-01-01T00:00:00Z');
  return { book: new PeerStatusBook(() => new Date(t)), tick: () => void (t += 1000) };
}

describe('PeerStatusBook', () => {
  it('starts empty', () => {
    assert.deepEqual(new PeerStatusBook().list(), []);
  });

  it('records a programmed peer with no reason and the time it was recorded', () => {
    const { book: b } = book();
    b.set('10.244.2.0/24', { subnet: '10.244.2.0/24', publicIP: '192.168.1.12', state: 'programmed' });
    assert.deepEqual(b.list(), [
      { subnet: '10.244.2.0/24', publicIP: '192.168.1.12', state: 'programmed', since: '2026-01-01T00:00:00.000Z' },
    ]);
    assert.equal(
      JSON.stringify(b.list()[0]),
      '{"subnet":"10.244.2.0/24","publicIP":"192.168.1.12","state":"programmed","since":"2026-01-01T00:00:00.000Z"}',
    );
  });

  it('records a failed peer with its reason', () => {
    const { book: b } = book();
    b.set('k', {
      subnet: '10.244.3.0/24',
      publicIP: '10.99.0.3',
      state: 'failed',
      reason: 'the kernel refused the route',
    });
    assert.deepEqual(b.get('k'), {
      subnet: '10.244.3.0/24',
      publicIP: '10.99.0.3',
      state: 'failed',
      reason: 'the kernel refused the route',
      since: '2026-01-01T00:00:00.000Z',
    });
  });

  it('keeps since while nothing changes, however often the state is recorded', () => {
    const { book: b, tick } = book();
    b.set('k', { subnet: '10.244.2.0/24', publicIP: '192.168.1.12', state: 'failed', reason: 'ENETDOWN' });
    tick();
    b.set('k', { subnet: '10.244.2.0/24', publicIP: '192.168.1.12', state: 'failed', reason: 'ENETDOWN' });
    assert.equal(b.get('k')!.since, '2026-01-01T00:00:00.000Z');
  });

  it('moves since when the state, the reason, the public IP or the subnet changes', () => {
    const { book: b, tick } = book();
    const peer = { subnet: '10.244.2.0/24', publicIP: '192.168.1.12' };
    b.set('k', { ...peer, state: 'failed', reason: 'ENETDOWN' });
    tick();
    b.set('k', { ...peer, state: 'failed', reason: 'ENETUNREACH' });
    assert.deepEqual([b.get('k')!.reason, b.get('k')!.since], ['ENETUNREACH', '2026-01-01T00:00:01.000Z']);
    tick();
    b.set('k', { ...peer, state: 'programmed' });
    assert.deepEqual(b.get('k'), { ...peer, state: 'programmed', since: '2026-01-01T00:00:02.000Z' });
    tick();
    b.set('k', { ...peer, publicIP: '192.168.1.13', state: 'programmed' });
    assert.equal(b.get('k')!.since, '2026-01-01T00:00:03.000Z');
    tick();
    b.set('k', { subnet: 'fd00:10:244:2::/64', publicIP: '192.168.1.13', state: 'programmed' });
    assert.deepEqual([b.get('k')!.subnet, b.get('k')!.since], ['fd00:10:244:2::/64', '2026-01-01T00:00:04.000Z']);
  });

  it('drops a reason given with programmed', () => {
    const b = new PeerStatusBook();
    b.set('k', { subnet: '10.244.2.0/24', publicIP: '192.168.1.12', state: 'programmed', reason: 'stale' });
    assert.equal('reason' in b.get('k')!, false);
  });

  it('forgets a deleted peer', () => {
    const b = new PeerStatusBook();
    b.set('a', { subnet: '10.244.2.0/24', publicIP: '192.168.1.12', state: 'programmed' });
    b.set('b', { subnet: '10.244.3.0/24', publicIP: '192.168.1.13', state: 'programmed' });
    b.delete('a');
    b.delete('never there');
    assert.deepEqual(
      b.list().map((s) => s.subnet),
      ['10.244.3.0/24'],
    );
    assert.equal(b.get('a'), undefined);
  });

  it('lists by subnet, numerically, whatever the keys and the order they came in', () => {
    const b = new PeerStatusBook();
    for (const subnet of [
      '10.244.10.0/24',
      'fd00:10:244:2::/64',
      '10.244.9.0/24',
      '10.244.100.0/24',
      '10.244.2.0/24',
    ]) {
      b.set(`key of ${subnet}`, { subnet, publicIP: '192.168.1.12', state: 'programmed' });
    }
    assert.deepEqual(
      b.list().map((s) => s.subnet),
      ['10.244.2.0/24', '10.244.9.0/24', '10.244.10.0/24', '10.244.100.0/24', 'fd00:10:244:2::/64'],
    );
  });

  it('hands out copies: changing what list() or get() returned changes nothing inside', () => {
    const b = new PeerStatusBook();
    b.set('k', { subnet: '10.244.2.0/24', publicIP: '192.168.1.12', state: 'programmed' });
    b.list()[0]!.state = 'failed';
    b.get('k')!.publicIP = '1.2.3.4';
    assert.deepEqual([b.get('k')!.state, b.get('k')!.publicIP], ['programmed', '192.168.1.12']);
  });
});

describe('vxlan peer status: one record per lease from both families', () => {
  const v4 = { subnet: '10.244.2.0/24', publicIP: '192.168.1.12' };
  const v6 = { subnet: 'fd00:10:244:2::/64', publicIP: 'fd12::12' };
  const shown = (s: VxlanPeerStatus) => s.list().map((p) => [p.subnet, p.publicIP, p.state, p.reason]);

  it('lists a dual-stack peer once, by its IPv4 subnet and public IP, programmed when both families are', () => {
    const s = new VxlanPeerStatus([4, 6]);
    s.record(4, '10.244.2.0/24', { ...v4, refusal: null });
    s.record(6, '10.244.2.0/24', { ...v6, refusal: null });
    s.publish('10.244.2.0/24');
    assert.deepEqual(shown(s), [['10.244.2.0/24', '192.168.1.12', 'programmed', undefined]]);
  });

  it('is failed when either family is, with its reason (both when both)', () => {
    const s = new VxlanPeerStatus([4, 6]);
    s.record(4, 'k', { ...v4, refusal: null });
    s.record(6, 'k', {
      ...v6,
      refusal: 'the kernel refused the route fd00:10:244:2::/64 via fd00:10:244:2:: onlink: ENETDOWN',
    });
    s.publish('k');
    assert.deepEqual(shown(s), [
      [
        '10.244.2.0/24',
        '192.168.1.12',
        'failed',
        'the kernel refused the route fd00:10:244:2::/64 via fd00:10:244:2:: onlink: ENETDOWN',
      ],
    ]);
    s.record(4, 'k', { ...v4, refusal: 'v4 refused' });
    s.record(6, 'k', { ...v6, refusal: 'v6 refused' });
    s.publish('k');
    assert.deepEqual(shown(s), [['10.244.2.0/24', '192.168.1.12', 'failed', 'v4 refused; v6 refused']]);
  });

  it('shows nothing new until published (a family still being tried does not make it programmed)', () => {
    const s = new VxlanPeerStatus([4, 6]);
    s.record(4, 'k', { ...v4, refusal: null });
    assert.deepEqual(s.list(), []);
    s.record(6, 'k', { ...v6, refusal: 'refused' });
    s.publish('k');
    assert.deepEqual(
      shown(s).map((r) => r[2]),
      ['failed'],
    );
  });

  it('lists a peer with only IPv6 entries (an IPv6-only peer or network) by its IPv6 subnet and public IPv6', () => {
    const s = new VxlanPeerStatus([6]);
    s.record(6, 'fd00:10:244:2::/64', { ...v6, refusal: null });
    s.publish('fd00:10:244:2::/64');
    assert.deepEqual(shown(s), [['fd00:10:244:2::/64', 'fd12::12', 'programmed', undefined]]);
  });

  it('forgets the lease once no family has it', () => {
    const s = new VxlanPeerStatus([4, 6]);
    s.record(4, 'k', { ...v4, refusal: null });
    s.record(6, 'k', { ...v6, refusal: null });
    s.publish('k');
    s.record(4, 'k', undefined);
    s.publish('k');
    assert.deepEqual(shown(s), [['fd00:10:244:2::/64', 'fd12::12', 'programmed', undefined]], 'the IPv6 half left');
    s.record(6, 'k', undefined);
    s.publish('k');
    assert.deepEqual(s.list(), []);
  });

  it("takes a plan's subnet and public IP", () => {
    assert.deepEqual(
      outcomeOf(
        {
          mode: 'overlay',
          subnet: IPv4Net.parse('10.244.2.0/24'),
          publicIP: '192.168.1.12',
          vtepMac: '0e:00:00:00:00:02',
        },
        null,
      ),
      { ...v4, refusal: null },
    );
    assert.deepEqual(
      outcomeOf({ mode: 'direct', subnet: IPv6Net.parse('fd00:10:244:2::/64'), publicIP: 'fd12::12' }, 'no'),
      { ...v6, refusal: 'no' },
    );
  });
});
