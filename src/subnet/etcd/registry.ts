// Flannel's etcd v3 keyspace: config, subnet keys with 24 h etcd leases, reservations (docs/COMPATIBILITY.md,
// "etcd keys", "Lease JSON", "etcd leases and renewal").
import type { EtcdClient } from './client.ts';
import type { KeyValue } from './proto.ts';
import { decodeLeaseValue, encodeLeaseValue, formatSubnetKey, LeaseJsonError, parseSubnetKey } from '../lease-json.ts';
import { makeLease, type Lease, type LeaseAttrs } from '../lease.ts';
import { parseNetworkConfig } from '../../config/parse.ts';
import type { NetworkConfig } from '../../config/network-config.ts';

/** What names a lease's key: the v4 subnet, the v6 subnet, or both. */
export type LeaseSubnets = Pick<Lease, 'subnet' | 'ipv6Subnet'>;

/** flannel's fixed etcd lease TTL: 24 h. */
export const LEASE_TTL_SECONDS = 86400;

const CONFIG_NOT_FOUND = 'flannel config not found in etcd store. Did you create your config using etcdv3 API?';

/** A subnet key whose value could not be read; callers log and skip it. */
export interface MalformedKey {
  key: string;
  error: string;
  /** Its mod revision: a node reclaims its own previous subnet from such a key only if nobody wrote it meanwhile. */
  modRevision: string;
}

/** What etcd holds beside a lease's value: the etcd lease the key is attached to ('0': none) and its mod revision. */
export interface KeyMeta {
  leaseId: string;
  modRevision: string;
}

export interface LeaseList {
  leases: Lease[];
  malformed: MalformedKey[];
  /** Keys under subnets/ that do not name a subnet at all. */
  ignored: string[];
  /** Per subnet key of `leases`. */
  meta: Map<string, KeyMeta>;
  /** The store revision of the listing; watch from revision + 1. */
  revision: string;
}

/** A key's value and meta as etcd reports them. */
export function keyStateOf(kv: KeyValue): KeyMeta & { value: string } {
  return { value: kv.value, leaseId: kv.lease, modRevision: kv.modRevision };
}

/** A lease this node wrote: the etcd lease it holds ('0' for a reservation) and the revision of the write. */
export interface WrittenLease {
  lease: Lease;
  leaseId: string;
  revision: string;
}

function joinKey(prefix: string, ...parts: string[]): string {
  return [prefix.replace(/\/+$/, ''), ...parts].join('/');
}

export class EtcdRegistry {
  constructor(
    readonly client: EtcdClient,
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
    const { kv } = await this.client.get(this.configKey);
    if (!kv) throw new Error(CONFIG_NOT_FOUND);
    return kv.value;
  }

  /** `<prefix>/config`, parsed and validated; its errors name the key. */
  async readConfig(): Promise<NetworkConfig> {
    return parseNetworkConfig(await this.getConfigText(), { validate: true, source: this.configKey });
  }

  /** When the etcd lease behind `leaseId` runs out; null for "0" (no lease: a reservation). */
  async expirationOf(leaseId: string): Promise<Date | null> {
    if (leaseId === '0' || leaseId === '') return null;
    const ttl = await this.client.leaseTimeToLive(leaseId);
    // TTL -1: the lease has just expired and etcd is about to delete the key.
    return new Date(Date.now() + Math.max(0, ttl) * 1000);
  }

  /**
   * Turns a watched or listed key into a Lease. Null for keys that are not subnets; throws LeaseJsonError for a
   * malformed value.
   */
  leaseFromKv(kv: KeyValue): Lease | null {
    const parsed = parseSubnetKey(kv.key);
    if (!parsed) return null;
    const attrs = decodeLeaseValue(kv.value, kv.key);
    return makeLease(parsed, attrs, kv.lease === '0' ? null : new Date(Date.now() + this.ttlSeconds * 1000));
  }

  /** One key's value and meta; null when absent. */
  async readKey(key: string): Promise<(KeyMeta & { value: string }) | null> {
    const { kv } = await this.client.get(key);
    return kv ? keyStateOf(kv) : null;
  }

  async listLeases(): Promise<LeaseList> {
    const res = await this.client.getPrefix(this.subnetsPrefix);
    const out: LeaseList = { leases: [], malformed: [], ignored: [], meta: new Map(), revision: res.revision };
    for (const kv of res.kvs) {
      const key = kv.key;
      try {
        const lease = this.leaseFromKv(kv);
        if (lease) {
          out.meta.set(key, { leaseId: kv.lease, modRevision: kv.modRevision });
          out.leases.push(lease);
        } else out.ignored.push(key);
      } catch (e) {
        if (!(e instanceof LeaseJsonError)) throw e;
        out.malformed.push({ key, error: e.message, modRevision: kv.modRevision });
      }
    }
    return out;
  }

  /**
   * Transactional create-if-absent with a fresh 24 h etcd lease. With `overModRevision`, replaces the key instead,
   * if it still has that mod revision (a malformed value, which is nobody's lease). Returns null (after revoking the
   * granted lease) when the key exists or changed meanwhile.
   */
  async createLease(subnets: LeaseSubnets, attrs: LeaseAttrs, overModRevision?: string): Promise<WrittenLease | null> {
    const key = this.subnetKey(subnets);
    const { grant, expiration } = await this.grant();
    let succeeded = false;
    let revision = '';
    try {
      const put = { key, value: encodeLeaseValue(attrs), lease: grant.id };
      const res =
        overModRevision === undefined
          ? await this.client.putIf('version', '0', put)
          : await this.client.putIf('modRevision', overModRevision, put);
      succeeded = res.succeeded;
      revision = res.revision;
    } finally {
      if (!succeeded) await this.revoke(grant.id);
    }
    return succeeded ? { lease: makeLease(subnets, attrs, expiration), leaseId: grant.id, revision } : null;
  }

  /**
   * Rewrites a lease: a new 24 h etcd lease and a plain put; `reservation` keeps the key lease-less. `replaces`, the
   * etcd lease the key held before and that this node owns, is revoked after the write: one etcd lease per node.
   */
  async updateLease(
    subnets: LeaseSubnets,
    attrs: LeaseAttrs,
    reservation: boolean,
    replaces?: string,
  ): Promise<WrittenLease> {
    const key = this.subnetKey(subnets);
    const value = encodeLeaseValue(attrs);
    if (reservation) {
      const revision = await this.client.put(key, value);
      if (replaces) await this.revoke(replaces);
      return { lease: makeLease(subnets, attrs, null), leaseId: '0', revision };
    }
    const { grant, expiration } = await this.grant();
    let revision: string;
    try {
      revision = await this.client.put(key, value, grant.id);
    } catch (e) {
      await this.revoke(grant.id);
      throw e;
    }
    if (replaces && replaces !== grant.id) await this.revoke(replaces);
    return { lease: makeLease(subnets, attrs, expiration), leaseId: grant.id, revision };
  }

  async deleteLease(subnets: LeaseSubnets): Promise<void> {
    await this.client.delete(this.subnetKey(subnets));
  }

  /** A fresh etcd lease of the configured TTL and when it runs out. */
  private async grant(): Promise<{ grant: { id: string }; expiration: Date }> {
    const grant = await this.client.leaseGrant(this.ttlSeconds);
    return { grant, expiration: new Date(Date.now() + grant.ttl * 1000) };
  }

  /** Revokes an etcd lease this node holds; '0' (none) and failures are ignored: it expires by itself. */
  async revoke(id: string): Promise<void> {
    if (id === '0' || id === '') return;
    try {
      await this.client.leaseRevoke(id);
    } catch {
      // It expires by itself after the TTL; nothing holds it.
    }
  }
}
