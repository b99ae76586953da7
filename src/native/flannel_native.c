// flannel-ts native helpers: setns(2) for the calling thread, TUN device creation, and the udp backend's packet I/O
// (a batched TUN/UDP reader on the event loop, batched writes). Only node_api.h and uv.h; everything else is libc.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

// Errno names for the errors these calls can really return; anything else falls back to "errno N".
static const char *errno_name(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case ENXIO: return "ENXIO";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOTTY: return "ENOTTY";
    case EUSERS: return "EUSERS";
    case EIO: return "EIO";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EMSGSIZE: return "EMSGSIZE";
    case ENOBUFS: return "ENOBUFS";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ENETUNREACH: return "ENETUNREACH";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    default: return NULL;
  }
}

static void errno_code(int e, char *code, size_t size) {
  const char *name = errno_name(e);
  if (name) snprintf(code, size, "%s", name);
  else snprintf(code, size, "errno %d", e);
}

// An Error whose message names the call and errno, with `.code` set to the errno name (callbacks get it as a value).
static napi_value errno_value(napi_env env, const char *what, int e) {
  char code[32], msg[256];
  errno_code(e, code, sizeof(code));
  snprintf(msg, sizeof(msg), "%s: %s (%s)", what, code, strerror(e));
  napi_value jcode, jmsg, err;
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &jcode);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &jmsg);
  napi_create_error(env, jcode, jmsg, &err);
  return err;
}

static void throw_errno(napi_env env, const char *what, int e) {
  napi_throw(env, errno_value(env, what, e));
}

static int get_int_arg(napi_env env, napi_value v, const char *name, int32_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
    char msg[96];
    snprintf(msg, sizeof(msg), "%s must be a number", name);
    napi_throw_type_error(env, NULL, msg);
    return 0;
  }
  napi_get_value_int32(env, v, out);
  return 1;
}

// setns(fd, nstype): moves the calling (JS main) thread into the namespace behind fd.
static napi_value js_setns(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "setns(fd, nstype) needs two arguments");
    return NULL;
  }
  int32_t fd, nstype;
  if (!get_int_arg(env, argv[0], "fd", &fd) || !get_int_arg(env, argv[1], "nstype", &nstype)) return NULL;
  if (setns(fd, nstype) != 0) {
    throw_errno(env, "setns", errno);
    return NULL;
  }
  return NULL;
}

// tunOpen(name): a non-blocking, close-on-exec TUN fd (IFF_TUN|IFF_NO_PI); returns {fd, name}.
static napi_value js_tun_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char name[IFNAMSIZ];
  memset(name, 0, sizeof(name));
  if (argc >= 1) {
    napi_valuetype t;
    napi_typeof(env, argv[0], &t);
    if (t == napi_string) {
      size_t len = 0;
      napi_get_value_string_utf8(env, argv[0], NULL, 0, &len);
      if (len >= IFNAMSIZ) {
        napi_throw_range_error(env, NULL, "tunOpen: interface name is longer than 15 characters");
        return NULL;
      }
      napi_get_value_string_utf8(env, argv[0], name, sizeof(name), &len);
    } else if (t != napi_undefined) {
      napi_throw_type_error(env, NULL, "tunOpen(name): name must be a string");
      return NULL;
    }
  }
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    throw_errno(env, "open /dev/net/tun", errno);
    return NULL;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  memcpy(ifr.ifr_name, name, IFNAMSIZ);
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
    int e = errno;
    close(fd);
    throw_errno(env, "ioctl TUNSETIFF", e);
    return NULL;
  }
  napi_value result, jfd, jname;
  napi_create_object(env, &result);
  napi_create_int32(env, fd, &jfd);
  ifr.ifr_name[IFNAMSIZ - 1] = 0;
  napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &jname);
  napi_set_named_property(env, result, "fd", jfd);
  napi_set_named_property(env, result, "name", jname);
  return result;
}

// ---- udp backend packet I/O ------------------------------------------------------------------------------------

#define MODE_TUN 0
#define MODE_UDP 1
#define MAX_SLOTS 1024

// udpOpen(ip, port): a non-blocking, close-on-exec UDP socket bound to ip:port, with large buffers; returns the fd.
static napi_value js_udp_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char ip[64];
  size_t len = 0;
  int32_t port;
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], ip, sizeof(ip), &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "udpOpen(ip, port): ip must be a dotted IPv4 string");
    return NULL;
  }
  if (!get_int_arg(env, argv[1], "port", &port)) return NULL;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  if (port < 0 || port > 65535 || inet_pton(AF_INET, ip, &sa.sin_addr) != 1) {
    char msg[128];
    snprintf(msg, sizeof(msg), "udpOpen: %s:%d is not an IPv4 address and port", ip, port);
    napi_throw_range_error(env, NULL, msg);
    return NULL;
  }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, "socket", errno);
    return NULL;
  }
  // Bursts from the TUN side arrive faster than one wakeup drains them; 4 MiB keeps them (FORCE needs root).
  int size = 4 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) != 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
  if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    int e = errno;
    close(fd);
    char what[96];
    snprintf(what, sizeof(what), "bind %s:%d", ip, port);
    throw_errno(env, what, e);
    return NULL;
  }
  napi_value jfd;
  napi_create_int32(env, fd, &jfd);
  return jfd;
}

typedef struct reader reader_t;
// What JS holds: outlives the reader if JS keeps it, and vice versa.
typedef struct {
  reader_t *r;
} token_t;

struct reader {
  uv_poll_t poll;
  napi_env env;
  napi_ref cb, buf_ref, len_ref;
  napi_async_context actx;
  token_t *token;
  int fd, mode, slot, slots, stopped;
  uint8_t *buf;
  int32_t *lens;
  struct mmsghdr *msgs;
  struct iovec *iov;
};

// Errors that concern one packet or a passing condition; the reader keeps going after reporting them.
static int transient(int e) {
  return e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH || e == EHOSTDOWN || e == ENOBUFS || e == ENOMEM ||
         e == EMSGSIZE || e == EINVAL;
}

static void reader_closed(uv_handle_t *h) {
  reader_t *r = (reader_t *)h->data;
  napi_delete_reference(r->env, r->cb);
  napi_delete_reference(r->env, r->buf_ref);
  napi_delete_reference(r->env, r->len_ref);
  napi_async_destroy(r->env, r->actx);
  if (r->token) r->token->r = NULL;
  free(r->msgs);
  free(r->iov);
  free(r);
}

static void reader_stop(reader_t *r) {
  if (r->stopped) return;
  r->stopped = 1;
  uv_poll_stop(&r->poll);
  uv_close((uv_handle_t *)&r->poll, reader_closed);
}

// cb(err, count) inside a callback scope, so microtasks run afterwards and a throw reaches 'uncaughtException'.
static void reader_call(reader_t *r, napi_value err, int count) {
  napi_env env = r->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb, recv, args[2], result;
  napi_get_reference_value(env, r->cb, &cb);
  // make_callback wants an object as `this`.
  napi_get_global(env, &recv);
  if (err) args[0] = err;
  else napi_get_null(env, &args[0]);
  napi_create_int32(env, count, &args[1]);
  napi_make_callback(env, r->actx, recv, cb, 2, args, &result);
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) {
    // Never leave an exception pending: it would surface in an unrelated later call.
    napi_value ex;
    napi_get_and_clear_last_exception(env, &ex);
    napi_fatal_exception(env, ex);
  }
  napi_close_handle_scope(env, scope);
}

static void reader_readable(uv_poll_t *h, int status, int events) {
  reader_t *r = (reader_t *)h->data;
  if (r->stopped) return;
  int n = 0, err = 0;
  if (status < 0) {
    err = -status;
  } else if (r->mode == MODE_UDP) {
    // recvmmsg overwrites msg_len/msg_flags only; iovecs and buffers are set up once.
    int got = recvmmsg(r->fd, r->msgs, r->slots, MSG_DONTWAIT, NULL);
    if (got < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) err = errno;
    } else {
      for (int i = 0; i < got; i++) {
        // A datagram larger than a slot was cut: -1 tells JS to drop it.
        r->lens[i] = (r->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? -1 : (int32_t)r->msgs[i].msg_len;
        r->msgs[i].msg_hdr.msg_flags = 0;
      }
      n = got;
    }
  } else {
    while (n < r->slots) {
      ssize_t k = read(r->fd, r->buf + (size_t)n * r->slot, r->slot);
      if (k < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
        break;
      }
      r->lens[n++] = (int32_t)k;
    }
  }
  if (n > 0) reader_call(r, NULL, n);
  if (err && !r->stopped) {
    int fatal = status < 0 || !transient(err);
    napi_handle_scope scope;
    napi_open_handle_scope(r->env, &scope);
    napi_value e = errno_value(r->env, r->mode == MODE_UDP ? "recvmmsg" : "read tun", err);
    napi_value jstopped;
    napi_get_boolean(r->env, fatal, &jstopped);
    napi_set_named_property(r->env, e, "stopped", jstopped);
    if (fatal) reader_stop(r);
    reader_call(r, e, 0);
    napi_close_handle_scope(r->env, scope);
  }
}

static void token_finalize(napi_env env, void *data, void *hint) {
  token_t *t = (token_t *)data;
  if (t->r) t->r->token = NULL;
  free(t);
}

// startReader(fd, mode, slotSize, slots, cb) → {handle, buffer, lengths}. On each wakeup up to `slots` packets are read
// into buffer[i*slotSize …] with lengths[i] (-1 = truncated) and cb(null, count) runs; the buffer is reused afterwards.
// Errors other than EAGAIN: cb(err, 0), err.stopped = true when the reader gave up.
static napi_value js_start_reader(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd, mode, slot, slots;
  if (argc < 5) {
    napi_throw_type_error(env, NULL, "startReader(fd, mode, slotSize, slots, cb) needs five arguments");
    return NULL;
  }
  if (!get_int_arg(env, argv[0], "fd", &fd) || !get_int_arg(env, argv[1], "mode", &mode) ||
      !get_int_arg(env, argv[2], "slotSize", &slot) || !get_int_arg(env, argv[3], "slots", &slots))
    return NULL;
  napi_valuetype t;
  napi_typeof(env, argv[4], &t);
  if (t != napi_function) {
    napi_throw_type_error(env, NULL, "startReader: cb must be a function");
    return NULL;
  }
  if ((mode != MODE_TUN && mode != MODE_UDP) || slot < 64 || slot > 65536 || slots < 1 || slots > MAX_SLOTS) {
    napi_throw_range_error(env, NULL, "startReader: mode must be 0 (tun) or 1 (udp), slotSize 64-65536, slots 1-1024");
    return NULL;
  }
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return NULL;
  reader_t *r = calloc(1, sizeof(*r));
  r->msgs = calloc(slots, sizeof(struct mmsghdr));
  r->iov = calloc(slots, sizeof(struct iovec));
  napi_value buffer, lenbuf, lengths, name;
  void *data;
  napi_create_arraybuffer(env, (size_t)slot * slots, &data, &buffer);
  r->buf = data;
  napi_create_arraybuffer(env, sizeof(int32_t) * slots, &data, &lenbuf);
  r->lens = data;
  napi_create_typedarray(env, napi_int32_array, slots, lenbuf, 0, &lengths);
  r->env = env;
  r->fd = fd;
  r->mode = mode;
  r->slot = slot;
  r->slots = slots;
  for (int i = 0; i < slots; i++) {
    r->iov[i].iov_base = r->buf + (size_t)i * slot;
    r->iov[i].iov_len = slot;
    r->msgs[i].msg_hdr.msg_iov = &r->iov[i];
    r->msgs[i].msg_hdr.msg_iovlen = 1;
  }
  // Keep the JS memory alive for as long as the C side writes into it.
  napi_create_reference(env, argv[4], 1, &r->cb);
  napi_create_reference(env, buffer, 1, &r->buf_ref);
  napi_create_reference(env, lengths, 1, &r->len_ref);
  napi_create_string_utf8(env, "flannel:packetReader", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &r->actx);
  int rc = uv_poll_init(loop, &r->poll, fd);
  if (rc == 0) {
    r->poll.data = r;
    rc = uv_poll_start(&r->poll, UV_READABLE, reader_readable);
    if (rc != 0) {
      r->stopped = 1;
      uv_close((uv_handle_t *)&r->poll, reader_closed);
    }
  } else {
    reader_closed((uv_handle_t *)&(uv_poll_t){.data = r});
  }
  if (rc != 0) {
    throw_errno(env, "startReader uv_poll", -rc);
    return NULL;
  }
  token_t *tok = calloc(1, sizeof(*tok));
  tok->r = r;
  r->token = tok;
  napi_value handle, result;
  napi_create_external(env, tok, token_finalize, NULL, &handle);
  napi_create_object(env, &result);
  napi_set_named_property(env, result, "handle", handle);
  napi_set_named_property(env, result, "buffer", buffer);
  napi_set_named_property(env, result, "lengths", lengths);
  return result;
}

// stopReader(handle): stops polling and frees the reader (uv_close); idempotent. Does not close the fd.
static napi_value js_stop_reader(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *data = NULL;
  if (argc < 1 || napi_get_value_external(env, argv[0], &data) != napi_ok) {
    napi_throw_type_error(env, NULL, "stopReader(handle): handle must come from startReader");
    return NULL;
  }
  token_t *tok = (token_t *)data;
  if (tok->r) reader_stop(tok->r);
  return NULL;
}

static int get_typed(napi_env env, napi_value v, const char *what, napi_typedarray_type want, void **data, size_t *len) {
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  bool ok = false;
  napi_is_typedarray(env, v, &ok);
  if (ok) ok = napi_get_typedarray_info(env, v, &type, len, data, &ab, &off) == napi_ok && type == want;
  if (!ok) {
    char msg[96];
    snprintf(msg, sizeof(msg), "writeBatch: %s has the wrong type", what);
    napi_throw_type_error(env, NULL, msg);
  }
  return ok;
}

// writeBatch(fd, mode, data: Uint8Array, desc: Uint32Array, count) → packets written. desc holds per packet
// [offset, length, IPv4 (host order), port]; tun mode uses only offset/length. EAGAIN drops the rest (like a full queue);
// other errors skip the packet and are thrown at the end, naming how many packets they cost.
static napi_value js_write_batch(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd, mode, count;
  if (argc < 5) {
    napi_throw_type_error(env, NULL, "writeBatch(fd, mode, data, desc, count) needs five arguments");
    return NULL;
  }
  if (!get_int_arg(env, argv[0], "fd", &fd) || !get_int_arg(env, argv[1], "mode", &mode) || !get_int_arg(env, argv[4], "count", &count))
    return NULL;
  uint8_t *data;
  uint32_t *desc;
  size_t dlen, nd;
  if (!get_typed(env, argv[2], "data", napi_uint8_array, (void **)&data, &dlen)) return NULL;
  if (!get_typed(env, argv[3], "desc", napi_uint32_array, (void **)&desc, &nd)) return NULL;
  if (count < 0 || (size_t)count * 4 > nd) {
    napi_throw_range_error(env, NULL, "writeBatch: count exceeds the descriptors");
    return NULL;
  }
  for (int i = 0; i < count; i++) {
    if ((size_t)desc[4 * i] + desc[4 * i + 1] > dlen) {
      napi_throw_range_error(env, NULL, "writeBatch: a descriptor points outside data");
      return NULL;
    }
  }
  int sent = 0, failed = 0, first_err = 0;
  if (mode == MODE_TUN) {
    for (int i = 0; i < count; i++) {
      if (write(fd, data + desc[4 * i], desc[4 * i + 1]) >= 0) {
        sent++;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        break;
      } else {
        if (!first_err) first_err = errno;
        failed++;
      }
    }
  } else {
    enum { CHUNK = 64 };
    struct mmsghdr msgs[CHUNK];
    struct iovec iov[CHUNK];
    struct sockaddr_in sa[CHUNK];
    int i = 0;
    while (i < count) {
      int n = count - i < CHUNK ? count - i : CHUNK;
      memset(msgs, 0, sizeof(struct mmsghdr) * n);
      for (int j = 0; j < n; j++) {
        const uint32_t *d = desc + 4 * (i + j);
        iov[j].iov_base = data + d[0];
        iov[j].iov_len = d[1];
        memset(&sa[j], 0, sizeof(sa[j]));
        sa[j].sin_family = AF_INET;
        sa[j].sin_addr.s_addr = htonl(d[2]);
        sa[j].sin_port = htons((uint16_t)d[3]);
        msgs[j].msg_hdr.msg_name = &sa[j];
        msgs[j].msg_hdr.msg_namelen = sizeof(sa[j]);
        msgs[j].msg_hdr.msg_iov = &iov[j];
        msgs[j].msg_hdr.msg_iovlen = 1;
      }
      int k = sendmmsg(fd, msgs, n, MSG_DONTWAIT);
      if (k > 0) {
        sent += k;
        i += k;
        continue;
      }
      if (k < 0 && errno == EINTR) continue;
      if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      // sendmmsg failed on message i: skip it and carry on with the rest.
      if (!first_err) first_err = k < 0 ? errno : EIO;
      failed++;
      i++;
    }
  }
  if (failed) {
    char what[96];
    snprintf(what, sizeof(what), "%s (%d of %d packets dropped)", mode == MODE_TUN ? "write tun" : "sendmmsg", failed, count);
    throw_errno(env, what, first_err);
    return NULL;
  }
  napi_value jsent;
  napi_create_int32(env, sent, &jsent);
  return jsent;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"setns", NULL, js_setns, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tunOpen", NULL, js_tun_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpOpen", NULL, js_udp_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"startReader", NULL, js_start_reader, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stopReader", NULL, js_stop_reader, NULL, NULL, NULL, napi_enumerable, NULL},
      {"writeBatch", NULL, js_write_batch, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
