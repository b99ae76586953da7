// The startup sequence of flanneld (docs/ARCHITECTURE.md, "flanneld's startup sequence"), in one readable function.
import { existsSync } from 'node:fs';
import type { ExternalInterface } from '../backend/backend.ts';
import { createBackend } from '../backend/registry.ts';
import { errorMessage, logger } from '../log/log.ts';
import { openNetlink, type Netlink } from '../netlink/index.ts';
import { EtcdSubnetManager } from '../subnet/etcd/manager.ts';
import { parseEventQueueDepth } from '../subnet/kube/event-queue.ts';
import { KubeSubnetManager } from '../subnet/kube/manager.ts';
import type { SubnetManager } from '../subnet/lease.ts';
import { formatSubnetEnv, readPreviousSubnet, writeSubnetEnv } from '../subnet/subnet-env.ts';
import { IptablesTrafficManager } from '../traffic/iptables/index.ts';
import { NftablesTrafficManager } from '../traffic/nftables/index.ts';
import type { Options } from './flags.ts';
import { describeOptions, etcdOptionsOf } from './flags.ts';
import { ensureBlackholeRoute } from './blackhole.ts';
import { HealthServer } from './health.ts';
import { hostView } from './host-view.ts';
import { selectExternalInterface } from './interface-selection.ts';
import { NO_METRICS, servedMetrics, type MetricsSink } from './metrics-sink.ts';
import type { DaemonMetrics } from './metrics.ts';
import { afterAll } from '../util/tasks.ts';
import { untilAborted } from '../util/time.ts';

const log = logger('flanneld');

/** Runs flanneld until SIGINT/SIGTERM or lease revocation; returns the exit code. */
export async function runFlanneld(opts: Options): Promise<number> {
  log.info(`CLI flags config: ${describeOptions(opts)}`);
  const previous = readPreviousSubnet(opts.subnetFile);
  const served: DaemonMetrics | undefined = opts.healthzPort > 0 ? await servedMetrics() : undefined;
  const metrics: MetricsSink = served ?? NO_METRICS;
  let subnetManager: SubnetManager;
  let publicIP = opts.publicIP;
  let publicIPv6 = opts.publicIPv6;
  if (opts.kubeSubnetMgr) {
    let kube: KubeSubnetManager;
    try {
      kube = await KubeSubnetManager.create({
        apiUrl: opts.kubeApiUrl || undefined,
        kubeconfigFile: opts.kubeconfigFile || undefined,
        nodeName: process.env.NODE_NAME,
        podName: process.env.POD_NAME,
        podNamespace: process.env.POD_NAMESPACE,
        netConfigPath: opts.netConfigPath,
        annotationPrefix: opts.kubeAnnotationPrefix,
        setNodeNetworkUnavailable: opts.setNodeNetworkUnavailable,
        eventQueueDepth: parseEventQueueDepth(process.env.EVENT_QUEUE_DEPTH),
        contWhenCacheNotReady: process.env.CONT_WHEN_CACHE_NOT_READY === 'true',
        watchObserver: metrics.subnetWatch('kube'),
      });
    } catch (e) {
      log.error(`Failed to create SubnetManager: ${errorMessage(e)}`);
      return 1;
    }
    subnetManager = kube;
    // Admin-set node-public-ip annotations replace --public-ip (docs/COMPATIBILITY.md, "Interface selection").
    const annotated = kube.nodePublicIPs();
    if (annotated.v4) {
      log.info(`Using public IP ${annotated.v4} from node annotation ${kube.names.nodePublicIP}`);
      publicIP = annotated.v4;
    }
    if (annotated.v6) {
      log.info(`Using public IPv6 ${annotated.v6} from node annotation ${kube.names.nodePublicIPv6}`);
      publicIPv6 = annotated.v6;
    }
  } else {
    subnetManager = new EtcdSubnetManager({
      ...etcdOptionsOf(opts),
      previousSubnet: previous?.subnet,
      previousIPv6Subnet: previous?.ipv6Subnet,
      renewMarginMinutes: opts.subnetLeaseRenewMargin,
      onLeaseExpiration: (e) => metrics.setLeaseExpiry(e),
      watchObserver: metrics.subnetWatch('etcd'),
    });
  }
  log.info(`Created subnet manager: ${subnetManager.name}`);

  const stop = new AbortController();
  const signal = stop.signal;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log.info(`Received ${sig}, shutting down`);
      stop.abort();
    });
  }
  const health = new HealthServer(served);
  if (opts.healthzPort > 0) {
    try {
      await health.start(opts.healthzIP, opts.healthzPort);
    } catch (e) {
      log.error(
        `Start healthz server error: ${errorMessage(e)} (pick a free --healthz-port, or --healthz-port=0 to disable it)`,
      );
      await subnetManager.close();
      return 1;
    }
  }

  let netlink: Netlink | undefined;
  const tasks: Promise<unknown>[] = [];
  // A loop that must run until shutdown but ends early (the backend losing its device for good, a rules loop
  // throwing) stops the whole daemon with exit 1, so that its supervisor restarts it.
  let failed = false;
  const background = (what: string, task: Promise<unknown>) => {
    tasks.push(
      task.then(
        () => {
          if (signal.aborted) return;
          log.error(`${what} stopped unexpectedly; shutting down`);
          failed = true;
          stop.abort();
        },
        (e) => {
          log.error(`${what} failed: ${errorMessage(e)}; shutting down`);
          failed = true;
          stop.abort();
        },
      ),
    );
  };
  try {
    let config;
    try {
      config = await subnetManager.getNetworkConfig(signal);
    } catch (e) {
      if (signal.aborted) return 0;
      throw e;
    }
    log.info(`Found network config - Backend type: ${config.backendType}`);
    // iptables mode needs br_netfilter for bridged pod traffic to meet the rules
    // (docs/COMPATIBILITY.md, "Startup, health and shutdown").
    const netfilterFamilies = [...(config.enableIPv4 ? ['iptables'] : []), ...(config.enableIPv6 ? ['ip6tables'] : [])];
    for (const family of config.enableNFTables ? [] : netfilterFamilies) {
      const knob = `/proc/sys/net/bridge/bridge-nf-call-${family}`;
      if (!existsSync(knob)) {
        log.error(
          `Failed to check br_netfilter: stat ${knob}: no such file or directory (load it with \`modprobe br_netfilter\`)`,
        );
        return 1;
      }
    }

    netlink = await openNetlink();
    let extIface: ExternalInterface;
    try {
      extIface = await selectExternalInterface(
        {
          iface: opts.iface,
          ifaceRegex: opts.ifaceRegex,
          ifaceCanReach: opts.ifaceCanReach,
          publicIP,
          ipv4: config.enableIPv4,
          ipv6: config.enableIPv6,
          publicIPv6,
        },
        await hostView(netlink, { ipv6: config.enableIPv6 }),
      );
    } catch (e) {
      log.error(errorMessage(e));
      return 1;
    }

    let network;
    try {
      // The backend reads its lease batches through the metrics, which count and time them.
      const backend = createBackend({ subnetManager: metrics.observeLeases(subnetManager), extIface, config, netlink });
      network = await backend.registerNetwork(signal);
    } catch (e) {
      log.error(`Error registering network: ${errorMessage(e)}`);
      return 1;
    }
    const lease = network.lease;
    metrics.serveNetwork(config.backendType, network);

    // Step 7: the chosen manager's init also removes the other mode's rules.
    const traffic = config.enableNFTables ? new NftablesTrafficManager() : new IptablesTrafficManager();
    const ruleMode = config.enableNFTables ? 'nftables' : 'iptables';
    try {
      await traffic.init(signal);
    } catch (e) {
      log.error(
        `Failed to initialize the ${config.enableNFTables ? 'nftables' : 'iptables'} traffic manager: ${errorMessage(e)}`,
      );
      return 1;
    }
    // Ready (/readyz) once every rule set had its first apply and subnet.env is written
    // (docs/COMPATIBILITY.md, "Startup, health and shutdown").
    let rulesApplied!: () => void;
    const applied = new Promise<void>((r) => (rulesApplied = r));
    const [masqApplied, forwardApplied] = afterAll(2, rulesApplied);
    if (!opts.ipMasq) masqApplied();
    if (!opts.iptablesForwardRules) forwardApplied();
    // Dual stack: the same rules with ip6tables / in `ip6 flannel-ipv6` (docs/COMPATIBILITY.md, "iptables rules",
    // "nftables rules") and subnet.env's IPv6 lines, only when the lease has a v6 subnet (a backend without dual stack
    // leaves it out).
    const ipv6Subnet = config.enableIPv6 ? lease.ipv6Subnet : undefined;
    const ipv6Network = ipv6Subnet ? config.ipv6Network : undefined;
    // IPv6-only networks (EnableIPv4 false) have neither: no IPv4 rules, no IPv4 lines in subnet.env.
    const subnet = config.enableIPv4 ? lease.subnet : undefined;
    const ipv4Network = subnet ? config.network : undefined;
    if (opts.ipMasq) {
      background(
        'Masquerade rules',
        traffic.setupAndEnsureMasqRules({
          network: ipv4Network,
          subnet,
          prevNetwork: previous?.network,
          prevSubnet: previous?.subnet,
          ipv6Network,
          ipv6Subnet,
          prevIpv6Network: previous?.ipv6Network,
          prevIpv6Subnet: previous?.ipv6Subnet,
          resyncSeconds: opts.iptablesResync,
          randomFully: !opts.ipMasqFullyRandomDisable,
          signal,
          onFirstApply: masqApplied,
          onRepair: metrics.ruleRepair(ruleMode, 'masquerade'),
        }),
      );
    }
    if (opts.iptablesForwardRules) {
      background(
        'Forward rules',
        traffic.setupAndEnsureForwardRules({
          network: ipv4Network,
          ipv6Network,
          resyncSeconds: opts.iptablesResync,
          signal,
          onFirstApply: forwardApplied,
          onRepair: metrics.ruleRepair(ruleMode, 'forward'),
        }),
      );
    }
    if (opts.ipBlackholeRoute) {
      const own = [subnet, ipv6Subnet].filter((s) => s !== undefined);
      background(
        'Blackhole route',
        Promise.all(own.map((s) => ensureBlackholeRoute(netlink!, s, opts.iptablesResync, signal))),
      );
    }
    await Promise.race([applied, untilAborted(signal)]);
    if (signal.aborted) {
      await Promise.allSettled(tasks);
      return failed ? 1 : 0;
    }

    try {
      writeSubnetEnv(
        opts.subnetFile,
        formatSubnetEnv({
          network: ipv4Network,
          subnet,
          ipv6Network,
          ipv6Subnet,
          mtu: network.mtu,
          ipMasq: opts.ipMasq,
        }),
      );
    } catch (e) {
      log.error(`Failed to write subnet file: ${errorMessage(e)}`);
      return 1;
    }
    log.info(`Wrote subnet file to ${opts.subnetFile}`);
    health.markReady();

    log.info('Running backend.');
    background('Backend', network.run(signal));
    health.servePeers(config.backendType, network);
    const outcome = await subnetManager.completeLease(lease, signal);
    // The manager has logged "Lease has been revoked. Shutting down daemon." or the conflict; stop everything else too.
    if (outcome !== 'aborted') stop.abort();
    await Promise.allSettled(tasks);
    if (failed || outcome === 'conflict') return 1;
    log.info('Exiting cleanly...');
    return 0;
  } finally {
    stop.abort();
    await Promise.allSettled(tasks);
    await health.stop();
    netlink?.close();
    await subnetManager.close();
  }
}
