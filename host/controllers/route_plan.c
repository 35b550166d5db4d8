/*
 * route_plan.c: the route controller's pure decisions (route_plan.h):
 * CIDR arithmetic, responsibility, the create and delete plan and the
 * condition to set. It must not call a provider, Kubernetes or the clock.
 */
#include "controllers/route_plan.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

#include "kube/objects.h" /* enum obj_cond */

int route_cidr_parse(const char *text, struct route_cidr *out) {
  char ip[INET6_ADDRSTRLEN + 1];
  const char *slash;
  size_t iplen;
  unsigned prefix = 0, max;
  const char *p;

  if (text == NULL || out == NULL)
    return -1;
  slash = strchr(text, '/');
  if (slash == NULL)
    return -1;
  iplen = (size_t)(slash - text);
  if (iplen == 0 || iplen >= sizeof(ip))
    return -1;
  memcpy(ip, text, iplen);
  ip[iplen] = '\0';
  p = slash + 1;
  if (*p == '\0' || strlen(p) > 3)
    return -1;
  for (; *p != '\0'; p++) {
    if (*p < '0' || *p > '9')
      return -1;
    prefix = prefix * 10u + (unsigned)(*p - '0');
  }
  memset(out, 0, sizeof(*out));
  if (strchr(ip, ':') != NULL) {
    if (inet_pton(AF_INET6, ip, out->addr) != 1)
      return -1;
    out->family = 6;
    max = 128;
  } else {
    if (inet_pton(AF_INET, ip, out->addr) != 1)
      return -1;
    out->family = 4;
    max = 32;
  }
  if (prefix > max)
    return -1;
  out->prefix = prefix;
  /* Clear the host bits. */
  for (unsigned bit = prefix; bit < max; bit++)
    out->addr[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
  return 0;
}

int route_cidr_format(const struct route_cidr *c, char *buf, size_t cap) {
  char ip[INET6_ADDRSTRLEN];
  int af = c->family == 6 ? AF_INET6 : AF_INET;
  if (inet_ntop(af, c->addr, ip, sizeof(ip)) == NULL)
    return -1;
  int n = snprintf(buf, cap, "%s/%u", ip, c->prefix);
  return n < 0 || (size_t)n >= cap ? -1 : 0;
}

bool route_cidr_contains(const struct route_cidr *net, int family,
                         const uint8_t *addr) {
  if (net->family != family)
    return false;
  unsigned full = net->prefix / 8, rest = net->prefix % 8;
  if (memcmp(net->addr, addr, full) != 0)
    return false;
  if (rest == 0)
    return true;
  uint8_t mask = (uint8_t)(0xffu << (8 - rest));
  return (net->addr[full] & mask) == (addr[full] & mask);
}

int route_cluster_cidrs_parse(const char *text, struct route_cidr *out,
                              size_t *n, char *err, size_t errlen) {
  const char *p = text;
  *n = 0;
  if (text == NULL || text[0] == '\0') {
    snprintf(err, errlen, "cluster_cidr is empty");
    return -1;
  }
  while (*p != '\0') {
    char item[CCM_ROUTE_CIDR_TEXT];
    const char *end = strchr(p, ',');
    size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
    /* Trim spaces around each entry. */
    while (len > 0 && *p == ' ') {
      p++;
      len--;
    }
    while (len > 0 && p[len - 1] == ' ')
      len--;
    if (len == 0 || len >= sizeof(item)) {
      snprintf(err, errlen, "cluster_cidr \"%s\": entry %zu is %s", text,
               *n + 1, len == 0 ? "empty" : "too long");
      return -1;
    }
    if (*n == CCM_ROUTE_MAX_CLUSTER_CIDRS) {
      snprintf(err, errlen, "cluster_cidr \"%s\": at most %u CIDRs (one per "
                            "IP family)",
               text, CCM_ROUTE_MAX_CLUSTER_CIDRS);
      return -1;
    }
    memcpy(item, p, len);
    item[len] = '\0';
    if (route_cidr_parse(item, &out[*n]) != 0) {
      snprintf(err, errlen, "cluster_cidr \"%s\": \"%s\" is not a CIDR",
               text, item);
      return -1;
    }
    if (*n == 1 && out[0].family == out[1].family) {
      snprintf(err, errlen, "cluster_cidr \"%s\": a dual-stack pair needs "
                            "one IPv4 and one IPv6 CIDR",
               text);
      return -1;
    }
    (*n)++;
    if (end == NULL)
      break;
    p = end + 1;
    if (*p == '\0') {
      snprintf(err, errlen, "cluster_cidr \"%s\": trailing comma", text);
      return -1;
    }
  }
  return 0;
}

bool route_is_responsible(const struct route_cidr *cluster,
                          size_t n_cluster, const char *dest) {
  struct route_cidr c;
  uint8_t last[16];
  if (route_cidr_parse(dest, &c) != 0)
    return false;
  unsigned max = c.family == 6 ? 128u : 32u;
  memcpy(last, c.addr, sizeof(last));
  for (unsigned bit = c.prefix; bit < max; bit++)
    last[bit / 8] |= (uint8_t)(0x80u >> (bit % 8));
  for (size_t i = 0; i < n_cluster; i++) {
    if (route_cidr_contains(&cluster[i], c.family, c.addr) ||
        route_cidr_contains(&cluster[i], c.family, last))
      return true;
  }
  return false;
}

/* ---- planning ---------------------------------------------------------- */

/* (node, CIDR) with the CIDR in canonical text when it parses, so that
 * "fd00:0:0::/64" and "fd00::/64" are the same destination. */
struct plan_key {
  const char *node;
  char cidr[CCM_ROUTE_CIDR_TEXT];
  size_t idx;
};

static void plan_key_set(struct plan_key *k, const char *node,
                         const char *cidr, size_t idx) {
  struct route_cidr c;
  k->node = node != NULL ? node : "";
  k->idx = idx;
  if (cidr != NULL && route_cidr_parse(cidr, &c) == 0 &&
      route_cidr_format(&c, k->cidr, sizeof(k->cidr)) == 0)
    return;
  snprintf(k->cidr, sizeof(k->cidr), "%s", cidr != NULL ? cidr : "");
}

static int plan_key_cmp(const void *a, const void *b) {
  const struct plan_key *x = a, *y = b;
  int c = strcmp(x->node, y->node);
  return c != 0 ? c : strcmp(x->cidr, y->cidr);
}

static int plan_key_node_cmp(const void *a, const void *b) {
  const struct plan_key *x = a, *y = b;
  return strcmp(x->node, y->node);
}

static bool plan_has(const struct plan_key *v, size_t n,
                     const struct plan_key *k) {
  return n > 0 && bsearch(k, v, n, sizeof(*v), plan_key_cmp) != NULL;
}

void route_plan_free(struct route_plan *p) {
  if (p == NULL)
    return;
  mem_free(p->creates);
  mem_free(p->deletes);
  mem_free(p->wanted);
  mem_free(p->kept);
  mem_free(p->has_routes);
  memset(p, 0, sizeof(*p));
}

int route_plan_build(const struct route_cidr *cluster, size_t n_cluster,
                     const struct route_plan_node *nodes, size_t n_nodes,
                     const struct route_plan_route *routes, size_t n_routes,
                     struct route_plan *out) {
  struct plan_key *rkeys = NULL, *nkeys = NULL;
  size_t n_nkeys = 0, n_rkeys = 0, total_cidrs = 0;

  memset(out, 0, sizeof(*out));
  for (size_t i = 0; i < n_nodes; i++)
    total_cidrs += nodes[i].n_pod_cidrs;
  /* Always allocate one element so that 0-sized requests still succeed. */
  rkeys = mem_calloc(n_routes + 1, sizeof(*rkeys));
  nkeys = mem_calloc(total_cidrs + 1, sizeof(*nkeys));
  out->creates = mem_calloc(total_cidrs + 1, sizeof(*out->creates));
  out->deletes = mem_calloc(n_routes + 1, sizeof(*out->deletes));
  out->wanted = mem_calloc(n_nodes + 1, sizeof(*out->wanted));
  out->kept = mem_calloc(n_nodes + 1, sizeof(*out->kept));
  out->has_routes = mem_calloc(n_nodes + 1, sizeof(*out->has_routes));
  if (rkeys == NULL || nkeys == NULL || out->creates == NULL ||
      out->deletes == NULL || out->wanted == NULL || out->kept == NULL ||
      out->has_routes == NULL)
    goto fail;

  /* Routes with a target node, sorted by (node, CIDR). Upstream ignores
   * routes without a target when mapping nodes. */
  for (size_t i = 0; i < n_routes; i++) {
    const char *t = routes[i].target_node;
    if (t != NULL && t[0] != '\0')
      plan_key_set(&rkeys[n_rkeys++], t, routes[i].destination_cidr, i);
  }
  qsort(rkeys, n_rkeys, sizeof(*rkeys), plan_key_cmp);

  /* Keep or create each distinct podCIDR of each node. */
  for (size_t i = 0; i < n_nodes; i++) {
    const struct route_plan_node *nd = &nodes[i];
    struct plan_key probe = {.node = nd->name};
    if (n_rkeys > 0 && bsearch(&probe, rkeys, n_rkeys, sizeof(*rkeys),
                               plan_key_node_cmp) != NULL)
      out->has_routes[i] = true;
    size_t first = n_nkeys;
    for (size_t j = 0; j < nd->n_pod_cidrs; j++) {
      struct plan_key k;
      bool dup = false;
      plan_key_set(&k, nd->name, nd->pod_cidrs[j], i);
      for (size_t d = first; d < n_nkeys && !dup; d++)
        dup = strcmp(nkeys[d].cidr, k.cidr) == 0;
      if (dup)
        continue;
      nkeys[n_nkeys++] = k;
      out->wanted[i]++;
      if (plan_has(rkeys, n_rkeys, &k)) {
        out->kept[i]++;
      } else {
        out->creates[out->n_creates].node = i;
        out->creates[out->n_creates].cidr = j;
        out->n_creates++;
      }
    }
  }
  qsort(nkeys, n_nkeys, sizeof(*nkeys), plan_key_cmp);

  /* Delete what this cluster owns and no node accounts for. */
  for (size_t i = 0; i < n_routes; i++) {
    const struct route_plan_route *r = &routes[i];
    struct plan_key k;
    if (!route_is_responsible(cluster, n_cluster, r->destination_cidr))
      continue;
    plan_key_set(&k, r->target_node, r->destination_cidr, i);
    if (r->blackhole || r->target_node == NULL || r->target_node[0] == '\0' ||
        !plan_has(nkeys, n_nkeys, &k))
      out->deletes[out->n_deletes++] = i;
  }
  mem_free(rkeys);
  mem_free(nkeys);
  return 0;

fail:
  mem_free(rkeys);
  mem_free(nkeys);
  route_plan_free(out);
  return -1;
}

enum route_cond_want route_cond_decide(size_t wanted, size_t ok,
                                       bool has_routes) {
  if (wanted == 0)
    return has_routes ? ROUTE_COND_FAILED : ROUTE_COND_LEAVE;
  return ok >= wanted ? ROUTE_COND_CREATED : ROUTE_COND_FAILED;
}

bool route_cond_matches(enum route_cond_want want, int status,
                        const char *reason) {
  switch (want) {
  case ROUTE_COND_CREATED:
    return status == OBJ_COND_FALSE && reason != NULL &&
           strcmp(reason, CCM_ROUTE_REASON_CREATED) == 0;
  case ROUTE_COND_FAILED:
    return status == OBJ_COND_TRUE && reason != NULL &&
           strcmp(reason, CCM_ROUTE_REASON_FAILED) == 0;
  case ROUTE_COND_LEAVE:
  default:
    return true;
  }
}
