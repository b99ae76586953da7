// Who wrote the own subnet key (pure): ours, garbage, detached from its etcd lease, or another writer's lease.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IPv4Net } from '../../src/ip/ipv4.ts';
import { allocationRange, decideAllocation } from '../../src/subnet/allocate.ts';
import { parseNetworkConfig } from '../../src/config/parse.ts';
import { classifyOwnKey, duplicatePublicIPMessage, sameBackend, vtepMacOf } from '../../src/subnet/etcd/ownership.ts';
import type { LeaseAttrs } from '../../src/subnet/lease.ts';

const KEY = '/coreos.com/network/subnets/10.5.1.0-24';
const attrs = (mac: string, ip = '10.0.2.15'): LeaseAttrs => ({
  publicIP: ip,
  publicIPv6: null,
  backendType: 'vxlan',
  backendData: { VNI: 1, VtepMAC: mac },
});
const value = (mac: string, ip = '10.0.2.15') =>
  `{"PublicIP":"${ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`;
const held = { attrs: attrs('aa:aa:aa:aa:aa:01'), leaseId: '7587', revision: '40' };

describe('classifyOwnKey', () => {
  it('is ours at the revision we wrote, or with our value on our etcd lease', () => {
    assert.deepEqual(classifyOwnKey(KEY, { value: 'anything', leaseId: '1', modRevision: '40' }, held), {
      kind: 'ours',
    });
    assert.deepEqual(
      classifyOwnKey(KEY, { value: value('aa:aa:aa:aa:aa:01'), leaseId: '7587', modRevision: '41' }, held),
      { kind: 'ours' },
    );
  });

  it('names garbage, a detached key and another writer', () => {
    const bad = classifyOwnKey(KEY, { value: 'garbage', leaseId: '0', modRevision: '41' }, held);
    assert.equal(bad.kind, 'malformed');
    assert.deepEqual(
      classifyOwnKey(KEY, { value: value('aa:aa:aa:aa:aa:01'), leaseId: '0', modRevision: '41' }, held),
      { kind: 'detached' },
    );
    assert.deepEqual(
      classifyOwnKey(KEY, { value: value('bb:bb:bb:bb:bb:02'), leaseId: '9001', modRevision: '41' }, held),
      { kind: 'foreign', attrs: attrs('bb:bb:bb:bb:bb:02') },
    );
    // The same value on an etcd lease that is not ours: a second writer all the same (host-gw has no VtepMAC).
    assert.equal(
      classifyOwnKey(KEY, { value: value('aa:aa:aa:aa:aa:01'), leaseId: '9001', modRevision: '41' }, held).kind,
      'foreign',
    );
  });

  it('treats a reservation (no etcd lease) rewritten with its own value as ours', () => {
    const reservation = { ...held, leaseId: '0' };
    assert.deepEqual(
      classifyOwnKey(KEY, { value: value('aa:aa:aa:aa:aa:01'), leaseId: '0', modRevision: '41' }, reservation),
      { kind: 'ours' },
    );
  });
});

describe('the duplicate public IP message', () => {
  it('names the key, the shared public IP, both VtepMACs and the flags that fix it', () => {
    assert.equal(
      duplicatePublicIPMessage(KEY, attrs('aa:aa:aa:aa:aa:01'), attrs('bb:bb:bb:bb:bb:02')),
      `${KEY} is held by another node with the same public IP 10.0.2.15: its VtepMAC is bb:bb:bb:bb:bb:02, this node's is ` +
        "aa:aa:aa:aa:aa:01. Two nodes share one public IP (Vagrant's NAT address 10.0.2.15 on every VM does this); give each " +
        'node its own address with --iface, --iface-regex, --iface-can-reach or --public-ip',
    );
  });

  it('says "none" for backends without a VtepMAC and compares backend data', () => {
    assert.equal(
      vtepMacOf({ publicIP: '10.0.0.1', publicIPv6: null, backendType: 'host-gw', backendData: null }),
      'none',
    );
    assert.ok(sameBackend(attrs('aa:aa:aa:aa:aa:01', '1.1.1.1'), attrs('aa:aa:aa:aa:aa:01', '2.2.2.2')));
    assert.ok(!sameBackend(attrs('aa:aa:aa:aa:aa:01'), attrs('aa:aa:aa:aa:aa:02')));
  });
});

describe('decideAllocation with excluded subnets', () => {
  const range = allocationRange(parseNetworkConfig('{"Network":"10.5.0.0/16"}', { validate: true }));
  it('skips the previous subnet and random picks that are excluded (lost races, keys holding garbage)', () => {
    const d = decideAllocation({
      range,
      leases: [],
      publicIP: '10.0.0.1',
      previousSubnet: IPv4Net.parse('10.5.3.0/24'),
      exclude: [{ subnet: IPv4Net.parse('10.5.3.0/24') }, { subnet: IPv4Net.parse('10.5.0.0/24') }],
      random: () => 0,
    });
    assert.equal(d.kind, 'create');
    assert.equal(d.kind === 'create' && d.subnet?.toString(), '10.5.1.0/24');
    assert.equal(d.kind === 'create' && d.source, 'random');
  });
});
