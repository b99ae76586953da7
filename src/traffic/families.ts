// Which IP families the rule parameters ask for: IPv4, IPv6 or both, each half complete (the IPv6 sets are the IPv4
// ones with IPv6 addresses: docs/COMPATIBILITY.md, "iptables rules"). A family left out gets no flannel rules at all;
// the managers remove what an earlier run left.
import type { IPv4Net } from '../ip/ipv4.ts';
import type { IPv6Net } from '../ip/ipv6.ts';
import type { ForwardRulesParams, MasqRulesParams } from './traffic-manager.ts';

/** One family's network and subnet: both or neither. `need` says what half a pair lacks; `other` is the other family. */
function pair<N>(
  network: N | undefined,
  subnet: N | undefined,
  need: string,
  other: 'IPv4' | 'IPv6',
): { network: N; subnet: N } | undefined {
  if (!network && !subnet) return undefined;
  if (!network || !subnet) {
    throw new Error(
      `${need} (got ${network ?? 'no network'} / ${subnet ?? 'no subnet'}); pass both, or neither for ${other} only`,
    );
  }
  return { network, subnet };
}

/** The v6 network and subnet when IPv6 is on; throws when only one of them is given. */
export function dualStackMasq(p: MasqRulesParams): { network: IPv6Net; subnet: IPv6Net } | undefined {
  return pair(p.ipv6Network, p.ipv6Subnet, 'IPv6 masquerade rules need both ipv6Network and ipv6Subnet', 'IPv4');
}

/** The v4 network and subnet, undefined on an IPv6-only network; throws when only one of them is given. */
function ipv4Masq(p: MasqRulesParams): { network: IPv4Net; subnet: IPv4Net } | undefined {
  return pair(p.network, p.subnet, 'IPv4 masquerade rules need both network and subnet', 'IPv6');
}

export interface MasqFamilies {
  v4?: { network: IPv4Net; subnet: IPv4Net };
  v6?: { network: IPv6Net; subnet: IPv6Net };
}

/** Both halves of the masquerade parameters; throws when neither family is given (a caller's bug). */
export function masqFamilies(p: MasqRulesParams): MasqFamilies {
  const v4 = ipv4Masq(p);
  const v6 = dualStackMasq(p);
  if (!v4 && !v6) {
    throw new Error(
      'masquerade rules need at least one IP family: pass network and subnet (IPv4), ipv6Network and ipv6Subnet (IPv6), or all four (dual stack); got none',
    );
  }
  return { v4, v6 };
}

/** Why a family gets no flannel rules, for the managers' log lines about removing what an earlier run left. */
export function unusedFamilyReason(v6: boolean): string {
  return v6 ? 'IPv6 is not enabled' : 'the network has no IPv4 part';
}

/** The forward rules' networks; throws when neither family is given (a caller's bug). */
export function forwardFamilies(p: ForwardRulesParams): { v4?: IPv4Net; v6?: IPv6Net } {
  if (!p.network && !p.ipv6Network) {
    throw new Error(
      'forward rules need at least one IP family: pass network (IPv4), ipv6Network (IPv6), or both (dual stack); got neither',
    );
  }
  return { v4: p.network, v6: p.ipv6Network };
}
