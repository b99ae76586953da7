// Masquerade and forward rules behind one interface, so iptables and nftables modes can sit side by side
// (docs/COMPATIBILITY.md, "iptables rules", "nftables rules").
import type { IPv4Net } from '../ip/ipv4.ts';
import type { IPv6Net } from '../ip/ipv6.ts';
import type { OnRuleRepair } from './resync.ts';

export interface MasqRulesParams {
  /** With `subnet`: the IPv4 rules. Both absent on an IPv6-only network (the IPv4 rules are then removed). */
  network?: IPv4Net;
  /** This host's lease subnet. */
  subnet?: IPv4Net;
  /** From the previous subnet file; when they differ from the current values the old rule set is deleted first. */
  prevNetwork?: IPv4Net;
  prevSubnet?: IPv4Net;
  /**
   * With `ipv6Subnet`: the IPv6 rules (ip6tables, or nft table `ip6 flannel-ipv6`). Both absent when IPv6 is not
   * enabled (flannel's IPv6 chains and their jumps are then removed). At least one family must be given.
   */
  ipv6Network?: IPv6Net;
  ipv6Subnet?: IPv6Net;
  prevIpv6Network?: IPv6Net;
  prevIpv6Subnet?: IPv6Net;
  resyncSeconds: number;
  /** `!--ip-masq-fully-random-disable`; `--random-fully` is still only used when the binary supports it. */
  randomFully: boolean;
  signal: AbortSignal;
  /** Called once the first apply of every family has been attempted (readiness waits for it). */
  onFirstApply?: () => void;
  /** Called after a resync found a family's rules missing or changed and applied them again. */
  onRepair?: OnRuleRepair;
}

export interface ForwardRulesParams {
  /** Absent on an IPv6-only network (the IPv4 forward chain is then removed). */
  network?: IPv4Net;
  /** The IPv6 forward rules; absent when IPv6 is not enabled (the IPv6 forward chain is then removed). */
  ipv6Network?: IPv6Net;
  resyncSeconds: number;
  signal: AbortSignal;
  onFirstApply?: () => void;
  onRepair?: OnRuleRepair;
}

export interface TrafficManager {
  /** Removes the other mode's leftovers and prepares this one. */
  init(signal: AbortSignal): Promise<void>;
  /**
   * Applies the masquerade rules of each family given, then keeps them present every `resyncSeconds` until `signal`
   * aborts; removes flannel's chains of a family not given. Rejects when no family is given.
   */
  setupAndEnsureMasqRules(p: MasqRulesParams): Promise<void>;
  /** As setupAndEnsureMasqRules, for the forward rules. */
  setupAndEnsureForwardRules(p: ForwardRulesParams): Promise<void>;
}
