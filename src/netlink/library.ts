// The parts of netlink@0.3.0 the facade uses, from the package's own files: its index also loads the nl80211, genl
// and WireGuard families (a 240 KB nl80211 table among them), about 8 ms of flanneld's start for nothing it calls.
// Only this module names those paths; a netlink upgrade that moves them fails here, at build time.
export { FlagsNew } from 'netlink/dist/constants.js';
export type { NetlinkMessage } from 'netlink/dist/structs.js';
export { AttrStream } from 'netlink/dist/structs.js';
export { createRtNetlink, type RtNetlinkSocket } from 'netlink/dist/rt/rt.js';
export * as ifla from 'netlink/dist/rt/ifla.js';
export * as rt from 'netlink/dist/rt/structs.js';
