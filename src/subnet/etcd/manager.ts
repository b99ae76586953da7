// The etcd v3 subnet manager (spec §3): config, lease acquisition, the watch of all leases, renewal.
import type { Etcd3 } from 'etcd3';
import { parseNetworkConfig } from '../../config/parse.ts';
import type { NetworkConfig } from '../../config/network-config.ts';
import { formatIPv4, type IPv4Net } from '../../ip/ipv4.ts';
import { formatIPv6, type IPv6Net } from '../../ip/ipv6.ts';
import { errorMessage, logger } from '../../log/log.ts';
import { allocationRange, decideAllocation } from '../allocate.ts';
import { LeaseJsonError, decodeLeaseValue, parseSubnetKey } from '../lease-json.ts';
import { LeaseWatcher } from '../lease-watcher.ts';
import { leaseName, makeLease, type Lease, type LeaseAttrs, type LeaseEvent, type SubnetManager } from '../lease.ts';
import { createEtcdClient, type EtcdClientOptions } from './client.ts';
import { sleep } from '../../util/sleep.ts';
import { ListWatch, type WatchChange } from './list-watch.ts';
import { EtcdRegistry, LEASE_TTL_SECONDS, type MalformedKey } from './registry.ts';
import { monitorOwnLease } from './renew.ts';
import { ThrottledLog } from './throttle.ts';

const log = logger('etcd');

/** Attempts before giving up when other nodes keep winning the create race for our chosen subnet. */
const MAX_ACQUIRE_ATTEMPTS = 10;

export interface EtcdSubnetManagerOptions extends EtcdClientOptions {
  /** `--etcd-prefix`, e.g. `/coreos.com/network`. */
  prefix: string;
  /** FLANNEL_SUBNET of the previous run (normalised to its network). */
  previousSubnet?: IPv4Net;
  /** FLANNEL_IPV6_SUBNET of the previous run (normalised), used in dual stack. */
  previousIPv6Subnet?: IPv6Net;
  /** `--subnet-lease-renew-margin`: renew this long before the etcd lease runs out. */
  renewMarginMinutes: number;
  /** Tuning and test knobs; defaults are flannel's. */
  leaseTTLSeconds?: number;
  /** Overrides renewMarginMinutes (tests renew within seconds). */
  renewMarginSeconds?: number;
  renewRetrySeconds?: number;
  random?: () => number;
  /** Called right before the transactional create; tests use it to play a node that wins the race. */
  beforeCreate?: (key: string) => Promise<void>;
  /** Use this client instead of building one from the options (it is still closed by close()). */
  client?: Etcd3;
}

/** flannel's "(ip: … ipv6: …)" text; `0.0.0.0/0` / `::/0` for a family the lease lacks. */
function describe(l: Pick<Lease, 'subnet' | 'ipv6Subnet'>): string {
  return `ip: ${l.subnet?.toString() ?? '0.0.0.0/0'} ipv6: ${l.ipv6Subnet?.toString() ?? '::/0'}`;
}

export class EtcdSubnetManager implements SubnetManager {
  readonly name: string;
  readonly registry: EtcdRegistry;
  private config: NetworkConfig | undefined;
  private readonly throttle = new ThrottledLog(log);

  constructor(private readonly opts: EtcdSubnetManagerOptions) {
    if (!opts.prefix.startsWith('/')) {
      throw new Error(`--etcd-prefix "${opts.prefix}" must be an absolute key path such as /coreos.com/network`);
    }
    const client = opts.client ?? createEtcdClient(opts);
    this.registry = new EtcdRegistry(client, opts.prefix, opts.leaseTTLSeconds ?? LEASE_TTL_SECONDS);
    this.name = `Etcd Local Manager with Previous Subnet: ${opts.previousSubnet?.toString() ?? 'None'}`;
  }

  get client(): Etcd3 {
    return this.registry.client;
  }

  /** Reads and validates `<prefix>/config`, retrying every second until found; rejects only on abort. */
  async getNetworkConfig(signal: AbortSignal): Promise<NetworkConfig> {
    for (;;) {
      signal.throwIfAborted();
      try {
        const config = parseNetworkConfig(await this.registry.getConfigText(), { validate: true });
        this.config = config;
        return config;
      } catch (e) {
        signal.throwIfAborted();
        log.error(`Couldn't fetch network config: ${errorMessage(e)}`);
      }
      await sleep(1000, signal);
    }
  }

  private logMalformed(keys: MalformedKey[]): void {
    for (const m of keys) this.throttle.error(`malformed ${m.key}`, `skipping malformed lease: ${m.error}`);
  }

  async acquireLease(attrs: LeaseAttrs, signal: AbortSignal): Promise<Lease> {
    const config = this.config ?? (await this.getNetworkConfig(signal));
    const range = allocationRange(config);
    // The address leases are matched by: PublicIP, or PublicIPv6 on an IPv6-only network.
    const ownIP = range.ipv4 ? attrs.publicIP : attrs.publicIPv6;
    for (let attempt = 1; attempt <= MAX_ACQUIRE_ATTEMPTS; attempt++) {
      signal.throwIfAborted();
      const listed = await this.registry.listLeases();
      this.logMalformed(listed.malformed);
      const decision = decideAllocation({
        range,
        leases: listed.leases,
        publicIP: attrs.publicIP,
        publicIPv6: attrs.publicIPv6,
        previousSubnet: this.opts.previousSubnet,
        previousIPv6Subnet: this.opts.previousIPv6Subnet,
        random: this.opts.random,
      });
      for (const stale of decision.remove) {
        log.info(`Lease (${describe(stale)}) for current IP (${ownIP}) does not fit the config, deleting it`);
        await this.registry.deleteLease(stale);
      }
      if (decision.kind === 'reuse') {
        const old = decision.lease;
        // A key without an etcd lease is a reservation (#1329): keep it TTL-less.
        const lease = await this.registry.updateLease(old, attrs, old.expiration === null);
        log.info(`Found lease (${describe(lease)}) for current IP (${ownIP}), reusing`);
        return lease;
      }
      if (decision.source === 'previous') {
        log.info(`Found previously leased subnet (${leaseName(decision)}), reusing`);
      } else if (range.ipv4) {
        log.info(`Picking subnet in range ${formatIPv4(range.ipv4.subnetMin)} ... ${formatIPv4(range.ipv4.subnetMax)}`);
      }
      if (range.ipv6) {
        log.info(`Picking IPv6 subnet in range ${formatIPv6(range.ipv6.subnetMin)} ... ${formatIPv6(range.ipv6.subnetMax)}`);
      }
      await this.opts.beforeCreate?.(this.registry.subnetKey(decision));
      const lease = await this.registry.createLease(decision, attrs);
      if (lease) {
        log.info(`Allocated lease (${describe(lease)}) to current node (${ownIP})`);
        return lease;
      }
      log.warn(`subnet ${leaseName(decision)} was taken by another node meanwhile (attempt ${attempt}); trying another subnet`);
    }
    throw new Error('failed to acquire lease: max retries reached trying to acquire a subnet');
  }

  /** A watched change as a lease event; null for non-subnet keys and malformed values (logged). */
  private async changeToEvent(ch: WatchChange): Promise<LeaseEvent | null> {
    const key = ch.kv.key.toString();
    const parsed = parseSubnetKey(key);
    if (!parsed) {
      log.v(1, `${key}: not a subnet, skipping`);
      return null;
    }
    if (ch.type === 'delete') {
      let attrs: LeaseAttrs = { publicIP: '0.0.0.0', publicIPv6: null, backendType: '' };
      try {
        if (ch.prev) attrs = decodeLeaseValue(ch.prev.value.toString(), key);
      } catch {
        // The lease watcher supplies the last known attrs.
      }
      return { type: 'removed', lease: makeLease(parsed, attrs, null) };
    }
    try {
      const lease = await this.registry.leaseFromKv(ch.kv);
      return lease && { type: 'added', lease };
    } catch (e) {
      if (!(e instanceof LeaseJsonError)) throw e;
      this.throttle.error(`malformed ${key}`, `skipping malformed lease: ${e.message}`);
      return null;
    }
  }

  async *watchLeases(own: Lease, signal: AbortSignal): AsyncIterable<LeaseEvent[]> {
    const watcher = new LeaseWatcher(own);
    const stream = new ListWatch<Lease[]>({
      list: async () => {
        const listed = await this.registry.listLeases();
        this.logMalformed(listed.malformed);
        return { revision: listed.revision, snapshot: listed.leases };
      },
      watch: () => this.client.watch().prefix(this.registry.subnetsPrefix),
      signal,
      what: 'subnet leases',
      throttle: this.throttle,
    });
    let first = true;
    for await (const item of stream) {
      if (item.type === 'snapshot') {
        const events = watcher.reset(item.snapshot);
        if (first || events.length > 0) yield events;
        first = false;
        continue;
      }
      const changes: LeaseEvent[] = [];
      for (const ch of item.changes) {
        try {
          const ev = await this.changeToEvent(ch);
          if (ev) changes.push(ev);
        } catch (e) {
          // Could not read the key's etcd lease: a fresh listing catches up on whatever we skip here.
          this.throttle.error('watch subnet leases', `failed to read lease of ${ch.kv.key.toString()}: ${errorMessage(e)}; listing again`);
          stream.resync();
          break;
        }
      }
      const events = watcher.update(changes);
      if (events.length > 0) yield events;
    }
  }

  completeLease(lease: Lease, signal: AbortSignal): Promise<'revoked' | 'aborted'> {
    const marginSeconds = this.opts.renewMarginSeconds ?? this.opts.renewMarginMinutes * 60;
    return monitorOwnLease({
      registry: this.registry,
      lease,
      signal,
      renewMarginMs: marginSeconds * 1000,
      retryMs: (this.opts.renewRetrySeconds ?? 60) * 1000,
      throttle: this.throttle,
    });
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
