/*
 * lab_ip.c: IP addresses and address pools of the lab provider: parsing,
 * containment and first-free allocation. Pure functions over their
 * arguments: no state, no locking, no I/O.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lab.h"

static size_t addr_len(uint8_t family) { return family == 4 ? 4u : 16u; }

bool lab_addr_parse(const char *text, struct lab_addr *out) {
  memset(out, 0, sizeof(*out));
  if (text == NULL)
    return false;
  if (inet_pton(AF_INET, text, out->bytes) == 1) {
    out->family = 4;
    return true;
  }
  if (inet_pton(AF_INET6, text, out->bytes) == 1) {
    out->family = 6;
    return true;
  }
  return false;
}

void lab_addr_format(const struct lab_addr *a, char out[LAB_ADDR_TEXT]) {
  int af = a->family == 4 ? AF_INET : AF_INET6;
  if (inet_ntop(af, a->bytes, out, LAB_ADDR_TEXT) == NULL)
    snprintf(out, LAB_ADDR_TEXT, "?");
}

bool lab_addr_equal(const struct lab_addr *a, const struct lab_addr *b) {
  return a->family == b->family &&
         memcmp(a->bytes, b->bytes, addr_len(a->family)) == 0;
}

int lab_addr_compare(const struct lab_addr *a, const struct lab_addr *b) {
  if (a->family != b->family)
    return a->family < b->family ? -1 : 1;
  return memcmp(a->bytes, b->bytes, addr_len(a->family));
}

/* a += off (big-endian); false on overflow past the family's top. */
static bool addr_add(struct lab_addr *a, uint64_t off) {
  size_t i = addr_len(a->family);
  unsigned carry = 0;
  while (i > 0) {
    i--;
    unsigned sum = (unsigned)a->bytes[i] + (unsigned)(off & 0xffu) + carry;
    a->bytes[i] = (uint8_t)(sum & 0xffu);
    carry = sum >> 8;
    off >>= 8;
    if (off == 0 && carry == 0)
      return true;
  }
  return off == 0 && carry == 0;
}

/* "addr/prefix" into a and prefix; false when malformed. */
static bool cidr_parse(const char *text, struct lab_addr *a, int *prefix) {
  char buf[LAB_ADDR_TEXT];
  const char *slash = strchr(text, '/');
  if (slash == NULL || (size_t)(slash - text) >= sizeof(buf))
    return false;
  memcpy(buf, text, (size_t)(slash - text));
  buf[slash - text] = '\0';
  if (!lab_addr_parse(buf, a))
    return false;
  char *end = NULL;
  long p = strtol(slash + 1, &end, 10);
  if (end == slash + 1 || *end != '\0')
    return false;
  long max = a->family == 4 ? 32 : 128;
  if (p < 0 || p > max)
    return false;
  *prefix = (int)p;
  return true;
}

static bool host_bits_zero(const struct lab_addr *a, int prefix) {
  size_t bits = addr_len(a->family) * 8u;
  for (size_t b = (size_t)prefix; b < bits; b++)
    if (a->bytes[b / 8] & (0x80u >> (b % 8)))
      return false;
  return true;
}

bool lab_cidr_valid(const char *text) {
  struct lab_addr a;
  int prefix;
  return text != NULL && cidr_parse(text, &a, &prefix) &&
         host_bits_zero(&a, prefix);
}

/* Fill first/count from a CIDR: drop network and broadcast addresses of
 * IPv4 subnets larger than /31; for IPv6 skip the subnet-router anycast
 * address and use at most LAB_IPV6_WINDOW addresses. */
static void pool_from_cidr(struct lab_pool *p, const struct lab_addr *net,
                           int prefix) {
  unsigned host_bits = (unsigned)(net->family == 4 ? 32 : 128) - (unsigned)prefix;
  p->first = *net;
  if (net->family == 4) {
    uint64_t size = (uint64_t)1 << host_bits;
    if (host_bits >= 2) {
      addr_add(&p->first, 1);
      p->count = size - 2;
    } else {
      p->count = size;
    }
    return;
  }
  uint64_t size = host_bits >= 17 ? LAB_IPV6_WINDOW : (uint64_t)1 << host_bits;
  if (host_bits >= 2) {
    addr_add(&p->first, 1);
    p->count = size - 1;
  } else {
    p->count = size;
  }
}

static bool pool_name_valid(const char *s, size_t n) {
  if (n == 0)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
      return false;
  }
  return true;
}

bool lab_pool_parse(const struct ccm_host_api *api, const char *text,
                    uint8_t family, struct lab_pool *out, char *err,
                    size_t errlen) {
  char buf[2 * LAB_ADDR_TEXT + 8];
  const char *spec = text;
  const char *eq = strchr(text, '=');
  memset(out, 0, sizeof(*out));
  if (eq != NULL) {
    if (!pool_name_valid(text, (size_t)(eq - text))) {
      snprintf(err, errlen, "pool name before '=' must be [a-z0-9-]+");
      return false;
    }
    spec = eq + 1;
  }
  if (strlen(spec) >= sizeof(buf)) {
    snprintf(err, errlen, "too long");
    return false;
  }
  snprintf(buf, sizeof(buf), "%s", spec);

  char *dash = strchr(buf, '-');
  if (dash != NULL && family == 4) {
    struct lab_addr lo, hi;
    *dash = '\0';
    if (!lab_addr_parse(buf, &lo) || lo.family != 4 ||
        !lab_addr_parse(dash + 1, &hi) || hi.family != 4) {
      snprintf(err, errlen, "expected a range of two IPv4 addresses");
      return false;
    }
    if (lab_addr_compare(&lo, &hi) > 0) {
      snprintf(err, errlen, "range start is above its end");
      return false;
    }
    uint32_t l = ((uint32_t)lo.bytes[0] << 24) | ((uint32_t)lo.bytes[1] << 16) |
                 ((uint32_t)lo.bytes[2] << 8) | lo.bytes[3];
    uint32_t h = ((uint32_t)hi.bytes[0] << 24) | ((uint32_t)hi.bytes[1] << 16) |
                 ((uint32_t)hi.bytes[2] << 8) | hi.bytes[3];
    out->first = lo;
    out->count = (uint64_t)h - l + 1;
  } else if (strchr(buf, '/') != NULL) {
    struct lab_addr net;
    int prefix;
    if (!cidr_parse(buf, &net, &prefix) || net.family != family) {
      snprintf(err, errlen, "expected an IPv%u CIDR", (unsigned)family);
      return false;
    }
    if (!host_bits_zero(&net, prefix)) {
      snprintf(err, errlen, "host bits are set after the /%d prefix", prefix);
      return false;
    }
    pool_from_cidr(out, &net, prefix);
  } else {
    if (!lab_addr_parse(buf, &out->first) || out->first.family != family) {
      snprintf(err, errlen, family == 4
                                ? "expected a CIDR, a range a.b.c.d-a.b.c.e "
                                  "or one IPv4 address"
                                : "expected an IPv6 CIDR or one IPv6 address");
      return false;
    }
    out->count = 1;
  }

  out->text = api->strdup(text);
  if (out->text == NULL)
    goto nomem;
  if (eq != NULL) {
    size_t n = (size_t)(eq - text);
    out->name = api->alloc(n + 1);
    if (out->name == NULL)
      goto nomem;
    memcpy(out->name, text, n);
    out->name[n] = '\0';
  }
  return true;
nomem:
  lab_pool_clear(api, out);
  snprintf(err, errlen, "out of memory");
  return false;
}

void lab_pool_clear(const struct ccm_host_api *api, struct lab_pool *p) {
  api->free(p->name);
  api->free(p->text);
  memset(p, 0, sizeof(*p));
}

bool lab_pool_contains(const struct lab_pool *p, const struct lab_addr *a) {
  if (p->first.family != a->family || p->count == 0)
    return false;
  struct lab_addr last = p->first;
  if (!addr_add(&last, p->count - 1))
    return false;
  return lab_addr_compare(&p->first, a) <= 0 && lab_addr_compare(a, &last) <= 0;
}

static int addr_cmp_void(const void *a, const void *b) {
  return lab_addr_compare(a, b);
}

bool lab_pool_allocate(const struct lab_pool *pools, size_t n_pools,
                       uint8_t family, const char *pool_name,
                       const struct lab_addr *used, size_t n_used,
                       struct lab_addr *out) {
  for (size_t i = 0; i < n_pools; i++) {
    const struct lab_pool *p = &pools[i];
    if (p->first.family != family)
      continue;
    if (pool_name != NULL &&
        (p->name == NULL || strcmp(p->name, pool_name) != 0))
      continue;
    /* Each taken address costs one probe, so this ends after at most
     * n_used + 1 probes per pool however large the pool is. */
    struct lab_addr cand = p->first;
    for (uint64_t off = 0; off < p->count; off++) {
      if (n_used == 0 ||
          bsearch(&cand, used, n_used, sizeof(*used), addr_cmp_void) == NULL) {
        *out = cand;
        return true;
      }
      if (!addr_add(&cand, 1))
        break;
    }
  }
  return false;
}
