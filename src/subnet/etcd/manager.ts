// The etcd v3 subnet manager: config, lease acquisition, the watch of all leases, renewal (docs/COMPATIBILITY.md,
// "etcd keys" to "Watching leases").
import type { NetworkConfig } from '../../config/network-config.ts';
import { formatIPv4, type IPv4Net } from '../../ip/ipv4.ts';
import { formatIPv6, type IPv6Net } from '../../ip/ipv6.ts';
import { errorMessage, logger } from '../../log/log.ts';
import { allocationRange, decideAllocation } from '../allocate.ts';
import { LeaseJsonError, decodeLeaseValue, parseSubnetKey } from '../lease-json.ts';
import { LeaseWatcher } from '../lease-watcher.ts';
import {
  leaseName,
  makeLease,
  type Lease,
  type LeaseAttrs,
  type LeaseEvent,
  type SubnetManager,
  type SubnetWatchObserver,
} from '../lease.ts';
import { createEtcdClient, etcdErrorContext, type EtcdClient, type EtcdClientOptions } from './client.ts';
import { describeEtcdError, isEtcdError } from './errors.ts';
import { sleep } from '../../util/time.ts';
import { ListWatch, type WatchChange } from './list-watch.ts';
import { classifyOwnKey, duplicatePublicIPMessage, sameBackend, type HeldLease } from './ownership.ts';
import { EtcdRegistry, LEASE_TTL_SECONDS, type LeaseList, type MalformedKey, type WrittenLease } from './registry.ts';
import { monitorOwnLease, type MonitorOutcome } from './renew.ts';
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
  /**
   * How long to watch a lease this node takes over from what may be another live node (another VtepMAC, not the
   * previous subnet) for that node writing it back, before keeping it. Default 2000 ms.
   */
  takeoverProbeMs?: number;
  /** Told of each new expiration of the own lease after acquireLease (flanneld's /metrics). */
  onLeaseExpiration?: (expiration: Date | null) => void;
  /** Told of the lease watches' failures and relistings (flanneld's /metrics). */
  watchObserver?: SubnetWatchObserver;
  /** Use this client instead of building one from the options (it is still closed by close()). */
  client?: EtcdClient;
}

/** Another live node holds the lease for this node's public IP: not ours to take. */
export class DuplicatePublicIPError extends Error {
  readonly code = 'EDUPLICATEPUBLICIP';
}

/** flannel's "(ip: … ipv6: …)" text; `0.0.0.0/0` / `::/0` for a family the lease lacks. */
function describe(l: Pick<Lease, 'subnet' | 'ipv6Subnet'>): string {
  return `ip: ${l.subnet?.toString() ?? '0.0.0.0/0'} ipv6: ${l.ipv6Subnet?.toString() ?? '::/0'}`;
}

/** How long after allocation the lease watch may start from the allocation's listing. */
const EARLY_LISTING_MS = 10_000;

export class EtcdSubnetManager implements SubnetManager {
  readonly name: string;
  readonly registry: EtcdRegistry;
  private config: NetworkConfig | undefined;
  private readonly throttle = new ThrottledLog(log);
  /** What acquireLease wrote; completeLease keeps it. */
  private held: HeldLease | undefined;
  /**
   * The listing the lease was allocated from: the lease watch starts from it instead of listing every lease again
   * (watching from its revision + 1 brings our own write and anything after it, so nothing is missed).
   */
  private allocatedFrom: { revision: string; leases: Lease[]; at: number } | undefined;
  /** Keys under subnets/ that name no subnet, warned about once each. */
  private readonly warnedKeys = new Set<string>();

  constructor(private readonly opts: EtcdSubnetManagerOptions) {
    if (!opts.prefix.startsWith('/')) {
      throw new Error(`--etcd-prefix "${opts.prefix}" must be an absolute key path such as /coreos.com/network`);
    }
    const client = opts.client ?? createEtcdClient(opts);
    this.registry = new EtcdRegistry(client, opts.prefix, opts.leaseTTLSeconds ?? LEASE_TTL_SECONDS);
    this.name = `Etcd Local Manager with Previous Subnet: ${opts.previousSubnet?.toString() ?? 'None'}`;
  }

  get client(): EtcdClient {
    return this.registry.client;
  }

  /**
   * Reads and validates `<prefix>/config` until found: every second while it is missing or invalid, backing off from
   * 1 s to 10 s while etcd fails; rejects only on abort.
   */
  async getNetworkConfig(signal: AbortSignal): Promise<NetworkConfig> {
    const context = etcdErrorContext(this.opts);
    let etcdBackoffMs = 1000;
    for (;;) {
      signal.throwIfAborted();
      let retryMs = 1000;
      try {
        const config = await this.registry.readConfig();
        this.config = config;
        return config;
      } catch (e) {
        signal.throwIfAborted();
        if (isEtcdError(e)) {
          retryMs = etcdBackoffMs;
          etcdBackoffMs = Math.min(10_000, etcdBackoffMs * 2);
        } else {
          etcdBackoffMs = 1000;
        }
        log.error(`Couldn't fetch network config: ${describeEtcdError(e, context)}; retrying in ${retryMs / 1000}s`);
      }
      await sleep(retryMs, signal);
    }
  }

  private logMalformed(keys: MalformedKey[]): void {
    for (const m of keys) this.throttle.error(`malformed ${m.key}`, `skipping malformed lease: ${m.error}`);
  }

  private warnNotSubnet(key: string): void {
    if (this.warnedKeys.has(key)) return;
    this.warnedKeys.add(key);
    log.warn(
      `${key}: not a subnet key (flannel's are ${this.registry.subnetsPrefix}<ip>-<len>, or <ip>-<len>&<ipv6>-<len>); ignoring it`,
    );
  }

  /** Logs what a listing skipped: malformed values, and keys that are no subnet. */
  private logSkipped(listed: LeaseList): void {
    this.logMalformed(listed.malformed);
    for (const k of listed.ignored) this.warnNotSubnet(k);
  }

  /** Remembers what we wrote, for completeLease. */
  private hold(w: WrittenLease): Lease {
    this.held = { attrs: w.lease.attrs, leaseId: w.leaseId, revision: w.revision };
    return w.lease;
  }

  /**
   * After taking over a lease that may be another live node's (another VtepMAC, not our previous subnet): a
   * flannel-ts owner writes its lease back within a moment. Throws DuplicatePublicIPError when it did.
   */
  private async probeTakeover(w: WrittenLease, signal: AbortSignal): Promise<void> {
    const key = this.registry.subnetKey(w.lease);
    const ms = this.opts.takeoverProbeMs ?? 2000;
    log.info(
      `Lease ${key} carries this node's public IP but another node's data; watching it for ${ms} ms before keeping it`,
    );
    await sleep(ms, signal);
    const now = await this.registry.readKey(key);
    if (!now) return;
    const state = classifyOwnKey(key, now, { attrs: w.lease.attrs, leaseId: w.leaseId, revision: w.revision });
    if (state.kind !== 'foreign') return;
    await this.registry.revoke(w.leaseId);
    throw new DuplicatePublicIPError(
      `${duplicatePublicIPMessage(key, w.lease.attrs, state.attrs)}. Not taking it over`,
    );
  }

  async acquireLease(attrs: LeaseAttrs, signal: AbortSignal): Promise<Lease> {
    const config = this.config ?? (await this.getNetworkConfig(signal));
    const range = allocationRange(config);
    // The address leases are matched by: PublicIP, or PublicIPv6 on an IPv6-only network.
    const ownIP = range.ipv4 ? attrs.publicIP : attrs.publicIPv6;
    const prev = { subnet: this.opts.previousSubnet, ipv6Subnet: this.opts.previousIPv6Subnet };
    const isPrevious = (l: Pick<Lease, 'subnet' | 'ipv6Subnet'>) =>
      range.ipv4
        ? !!prev.subnet && l.subnet?.toString() === prev.subnet.toString()
        : !!prev.ipv6Subnet && l.ipv6Subnet?.toString() === prev.ipv6Subnet.toString();
    // Subnets lost to another node's create in an earlier attempt: each retry tries another one.
    const lost: Lease[] = [];
    for (let attempt = 1; attempt <= MAX_ACQUIRE_ATTEMPTS; attempt++) {
      signal.throwIfAborted();
      const listed = await this.registry.listLeases();
      this.logSkipped(listed);
      // A key holding no valid lease is nobody's: only our own previous subnet is reclaimed from it.
      const malformed = new Map<string, MalformedKey>();
      const blocked = [...lost];
      for (const m of listed.malformed) {
        const parsed = parseSubnetKey(m.key);
        if (!parsed) continue;
        malformed.set(m.key, m);
        if (!isPrevious(parsed)) blocked.push(makeLease(parsed, attrs, null));
      }
      const decision = decideAllocation({
        range,
        leases: listed.leases,
        publicIP: attrs.publicIP,
        publicIPv6: attrs.publicIPv6,
        previousSubnet: prev.subnet,
        previousIPv6Subnet: prev.ipv6Subnet,
        random: this.opts.random,
        exclude: blocked,
      });
      for (const stale of decision.remove) {
        log.info(`Lease (${describe(stale)}) for current IP (${ownIP}) does not fit the config, deleting it`);
        await this.registry.deleteLease(stale);
      }
      if (decision.kind === 'reuse') {
        const old = decision.lease;
        const key = this.registry.subnetKey(old);
        const oldLeaseId = listed.meta.get(key)?.leaseId ?? '0';
        // A key without an etcd lease is a reservation (#1329): keep it TTL-less.
        const written = await this.registry.updateLease(old, attrs, old.expiration === null);
        if (!sameBackend(old.attrs, attrs) && !isPrevious(old)) await this.probeTakeover(written, signal);
        // The etcd lease of our previous run holds no key any more: one etcd lease per node, not one per restart.
        if (oldLeaseId !== written.leaseId) await this.registry.revoke(oldLeaseId);
        log.info(`Found lease (${describe(written.lease)}) for current IP (${ownIP}), reusing`);
        this.allocatedFrom = { revision: listed.revision, leases: listed.leases, at: Date.now() };
        return this.hold(written);
      }
      if (decision.source === 'previous') {
        log.info(`Found previously leased subnet (${leaseName(decision)}), reusing`);
      } else if (range.ipv4) {
        log.info(`Picking subnet in range ${formatIPv4(range.ipv4.subnetMin)} ... ${formatIPv4(range.ipv4.subnetMax)}`);
      }
      if (range.ipv6) {
        log.info(
          `Picking IPv6 subnet in range ${formatIPv6(range.ipv6.subnetMin)} ... ${formatIPv6(range.ipv6.subnetMax)}`,
        );
      }
      const key = this.registry.subnetKey(decision);
      const garbage = malformed.get(key);
      if (garbage)
        log.warn(`${key} holds no valid lease (${garbage.error}); reclaiming it as this node's previous subnet`);
      await this.opts.beforeCreate?.(key);
      const written = await this.registry.createLease(decision, attrs, garbage?.modRevision);
      if (written) {
        log.info(`Allocated lease (${describe(written.lease)}) to current node (${ownIP})`);
        this.allocatedFrom = { revision: listed.revision, leases: listed.leases, at: Date.now() };
        return this.hold(written);
      }
      lost.push(makeLease(decision, attrs, null));
      log.warn(
        `subnet ${leaseName(decision)} was taken by another node meanwhile (attempt ${attempt}); trying another subnet`,
      );
    }
    throw new Error('failed to acquire lease: max retries reached trying to acquire a subnet');
  }

  /** A watched change as a lease event; null for non-subnet keys and malformed values (logged). */
  private async changeToEvent(ch: WatchChange): Promise<LeaseEvent | null> {
    const key = ch.kv.key.toString();
    const parsed = parseSubnetKey(key);
    if (!parsed) {
      this.warnNotSubnet(key);
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
      const lease = this.registry.leaseFromKv(ch.kv);
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
        const early = this.allocatedFrom;
        this.allocatedFrom = undefined;
        // Only while fresh: an old revision may have been compacted, which costs a failed watch and a listing.
        if (early && Date.now() - early.at < EARLY_LISTING_MS)
          return { revision: early.revision, snapshot: early.leases };
        const listed = await this.registry.listLeases();
        this.logSkipped(listed);
        return { revision: listed.revision, snapshot: listed.leases };
      },
      watch: (startRevision, handlers) =>
        this.client.watch({ key: this.registry.subnetsPrefix, prefix: true, startRevision }, handlers),
      signal,
      what: 'subnet leases',
      throttle: this.throttle,
      observer: this.opts.watchObserver,
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
          this.throttle.error(
            'watch subnet leases',
            `failed to read lease of ${ch.kv.key}: ${errorMessage(e)}; listing again`,
          );
          stream.resync();
          break;
        }
      }
      const events = watcher.update(changes);
      if (events.length > 0) yield events;
    }
  }

  completeLease(lease: Lease, signal: AbortSignal): Promise<MonitorOutcome> {
    const marginSeconds = this.opts.renewMarginSeconds ?? this.opts.renewMarginMinutes * 60;
    return monitorOwnLease({
      registry: this.registry,
      lease,
      // A lease this manager did not write (tests): held as it is, on no known etcd lease and revision.
      held: this.held ?? { attrs: lease.attrs, leaseId: '0', revision: '' },
      signal,
      renewMarginMs: marginSeconds * 1000,
      retryMs: (this.opts.renewRetrySeconds ?? 60) * 1000,
      throttle: this.throttle,
      onExpiration: this.opts.onLeaseExpiration,
      watchObserver: this.opts.watchObserver,
    });
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
