import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { backendFactories, backendTypes, createBackend } from '../../src/backend/registry.ts';
import { VxlanBackend } from '../../src/backend/vxlan/backend.ts';
import type { BackendContext } from '../../src/backend/backend.ts';

const ctx = (backendType: string): BackendContext => ({
  subnetManager: {} as BackendContext['subnetManager'],
  extIface: { name: 'eth0', index: 2, mtu: 1500, ifaceAddr: '192.168.1.11', extAddr: '192.168.1.11' },
  config: {
    enableIPv4: true,
    enableIPv6: false,
    enableNFTables: false,
    subnetLen: 24,
    backendType,
    backend: { Type: backendType },
  },
  netlink: {} as BackendContext['netlink'],
});

describe('backend registry', () => {
  it('knows vxlan and matches the type case-insensitively', () => {
    assert.ok('vxlan' in backendFactories);
    assert.ok(createBackend(ctx('vxlan')) instanceof VxlanBackend);
    assert.ok(createBackend(ctx('VXLAN')) instanceof VxlanBackend);
  });

  it('lists the registered types', () => {
    assert.deepEqual(backendTypes, ['vxlan', 'host-gw', 'udp']);
  });

  it("refuses unknown types with real flannel's message, then where to set the type and the valid ones", () => {
    const fix = '; set Backend.Type in the network config to one of: vxlan, host-gw, udp';
    const refuses = (type: string, message: string) =>
      assert.throws(
        () => createBackend(ctx(type)),
        (e: Error) => {
          assert.equal(e.message, message);
          return true;
        },
      );
    refuses('carrier-pigeon', `unknown backend type: carrier-pigeon${fix}`);
    refuses('', `unknown backend type: ${fix}`);
    refuses('toString', `unknown backend type: toString${fix}`);
    refuses('Carrier-Pigeon', `unknown backend type: Carrier-Pigeon${fix}`);
  });
});
