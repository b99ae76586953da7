import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { backendFactories, createBackend } from '../../src/backend/registry.ts';
import { VxlanBackend } from '../../src/backend/vxlan/backend.ts';
import type { BackendContext } from '../../src/backend/backend.ts';

const ctx = (backendType: string): BackendContext => ({
  subnetManager: {} as BackendContext['subnetManager'],
  extIface: { name: 'eth0', index: 2, mtu: 1500, ifaceAddr: '192.168.1.11', extAddr: '192.168.1.11' },
  config: { enableIPv4: true, enableIPv6: false, enableNFTables: false, subnetLen: 24, backendType, backend: { Type: backendType } },
  netlink: {} as BackendContext['netlink'],
});

describe('backend registry', () => {
  it('knows vxlan and matches the type case-insensitively', () => {
    assert.ok('vxlan' in backendFactories);
    assert.ok(createBackend(ctx('vxlan')) instanceof VxlanBackend);
    assert.ok(createBackend(ctx('VXLAN')) instanceof VxlanBackend);
  });

  it('refuses unknown types with real flannel\'s message', () => {
    assert.throws(() => createBackend(ctx('carrier-pigeon')), /^Error: unknown backend type: carrier-pigeon$/);
    assert.throws(() => createBackend(ctx('')), /^Error: unknown backend type: $/);
    assert.throws(() => createBackend(ctx('toString')), /unknown backend type: toString/);
  });
});
