// flannel-ts native helpers: setns(2) for the calling thread and TUN device creation.
// Only node_api.h; everything else is plain libc so the addon builds against Node's headers alone.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <node_api.h>

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
    default: return NULL;
  }
}

// Throws an Error whose message names the call and errno, with `.code` set to the errno name.
static void throw_errno(napi_env env, const char *what, int e) {
  char code[32];
  const char *name = errno_name(e);
  if (name) {
    strncpy(code, name, sizeof(code) - 1);
    code[sizeof(code) - 1] = 0;
  } else {
    snprintf(code, sizeof(code), "errno %d", e);
  }
  char msg[256];
  snprintf(msg, sizeof(msg), "%s: %s (%s)", what, code, strerror(e));
  napi_throw_error(env, code, msg);
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

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"setns", NULL, js_setns, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tunOpen", NULL, js_tun_open, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
