// The bench's fake vxlan peers: lease i as flanneld would have written it (key and JSON), never contacted.
import { IPv4Net } from '../../src/ip/ipv4.ts';
import { encodeLeaseValue, formatSubnetKey } from '../../src/subnet/lease-json.ts';

export const PREFIX = '/coreos.com/network';

/** Peer i: subnet 10.(i/256).(i%256).0/24 from 10.1.0.0 on (flanneld takes a free one below), public IP in 198.18.0.0/15. */
export function peer(i: number, macByte = 0): { key: string; value: string } {
  const j = i + 256; // leave 10.0.x.0/24 to the node itself
  const subnet = IPv4Net.parse(`10.${j >> 8}.${j & 255}.0/24`);
  const publicIP = `198.${18 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
  const mac = `0e:${macByte.toString(16).padStart(2, '0')}:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
  const value = encodeLeaseValue({
    publicIP,
    publicIPv6: null,
    backendType: 'vxlan',
    backendData: { VNI: 1, VtepMAC: mac },
  });
  return { key: `${PREFIX}/subnets/${formatSubnetKey(subnet)}`, value };
}
