// Flannel's etcd v3 keyspace: config, subnet keys with 24 h etcd leases, reservations (docs/COMPATIBILITY.md,
// "etcd keys", "Lease JSON", "etcd leases and renewal").
import type { Etcd3, IKeyValue } from 'etcd3';
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
export function keyStateOf(kv: IKeyValue): KeyMeta & { value: string } {
  return { value: kv.value.toString(), leaseId: String(kv.lease ?? '0'), modRevision: kv.mod_revision };
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

  /** `<prefix>/config`, parsed and validated; its errors name the key. */
  async readConfig(): Promise<NetworkConfig> {
    return parseNetworkConfig(await this.getConfigText(), { validate: true, source: this.configKey });
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
  leaseFromKv(kv: IKeyValue): Lease | null {
    const key = kv.key.toString();
    const parsed = parseSubnetKey(key);
    if (!parsed) return null;
    const attrs = decodeLeaseValue(kv.value.toString(), key);
    const leaseId = String(kv.lease ?? '0');
    return makeLease(
      parsed,
      attrs,
      leaseId === '0' || leaseId === '' ? null : new Date(Date.now() + this.ttlSeconds * 1000),
    );
  }

  /** One key's value and meta; null when absent. */
  async readKey(key: string): Promise<(KeyMeta & { value: string }) | null> {
    const kv = (await this.client.get(key).exec()).kvs[0];
    return kv ? keyStateOf(kv) : null;
  }

  async listLeases(): Promise<LeaseList> {
    const res = await this.client.getAll().prefix(this.subnetsPrefix).exec();
    const out: LeaseList = { leases: [], malformed: [], ignored: [], meta: new Map(), revision: res.header.revision };
    for (const kv of res.kvs) {
      const key = kv.key.toString();
      try {
        const lease = this.leaseFromKv(kv);
        if (lease) {
          out.meta.set(key, { leaseId: String(kv.lease ?? '0'), modRevision: kv.mod_revision });
          out.leases.push(lease);
        } else out.ignored.push(key);
      } catch (e) {
        if (!(e instanceof LeaseJsonError)) throw e;
        out.malformed.push({ key, error: e.message, modRevision: kv.mod_revision });
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
      const guard =
        overModRevision === undefined
          ? this.client.if(key, 'Version', '==', 0)
          : this.client.if(key, 'Mod', '==', overModRevision);
      const res = await guard.then(this.client.put(key).value(encodeLeaseValue(attrs)).lease(grant.ID)).commit();
      succeeded = res.succeeded;
      revision = res.header.revision;
    } finally {
      if (!succeeded) await this.revoke(grant.ID);
    }
    return succeeded ? { lease: makeLease(subnets, attrs, expiration), leaseId: grant.ID, revision } : null;
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
      const res = await this.client.put(key).value(value).exec();
      if (replaces) await this.revoke(replaces);
      return { lease: makeLease(subnets, attrs, null), leaseId: '0', revision: res.header.revision };
    }
    const { grant, expiration } = await this.grant();
    let revision: string;
    try {
      revision = (await this.client.put(key).value(value).lease(grant.ID).exec()).header.revision;
    } catch (e) {
      await this.revoke(grant.ID);
      throw e;
    }
    if (replaces && replaces !== grant.ID) await this.revoke(replaces);
    return { lease: makeLease(subnets, attrs, expiration), leaseId: grant.ID, revision };
  }

  async deleteLease(subnets: LeaseSubnets): Promise<void> {
    await this.client.delete().key(this.subnetKey(subnets)).exec();
  }

  /** A fresh etcd lease of the configured TTL and when it runs out. */
  private async grant(): Promise<{ grant: { ID: string }; expiration: Date }> {
    const grant = await this.client.leaseClient.leaseGrant({ TTL: this.ttlSeconds, ID: 0 });
    return { grant, expiration: new Date(Date.now() + Number(grant.TTL) * 1000) };
  }

  /** Revokes an etcd lease this node holds; '0' (none) and failures are ignored: it expires by itself. */
  async revoke(id: string): Promise<void> {
    if (id === '0' || id === '') return;
    try {
      await this.client.leaseClient.leaseRevoke({ ID: id });
    } catch {
      // It expires by itself after the TTL; nothing holds it.
    }
  }
}
