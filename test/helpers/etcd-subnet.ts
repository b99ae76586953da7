// Fixture for EtcdSubnetManager tests against a real etcd: one etcd and admin client per suite, a fresh key prefix
// per test (with the network config written), managers closed at the end, and etcdctl for reading what etcd holds.
import { Etcd3 } from 'etcd3';
import { EtcdSubnetManager, type EtcdSubnetManagerOptions } from '../../src/subnet/etcd/manager.ts';
import type { Lease, LeaseAttrs } from '../../src/subnet/lease.ts';
import { startEtcd, type EtcdHandle } from './etcd.ts';

/** A vxlan lease's attrs and the exact JSON flannel stores for them. */
export const vxlanAttrs = (ip: string, mac: string): LeaseAttrs => ({
  publicIP: ip,
  publicIPv6: null,
  backendType: 'vxlan',
  backendData: { VNI: 1, VtepMAC: mac },
});
export const vxlanValue = (ip: string, mac: string) =>
  `{"PublicIP":"${ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`;

export class EtcdSubnetFixture {
  etcd!: EtcdHandle;
  admin!: Etcd3;
  readonly stop = new AbortController();
  private readonly managers: EtcdSubnetManager[] = [];
  private prefixSeq = 0;

  /** `config` is written to each fresh prefix; `tag` names the prefixes (`/<tag>-<pid>-<n>/network`). */
  constructor(
    private readonly config: string,
    private readonly tag: string,
  ) {}

  start = async (): Promise<void> => {
    this.etcd = await startEtcd();
    this.admin = new Etcd3({ hosts: this.etcd.endpoint });
  };

  /** Aborts `stop`, closes every manager, the admin client and etcd (also after a failed start). */
  destroy = async (): Promise<void> => {
    this.stop.abort();
    for (const m of this.managers) await m.close();
    this.admin?.close();
    await this.etcd?.destroy();
  };

  freshPrefix = async (withConfig = true): Promise<string> => {
    const prefix = `/${this.tag}-${process.pid}-${++this.prefixSeq}/network`;
    if (withConfig) await this.admin.put(`${prefix}/config`).value(this.config);
    return prefix;
  };

  manager = (prefix: string, extra: Partial<EtcdSubnetManagerOptions> = {}): EtcdSubnetManager => {
    const m = new EtcdSubnetManager({ endpoints: [this.etcd.endpoint], prefix, renewMarginMinutes: 60, ...extra });
    this.managers.push(m);
    return m;
  };

  acquire = async (m: EtcdSubnetManager, attrs: LeaseAttrs): Promise<Lease> => {
    await m.getNetworkConfig(this.stop.signal);
    return m.acquireLease(attrs, this.stop.signal);
  };

  /** The keys under `<prefix>/subnets/`, without that part, sorted. */
  keys = async (prefix: string): Promise<string[]> =>
    (await this.admin.getAll().prefix(`${prefix}/subnets/`).keys())
      .map((k) => k.slice(`${prefix}/subnets/`.length))
      .sort();

  etcdctl = (...args: string[]): string => this.etcd.etcdctl(...args);
}
