// The rtnetlink numbers our encoder, decoder, dumps and watches share (linux/netlink.h, linux/rtnetlink.h,
// linux/neighbour.h): message types, header flags, struct sizes, attribute types and flag bits. No code.

export const NLMSG_ERROR = 2;
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;
export const RTM_NEWNEIGH = 28;
export const RTM_DELNEIGH = 29;
export const RTM_GETNEIGH = 30;

export const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
/** NLM_F_ROOT | NLM_F_MATCH: the whole table. */
export const NLM_F_DUMP = 0x300;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;

export const NLMSG_HDRLEN = 16;
export const RTMSG_LEN = 12;
export const NDMSG_LEN = 12;

export const RTA_DST = 1;
export const RTA_OIF = 4;
export const RTA_GATEWAY = 5;
export const RTA_PRIORITY = 6;
export const RTA_PREFSRC = 7;
export const RTA_TABLE = 15;
export const NDA_DST = 1;
export const NDA_LLADDR = 2;
export const NDA_MASTER = 9;

export const AF_BRIDGE = 7;
export const RT_TABLE_COMPAT = 252;
export const RTN_UNICAST = 1;
export const RTN_BLACKHOLE = 6;
/** rtm_flags: the gateway is on the link even if no prefix says so (`onlink`). */
export const RTNH_F_ONLINK = 4;
export const NUD_PERMANENT = 0x80;
export const NTF_SELF = 0x02;
