// Masquerade and forward rules behind one interface, so iptables and nftables modes can sit side by side (spec §6).
import type { IPv4Net } from '../ip/ipv4.ts';

export interface MasqRulesParams {
  network: IPv4Net;
  /** This host's lease subnet. */
  subnet: IPv4Net;
  /** From the previous subnet file; when they differ from the current values the old rule set is deleted first. */
  prevNetwork?: IPv4Net;
  prevSubnet?: IPv4Net;
  resyncSeconds: number;
  /** `!--ip-masq-fully-random-disable`; `--random-fully` is still only used when the binary supports it. */
  randomFully: boolean;
  signal: AbortSignal;
  /** Called once the first apply has been attempted (readiness waits for it). */
  onFirstApply?: () => void;
}

export interface ForwardRulesParams {
  network: IPv4Net;
  resyncSeconds: number;
  signal: AbortSignal;
  onFirstApply?: () => void;
}

export interface TrafficManager {
  /** Removes the other mode's leftovers and prepares this one. */
  init(signal: AbortSignal): Promise<void>;
  /** Applies the masquerade rules, then keeps them present every `resyncSeconds` until `signal` aborts. */
  setupAndEnsureMasqRules(p: MasqRulesParams): Promise<void>;
  /** Applies the forward rules, then keeps them present every `resyncSeconds` until `signal` aborts. */
  setupAndEnsureForwardRules(p: ForwardRulesParams): Promise<void>;
}
