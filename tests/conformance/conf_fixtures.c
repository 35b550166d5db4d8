/*
 * conf_fixtures.c: the inputs the kit hands a module (realistic Services,
 * nodes, load-balancer names that follow the module's rules) and small
 * helpers for reasons and comparisons. It must not call the module.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conformance.h"

int conf_fail(char *why, size_t cap, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(why, cap, fmt, ap);
  va_end(ap);
  return CONF_FAIL;
}

int conf_skip(char *why, size_t cap, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(why, cap, fmt, ap);
  va_end(ap);
  return CONF_SKIP;
}

int conf_call_fail(char *why, size_t cap, const char *what, int status,
                   const char *want, const char *err) {
  char sb[64];

  return conf_fail(why, cap, "%s returned %s%s%s%s%s", what,
                   conf_status_str(status, sb, sizeof sb),
                   want ? ", want " : "", want ? want : "",
                   err && err[0] ? ": " : "", err ? err : "");
}

void conf_note(const struct conf_run *run, const char *fmt, ...) {
  va_list ap;

  if (!run->verbose)
    return;
  fputs("     # ", stdout);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  fputc('\n', stdout);
}

/* ---- nodes ------------------------------------------------------------ */

void conf_node_make(struct conf_node *n, const char *name, const char *uid,
                    const char *provider_id, const char *ip) {
  memset(n, 0, sizeof *n);
  snprintf(n->name, sizeof n->name, "%s", name);
  snprintf(n->uid, sizeof n->uid, "%s", uid);
  snprintf(n->ip, sizeof n->ip, "%s", ip ? ip : "");
  n->node.struct_size = sizeof n->node;
  n->node.name = n->name;
  n->node.uid = n->uid;
  if (provider_id && provider_id[0]) {
    snprintf(n->provider_id, sizeof n->provider_id, "%s", provider_id);
    n->node.provider_id = n->provider_id;
  }
  if (n->ip[0]) {
    n->addr.struct_size = sizeof n->addr;
    n->addr.type = CCM_ADDR_INTERNAL_IP;
    n->addr.address = n->ip;
    n->addrs[0] = &n->addr;
    n->node.addresses = n->addrs;
    n->node.n_addresses = 1;
  }
}

/* Copy a conf_node; its pointers must be re-aimed at the copy. */
static void node_copy(struct conf_node *dst, const struct conf_node *src) {
  conf_node_make(dst, src->name, src->uid,
                 src->node.provider_id ? src->provider_id : NULL, src->ip);
}

void conf_fixtures_init(struct conf_run *run) {
  size_t i;

  run->nonce = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16);
  atomic_init(&run->counter, 0);
  for (i = 0; i < 3 && i < run->n_known; i++)
    node_copy(&run->pool[i], &run->known[i]);
  for (; i < 3; i++) {
    char name[64], uid[40], ip[32];
    snprintf(name, sizeof name, "conformance-node-%zu", i + 1);
    snprintf(uid, sizeof uid, "0c0f0000-0000-4000-8000-%012zx", i + 1);
    snprintf(ip, sizeof ip, "10.240.0.%zu", i + 1);
    conf_node_make(&run->pool[i], name, uid, NULL, ip);
  }
}

static void node_set(struct conf_run *run, struct conf_node_set *set,
                     size_t first) {
  memset(set, 0, sizeof *set);
  set->ptrs[0] = &run->pool[first].node;
  set->ptrs[1] = &run->pool[first + 1].node;
  set->list.struct_size = sizeof set->list;
  set->list.nodes = set->ptrs;
  set->list.n_nodes = 2;
}

void conf_nodes_a(struct conf_run *run, struct conf_node_set *set) {
  node_set(run, set, 0);
}

void conf_nodes_b(struct conf_run *run, struct conf_node_set *set) {
  node_set(run, set, 1);
}

void conf_node_unknown(struct conf_run *run, struct conf_node *n) {
  char name[64], uid[40];
  unsigned c = atomic_fetch_add(&run->counter, 1);

  snprintf(name, sizeof name, "conformance-unknown-%08x-%u", run->nonce, c);
  snprintf(uid, sizeof uid, "%08x-%04x-4000-8000-0000000000ff", run->nonce,
           c & 0xffffu);
  conf_node_make(n, name, uid, NULL, NULL);
}

/* ---- names ------------------------------------------------------------ */

static bool in_set(const char *set, char c) {
  return c != '\0' && strchr(set, c) != NULL;
}

bool conf_name_valid(const struct ccm_name_rules *r, const char *name,
                     char *why, size_t cap) {
  size_t len = strlen(name);

  if (r == NULL)
    return true;
  if (len < r->min_length || len > r->max_length) {
    snprintf(why, cap, "length %zu outside [%u, %u]", len, r->min_length,
             r->max_length);
    return false;
  }
  for (size_t i = 0; i < len; i++) {
    if (r->allowed == NULL || !in_set(r->allowed, name[i])) {
      snprintf(why, cap, "character '%c' not allowed", name[i]);
      return false;
    }
  }
  if (len && r->allowed_first && !in_set(r->allowed_first, name[0])) {
    snprintf(why, cap, "first character '%c' not allowed", name[0]);
    return false;
  }
  if (len && r->allowed_last && !in_set(r->allowed_last, name[len - 1])) {
    snprintf(why, cap, "last character '%c' not allowed", name[len - 1]);
    return false;
  }
  return true;
}

/* A character of `set` that is also in `allowed`, preferring letters. */
static char pick(const char *set, const char *allowed) {
  const char *pref = "abcdefghijklmnopqrstuvwxyz0123456789";

  for (const char *p = pref; *p; p++)
    if (in_set(set, *p) && in_set(allowed, *p))
      return *p;
  for (const char *p = set; *p; p++)
    if (in_set(allowed, *p))
      return *p;
  return '\0';
}

/* Build a name from the unique hex seed using only what the rules allow:
 * allowed hex digits as they are, others mapped into the allowed set. */
static bool name_derive(const struct ccm_name_rules *r, const char *seed,
                        char *out, size_t cap) {
  size_t n_allowed = r->allowed ? strlen(r->allowed) : 0;
  size_t max = r->max_length < cap - 1 ? r->max_length : cap - 1;
  size_t len = 0;
  char c;

  if (n_allowed == 0 || max == 0)
    return false;
  c = pick(r->allowed_first ? r->allowed_first : r->allowed, r->allowed);
  if (c == '\0')
    return false;
  out[len++] = c;
  for (const char *p = seed; *p && len < max; p++) {
    if (in_set(r->allowed, *p))
      out[len++] = *p;
    else
      out[len++] = r->allowed[(unsigned char)*p % n_allowed];
  }
  while (len < r->min_length && len < max)
    out[len++] = pick(r->allowed, r->allowed);
  out[len] = '\0';
  if (r->allowed_last && !in_set(r->allowed_last, out[len - 1])) {
    c = pick(r->allowed_last, r->allowed);
    if (c == '\0')
      return false;
    if (len > 1 && len < max && len >= r->min_length)
      out[len++] = c;
    else
      out[len - 1] = c;
    out[len] = '\0';
  }
  return true;
}

bool conf_service_make(struct conf_run *run, struct conf_service *s,
                       const char *label, char *why, size_t cap) {
  unsigned c = atomic_fetch_add(&run->counter, 1);
  const struct ccm_name_rules *rules = run->prov->lb_name_rules;
  char seed[32], reason[128];
  size_t j = 0;

  memset(s, 0, sizeof *s);
  snprintf(s->name, sizeof s->name, "%s-%u", label, c);
  /* The counter leads so that names stay unique however they are cut. */
  snprintf(s->uid, sizeof s->uid, "%04x%04x-%04x-4c0f-8a11-%012x",
           c & 0xffffu, run->nonce >> 16, run->nonce & 0xffffu, c);
  /* Upstream's default: "a" + the uid without dashes, cut to 32. */
  s->lb_name[j++] = 'a';
  for (const char *p = s->uid; *p && j < 32; p++)
    if (*p != '-')
      s->lb_name[j++] = *p;
  s->lb_name[j] = '\0';
  if (!conf_name_valid(rules, s->lb_name, reason, sizeof reason)) {
    snprintf(seed, sizeof seed, "%s", s->lb_name + 1);
    if (!name_derive(rules, seed, s->lb_name, sizeof s->lb_name) ||
        !conf_name_valid(rules, s->lb_name, reason, sizeof reason)) {
      snprintf(why, cap,
               "cannot build a load-balancer name that follows the "
               "module's name rules (%s)", reason);
      return false;
    }
  }

  s->port.struct_size = sizeof s->port;
  s->port.name = "http";
  s->port.protocol = CCM_PROTO_TCP;
  s->port.port = 80;
  s->port.node_port = 30080;
  s->ports[0] = &s->port;
  s->family = CCM_IPV4;
  s->tag.struct_size = sizeof s->tag;
  s->tag.key = "kubernetes.io/cluster";
  s->tag.value = run->cluster;
  s->tags[0] = &s->tag;

  s->svc.struct_size = sizeof s->svc;
  s->svc.cluster_name = run->cluster;
  s->svc.namespace_ = "conformance";
  s->svc.name = s->name;
  s->svc.uid = s->uid;
  s->svc.lb_name = s->lb_name;
  s->svc.ports = s->ports;
  s->svc.n_ports = 1;
  s->svc.ip_families = &s->family;
  s->svc.n_ip_families = 1;
  s->svc.tags = s->tags;
  s->svc.n_tags = 1;
  return true;
}

/* ---- load-balancer status ---------------------------------------------- */

static bool str_eq(const char *a, const char *b) {
  if (a == NULL || b == NULL)
    return a == b;
  return strcmp(a, b) == 0;
}

static bool ingress_eq(const struct lb_ingress *a, const struct lb_ingress *b) {
  return str_eq(a->ip, b->ip) && str_eq(a->hostname, b->hostname);
}

static size_t ingress_count(const struct ccm_lb_status *st,
                            const struct lb_ingress *in) {
  size_t n = 0;

  for (size_t i = 0; i < st->n; i++)
    if (ingress_eq(&st->items[i], in))
      n++;
  return n;
}

bool conf_lb_equal(const struct ccm_lb_status *a,
                   const struct ccm_lb_status *b) {
  if (a->n != b->n)
    return false;
  for (size_t i = 0; i < a->n; i++)
    if (ingress_count(a, &a->items[i]) != ingress_count(b, &a->items[i]))
      return false;
  return true;
}

void conf_lb_format(const struct ccm_lb_status *st, char *buf, size_t cap) {
  buf[0] = '\0';
  conf_appendf(buf, cap, "[");
  for (size_t i = 0; i < st->n; i++) {
    const struct lb_ingress *in = &st->items[i];
    conf_appendf(buf, cap, "%s", i ? ", " : "");
    if (in->ip)
      conf_appendf(buf, cap, "ip %s", in->ip);
    if (in->hostname)
      conf_appendf(buf, cap, "%shost %s", in->ip ? " " : "", in->hostname);
  }
  conf_appendf(buf, cap, "]");
}
