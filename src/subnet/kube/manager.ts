// The Kubernetes subnet manager (docs/COMPATIBILITY.md, "Kubernetes subnet manager"): the own subnet is the node's
// podCIDR, published as node annotations; peers are the other nodes, from a list + watch of all nodes.
import { readFile } from 'node:fs/promises';
import { parseNetworkConfig } from '../../config/parse.ts';
import type { NetworkConfig } from '../../config/network-config.ts';
import { errorMessage, logger } from '../../log/log.ts';
import { sleep, untilAborted } from '../../util/time.ts';
import {
  leaseName,
  makeLease,
  type Lease,
  type LeaseAttrs,
  type LeaseEvent,
  type SubnetManager,
  type SubnetWatchObserver,
} from '../lease.ts';
import { annotationNames, type AnnotationNames } from './annotations.ts';
import { createNodeApi, type KubeClientOptions, type NodeApi } from './client.ts';
import { DEFAULT_EVENT_QUEUE_DEPTH, EventQueue } from './event-queue.ts';
import { nodeChangeEvents, nodeToLease } from './node-lease.ts';
import { NodeInformer } from './node-informer.ts';
import { annotationsOf, type KubeNode } from './node.ts';
import { ownSubnets } from './own-subnet.ts';
import { annotationPatch, applyPublicIPOverwrite, desiredAnnotations, networkUnavailableCondition } from './publish.ts';

const log = logger('kube');

export interface KubeSubnetManagerOptions extends KubeClientOptions {
  /** NODE_NAME; when empty the node is found through POD_NAME/POD_NAMESPACE. */
  nodeName?: string;
  podName?: string;
  podNamespace?: string;
  /** `--net-config-path`. */
  netConfigPath: string;
  /** `--kube-annotation-prefix` as given. */
  annotationPrefix: string;
  /** `--set-node-network-unavailable`. */
  setNodeNetworkUnavailable: boolean;
  /** EVENT_QUEUE_DEPTH. */
  eventQueueDepth?: number;
  /** CONT_WHEN_CACHE_NOT_READY: go on without a synced node cache instead of failing. */
  contWhenCacheNotReady?: boolean;
  /** Timing knobs; defaults are flannel's. */
  syncTimeoutMs?: number;
  retryIntervalMs?: number;
  retryTimeoutMs?: number;
  watchTimeoutSeconds?: number;
  /** Told of the node watch's failures and re-lists (flanneld's /metrics). */
  watchObserver?: SubnetWatchObserver;
}

async function resolveNodeName(api: NodeApi, o: KubeSubnetManagerOptions): Promise<string> {
  if (o.nodeName) return o.nodeName;
  if (!o.podName || !o.podNamespace) {
    throw new Error("env variables POD_NAME and POD_NAMESPACE must be set (or set NODE_NAME to this node's name)");
  }
  const name = await api.podNodeName(o.podNamespace, o.podName);
  if (!name) throw new Error(`node name not present in pod spec '${o.podNamespace}/${o.podName}'`);
  return name;
}

/** Reads and parses `--net-config-path`; every error names the file. */
export async function readNetConfig(path: string): Promise<NetworkConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(
      `failed to read net conf: ${errorMessage(e)} (--net-config-path ${path}; the DaemonSet mounts ConfigMap kube-flannel-cfg there)`,
    );
  }
  try {
    // Kube mode does not run the etcd defaults and checks (docs/COMPATIBILITY.md, "Kubernetes subnet manager"): the pod
    // CIDRs come from Kubernetes.
    return parseNetworkConfig(text, { validate: false, source: path });
  } catch (e) {
    throw new Error(`error parsing subnet config: ${errorMessage(e)}`);
  }
}

export class KubeSubnetManager implements SubnetManager {
  readonly name: string;
  private readonly background = new AbortController();
  private readonly informer: NodeInformer;
  private ownAtStart: KubeNode | null = null;

  private constructor(
    readonly api: NodeApi,
    readonly nodeName: string,
    readonly names: AnnotationNames,
    readonly config: NetworkConfig,
    private readonly o: KubeSubnetManagerOptions,
  ) {
    this.name = `Kubernetes Subnet Manager - ${nodeName}`;
    this.informer = new NodeInformer(api, { watchTimeoutSeconds: o.watchTimeoutSeconds, observer: o.watchObserver });
  }

  /**
   * Builds the client, finds this node, reads net-conf.json and waits for the node cache (docs/COMPATIBILITY.md,
   * "Kubernetes subnet manager").
   */
  static async create(o: KubeSubnetManagerOptions): Promise<KubeSubnetManager> {
    const names = annotationNames(o.annotationPrefix);
    const api = await createNodeApi(o);
    const nodeName = await resolveNodeName(api, o);
    const config = await readNetConfig(o.netConfigPath);
    const m = new KubeSubnetManager(api, nodeName, names, config, o);
    await m.start();
    return m;
  }

  private async start(): Promise<void> {
    const signal = this.background.signal;
    void this.informer.run(signal);
    const timeout = this.o.syncTimeoutMs ?? 10 * 60_000;
    log.info(`Waiting ${Math.round(timeout / 1000)}s for node controller to sync`);
    const deadline = Date.now() + timeout;
    // One waiter for the whole wait: a new one per poll would pile up abort listeners on `signal`.
    const synced = this.informer.waitSynced(signal);
    while (!this.informer.synced && Date.now() < deadline && !signal.aborted) {
      await Promise.race([synced, sleep(Math.min(1000, Math.max(0, deadline - Date.now())))]);
    }
    if (this.informer.synced) log.info(`Node controller sync successful (${this.informer.cache.size} nodes)`);
    else if (this.o.contWhenCacheNotReady)
      log.warn('Node controller did not sync in time; continuing because CONT_WHEN_CACHE_NOT_READY=true');
    else {
      this.background.abort();
      throw new Error(
        'error waiting for nodeController to sync state (set CONT_WHEN_CACHE_NOT_READY=true to continue anyway)',
      );
    }
    try {
      this.ownAtStart = this.informer.cache.get(this.nodeName) ?? (await this.api.getNode(this.nodeName));
    } catch (e) {
      log.warn(`could not read node ${this.nodeName} yet: ${errorMessage(e)}`);
    }
  }

  /**
   * The admin-set node-public-ip(-v6) annotations read at startup; they replace --public-ip(v6) (docs/COMPATIBILITY.md,
   * "Interface selection").
   */
  nodePublicIPs(): { v4?: string; v6?: string } {
    const a = this.ownAtStart ? annotationsOf(this.ownAtStart) : {};
    return { v4: a[this.names.nodePublicIP] || undefined, v6: a[this.names.nodePublicIPv6] || undefined };
  }

  /**
   * This node's backend-data annotation from before this run (vxlan keeps its VtepMAC with it, docs/COMPATIBILITY.md,
   * "vxlan backend").
   */
  previousBackendData(): unknown {
    return this.previousAnnotationJson(this.names.backendData);
  }

  /** The same for flannel-v6.<VNI>: the backend-v6-data annotation. */
  previousBackendV6Data(): unknown {
    return this.previousAnnotationJson(this.names.backendV6Data);
  }

  private previousAnnotationJson(name: string): unknown {
    const raw = this.ownAtStart ? annotationsOf(this.ownAtStart)[name] : undefined;
    if (raw === undefined) return undefined;
    try {
      return JSON.parse(raw);
    } catch {
      return undefined;
    }
  }

  async getNetworkConfig(): Promise<NetworkConfig> {
    return this.config;
  }

  /**
   * Runs `fn` every retryInterval (3 s) until it succeeds or retryTimeout (30 s) passes (docs/COMPATIBILITY.md,
   * "Kubernetes subnet manager").
   */
  private async retry<T>(what: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    const interval = this.o.retryIntervalMs ?? 3000;
    const deadline = Date.now() + (this.o.retryTimeoutMs ?? 30_000);
    for (;;) {
      signal.throwIfAborted();
      try {
        return await fn();
      } catch (e) {
        if (Date.now() + interval > deadline) throw new Error(`${what}: ${errorMessage(e)}`);
        log.warn(`${what}: ${errorMessage(e)}; retrying in ${interval / 1000} s`);
      }
      await sleep(interval, signal);
    }
  }

  private lookupNode(signal: AbortSignal): Promise<KubeNode> {
    return this.retry(`failed to get node "${this.nodeName}"`, signal, async () => {
      // A direct read: the cache may lag behind our own last patch, and "differs?" must see the truth.
      const node = (await this.api.getNode(this.nodeName)) ?? this.informer.cache.get(this.nodeName);
      if (!node) throw new Error(`node "${this.nodeName}" not found (is NODE_NAME the node's name in Kubernetes?)`);
      return node;
    });
  }

  async acquireLease(attrs: LeaseAttrs, signal: AbortSignal): Promise<Lease> {
    const node = await this.lookupNode(signal);
    const subnets = ownSubnets(node, this.config);
    const current = annotationsOf(node);
    const { attrs: effective, notes } = applyPublicIPOverwrite(attrs, current, this.names);
    for (const n of notes) log.info(n);
    const patch = annotationPatch(current, desiredAnnotations(effective, this.names));
    if (patch) {
      await this.retry(`failed to patch node "${this.nodeName}" annotations`, signal, () =>
        this.api.patchNodeStatus(this.nodeName, { metadata: { annotations: patch } }),
      );
      log.info(`Published lease annotations on node ${this.nodeName}: ${Object.keys(patch).join(', ')}`);
    }
    // ownSubnets gave every family the config enables (and the config enables at least one).
    return makeLease({ subnet: subnets.v4, ipv6Subnet: subnets.v6 }, effective, null);
  }

  async *watchLeases(own: Lease, signal: AbortSignal): AsyncIterable<LeaseEvent[]> {
    const informer = this.informer;
    const queue = new EventQueue<LeaseEvent>(this.o.eventQueueDepth ?? DEFAULT_EVENT_QUEUE_DEPTH);
    const ownName = leaseName(own);
    // Peers are the other nodes, minus any lease naming our own subnet; `events` is not run for this node.
    const peerEvents = (node: KubeNode | undefined, events: () => LeaseEvent[]): LeaseEvent[] =>
      node?.metadata.name === this.nodeName ? [] : events().filter((ev) => leaseName(ev.lease) !== ownName);
    // Subscribe and snapshot in the same tick: nothing can fall between them.
    const unsubscribe = informer.subscribe((changes) => {
      for (const c of changes) {
        for (const ev of peerEvents(c.node ?? c.old, () => nodeChangeEvents(c.old, c.node, this.names))) queue.push(ev);
      }
    });
    try {
      const first: LeaseEvent[] = [];
      for (const node of informer.cache.values()) {
        const added = peerEvents(node, (): LeaseEvent[] => {
          const r = nodeToLease(node, this.names);
          if ('lease' in r) return [{ type: 'added', lease: r.lease }];
          log.v(1, `node ${node.metadata.name} is not a peer: ${r.skip}`);
          return [];
        });
        first.push(...added);
      }
      yield first;
      for (;;) {
        let batch: LeaseEvent[];
        try {
          batch = await queue.take(signal);
        } catch {
          return;
        }
        yield batch;
      }
    } finally {
      unsubscribe();
      queue.close();
    }
  }

  /**
   * Sets NodeNetworkUnavailable=False (docs/COMPATIBILITY.md, "Kubernetes subnet manager"), then holds until shutdown:
   * kube leases never expire.
   */
  async completeLease(_lease: Lease, signal: AbortSignal): Promise<'revoked' | 'aborted'> {
    if (this.o.setNodeNetworkUnavailable) {
      try {
        await this.retry(`failed to set NetworkUnavailable on node "${this.nodeName}"`, signal, () =>
          this.api.patchNodeStatus(this.nodeName, {
            status: { conditions: [networkUnavailableCondition(new Date())] },
          }),
        );
        log.info(`Set NetworkUnavailable=False (FlannelIsUp) on node ${this.nodeName}`);
      } catch (e) {
        if (!signal.aborted) log.error(errorMessage(e));
      }
    }
    await untilAborted(signal);
    return 'aborted';
  }

  /** Node lists done so far (re-lists after 410 Gone or a dropped watch show up here). */
  get listCount(): number {
    return this.informer.lists;
  }

  async close(): Promise<void> {
    this.background.abort();
  }
}
