// Flannel's etcd v3 keyspace (spec §3.1-3.3): config, subnet keys with 24 h etcd leases, reservations.
import type { Etcd3, IKeyValue } from 'etcd3';
import { decodeLeaseValue, encodeLeaseValue, formatSubnetKey, LeaseJsonError, parseSubnetKey } from '../lease-json.ts';
import { makeLease, type Lease, type LeaseAttrs } from '../lease.ts';

/** What names a lease's key: the v4 subnet, the v6 subnet, or both. */
export type LeaseSubnets = Pick<Lease, 'subnet' | 'ipv6Subnet'>;

/** flannel's fixed etcd lease TTL: 24 h. */
export const LEASE_TTL_SECONDS = 86400;

const LIST_CONCURRENCY = 64;

const CONFIG_NOT_FOUND = 'flannel config not found in etcd store. Did you create your config using etcdv3 API?';

/** A subnet key whose value could not be read; callers log and skip it. */
export interface MalformedKey {
  key: string;
  error: string;
}

export interface LeaseList {
  leases: Lease[];
  malformed: MalformedKey[];
  /** The store revision of the listing; watch from revision + 1. */
  revision: string;
}

function joinKey(prefix: string, ...parts: string[]): string {
  return [prefix.replace(/\/+$/, ''), ...parts].join('/');
}

export class EtcdRegistry {
  constructor(
    readonly client: Etcd3,
    readonly prefix: string,
    private readonly ttlSeconds = LEASE_TTL_SECONDS,
  ) {}

  get configKey(): string {
    return joinKey(this.prefix, 'config');
  }

  /** Ends with `/`, so `/coreos.com/network/subnets2` is not matched. */
  get subnetsPrefix(): string {
    return joinKey(this.prefix, 'subnets', '');
  }

  subnetKey(s: LeaseSubnets): string {
    return joinKey(this.prefix, 'subnets', formatSubnetKey(s.subnet, s.ipv6Subnet));
  }

  async getConfigText(): Promise<string> {
    const text = await this.client.get(this.configKey).string();
    if (text === null) throw new Error(CONFIG_NOT_FOUND);
    return text;
  }

  /** When the etcd lease behind `leaseId` runs out; null for "0" (no lease: a reservation). */
  async expirationOf(leaseId: string): Promise<Date | null> {
    if (leaseId === '0' || leaseId === '') return null;
    const res = await this.client.leaseClient.leaseTimeToLive({ ID: leaseId });
    // TTL -1: the lease has just expired and etcd is about to delete the key.
    return new Date(Date.now() + Math.max(0, Number(res.TTL)) * 1000);
  }

  /**
   * Turns a watched or listed key into a Lease. Null for keys that are not subnets; throws LeaseJsonError for a
   * malformed value.
   */
  async leaseFromKv(kv: IKeyValue): Promise<Lease | null> {
    const key = kv.key.toString();
    const parsed = parseSubnetKey(key);
    if (!parsed) return null;
    const attrs = decodeLeaseValue(kv.value.toString(), key);
    return makeLease(parsed, attrs, await this.expirationOf(String(kv.lease ?? '0')));
  }

  async listLeases(): Promise<LeaseList> {
    const res = await this.client.getAll().prefix(this.subnetsPrefix).exec();
    const out: LeaseList = { leases: [], malformed: [], revision: res.header.revision };
    // One LeaseTimeToLive per key: ask in parallel, a bounded number at a time.
    for (let i = 0; i < res.kvs.length; i += LIST_CONCURRENCY) {
      const chunk = res.kvs.slice(i, i + LIST_CONCURRENCY);
      const read = await Promise.all(
        chunk.map((kv) =>
          this.leaseFromKv(kv).catch((e: unknown) => {
            if (!(e instanceof LeaseJsonError)) throw e;
            out.malformed.push({ key: kv.key.toString(), error: e.message });
            return null;
          }),
        ),
      );
      for (const l of read) if (l) out.leases.push(l);
    }
    return out;
  }

  /**
   * Transactional create-if-absent with a fresh 24 h etcd lease. Returns null (after revoking the granted
   * lease) when the key already exists.
   */
  async createLease(subnets: LeaseSubnets, attrs: LeaseAttrs): Promise<Lease | null> {
    const key = this.subnetKey(subnets);
    const { grant, expiration } = await this.grant();
    let succeeded = false;
    try {
      const res = await this.client
        .if(key, 'Version', '==', 0)
        .then(this.client.put(key).value(encodeLeaseValue(attrs)).lease(grant.ID))
        .commit();
      succeeded = res.succeeded;
    } finally {
      if (!succeeded) await this.revoke(grant.ID);
    }
    return succeeded ? makeLease(subnets, attrs, expiration) : null;
  }

  /** Rewrites a lease: a new 24 h etcd lease and a plain put; `reservation` keeps the key lease-less. */
  async updateLease(subnets: LeaseSubnets, attrs: LeaseAttrs, reservation: boolean): Promise<Lease> {
    const key = this.subnetKey(subnets);
    const value = encodeLeaseValue(attrs);
    if (reservation) {
      await this.client.put(key).value(value).exec();
      return makeLease(subnets, attrs, null);
    }
    const { grant, expiration } = await this.grant();
    try {
      await this.client.put(key).value(value).lease(grant.ID).exec();
    } catch (e) {
      await this.revoke(grant.ID);
      throw e;
    }
    return makeLease(subnets, attrs, expiration);
  }

  async deleteLease(subnets: LeaseSubnets): Promise<void> {
    await this.client.delete().key(this.subnetKey(subnets)).exec();
  }

  /** A fresh etcd lease of the configured TTL and when it runs out. */
  private async grant(): Promise<{ grant: { ID: string }; expiration: Date }> {
    const grant = await this.client.leaseClient.leaseGrant({ TTL: this.ttlSeconds, ID: 0 });
    return { grant, expiration: new Date(Date.now() + Number(grant.TTL) * 1000) };
  }

  private async revoke(id: string): Promise<void> {
    try {
      await this.client.leaseClient.leaseRevoke({ ID: id });
    } catch {
      // It expires by itself after the TTL; nothing holds it.
    }
  }
}
