/*
 * conf_routes.c: the "routes" group: create shows up in list with its CIDR
 * and target, delete (of a route as listed) removes it, create twice makes
 * one route, delete of an absent route is CCM_OK. It only touches the
 * CIDRs it made up, and deletes what it created.
 */
#include <stdio.h>
#include <string.h>

#include "conformance.h"

#define ERRLEN 600

struct conf_route {
  struct ccm_route route;
  char cidr[CCM_MAX_ADDRESS + 1];
  char name[CCM_MAX_NAME + 1];
  const struct conf_node *target;
};

/* A route from a made-up /24 to the first pool node (a known node when the
 * config names one). */
static void route_make(struct conf_run *run, struct conf_route *r) {
  unsigned c = atomic_fetch_add(&run->counter, 1);

  memset(r, 0, sizeof *r);
  r->target = &run->pool[0];
  snprintf(r->cidr, sizeof r->cidr, "10.%u.%u.0/24",
           200u + (unsigned)(run->nonce % 50u), c % 256u);
  r->route.struct_size = sizeof r->route;
  r->route.name = "";
  r->route.target_node = r->target->name;
  r->route.destination_cidr = r->cidr;
  r->route.target_addresses = r->target->node.addresses;
  r->route.n_target_addresses = r->target->node.n_addresses;
}

/* Routes in the listing with this CIDR and target; idx gets the first. */
static size_t route_count(const struct ccm_route_list *l,
                          const struct conf_route *r, size_t *idx) {
  size_t n = 0;

  for (size_t i = 0; i < l->n; i++) {
    const struct route_entry *e = &l->items[i];
    if (e->destination_cidr && strcmp(e->destination_cidr, r->cidr) == 0 &&
        e->target_node && strcmp(e->target_node, r->route.target_node) == 0) {
      if (n == 0 && idx)
        *idx = i;
      n++;
    }
  }
  return n;
}

/* The listed entry as a ccm_route for route_delete. */
static void route_from_entry(const struct route_entry *e,
                             struct ccm_route *out) {
  memset(out, 0, sizeof *out);
  out->struct_size = sizeof *out;
  out->name = e->name ? e->name : "";
  out->target_node = e->target_node;
  out->destination_cidr = e->destination_cidr;
  out->blackhole = e->blackhole;
}

/* Delete every listed route with r's CIDR and target (cleanup). */
static void route_cleanup(struct conf_run *run, const struct conf_route *r) {
  struct ccm_route_list l = {0};
  char err[ERRLEN];

  if (conf_route_list(run, &l, err, sizeof err) != CCM_OK)
    return;
  for (size_t i = 0; i < l.n; i++) {
    const struct route_entry *e = &l.items[i];
    struct ccm_route del;
    if (e->destination_cidr == NULL || strcmp(e->destination_cidr, r->cidr))
      continue;
    route_from_entry(e, &del);
    conf_route_delete(run, &del, err, sizeof err);
  }
  route_list_clear(&l);
}

static int list_count(struct conf_run *run, const struct conf_route *r,
                      size_t *count, struct ccm_route_list *keep, char *why,
                      size_t cap) {
  struct ccm_route_list l = {0};
  char err[ERRLEN];
  int st = conf_route_list(run, &l, err, sizeof err);

  if (st != CCM_OK) {
    route_list_clear(&l);
    return conf_call_fail(why, cap, "route_list", st, "CCM_OK", err);
  }
  *count = route_count(&l, r, NULL);
  if (keep)
    *keep = l;
  else
    route_list_clear(&l);
  return CONF_PASS;
}

static int check_create_list_delete(struct conf_run *run, char *why,
                                    size_t cap) {
  struct conf_route r;
  struct ccm_route_list l = {0};
  struct ccm_route del;
  char err[ERRLEN];
  size_t n = 0, idx = 0;
  int res = CONF_FAIL, st;

  route_make(run, &r);
  st = conf_route_create(run, r.target->uid, &r.route, err, sizeof err);
  if (st != CCM_OK) {
    conf_call_fail(why, cap, "route_create", st, "CCM_OK", err);
    goto done;
  }
  if (list_count(run, &r, &n, &l, why, cap) != CONF_PASS)
    goto done;
  if (n == 0) {
    conf_fail(why, cap, "route_list does not show the created route %s -> "
              "%s", r.cidr, r.route.target_node);
    goto done;
  }
  route_count(&l, &r, &idx);
  conf_note(run, "listed route \"%s\": %s -> %s",
            l.items[idx].name ? l.items[idx].name : "",
            l.items[idx].destination_cidr, l.items[idx].target_node);
  route_from_entry(&l.items[idx], &del);
  st = conf_route_delete(run, &del, err, sizeof err);
  if (st != CCM_OK) {
    conf_call_fail(why, cap, "route_delete of the listed route", st, "CCM_OK",
                   err);
    goto done;
  }
  if (list_count(run, &r, &n, NULL, why, cap) != CONF_PASS)
    goto done;
  if (n != 0) {
    conf_fail(why, cap, "route_list still shows %s -> %s after route_delete",
              r.cidr, r.route.target_node);
    goto done;
  }
  res = CONF_PASS;
done:
  route_list_clear(&l);
  route_cleanup(run, &r);
  return res;
}

static int check_create_idempotent(struct conf_run *run, char *why,
                                   size_t cap) {
  struct conf_route r;
  char err[ERRLEN];
  size_t n = 0;
  int res = CONF_FAIL, st;

  route_make(run, &r);
  for (int i = 0; i < 2; i++) {
    st = conf_route_create(run, r.target->uid, &r.route, err, sizeof err);
    if (st != CCM_OK) {
      conf_call_fail(why, cap, i ? "second route_create" : "route_create", st,
                     "CCM_OK", err);
      goto done;
    }
  }
  if (list_count(run, &r, &n, NULL, why, cap) != CONF_PASS)
    goto done;
  if (n != 1) {
    conf_fail(why, cap, "after route_create twice route_list shows %zu "
              "routes %s -> %s, want 1", n, r.cidr, r.route.target_node);
    goto done;
  }
  res = CONF_PASS;
done:
  route_cleanup(run, &r);
  return res;
}

static int check_delete_absent(struct conf_run *run, char *why, size_t cap) {
  struct conf_route r;
  char err[ERRLEN];
  int st;

  route_make(run, &r);
  snprintf(r.name, sizeof r.name, "conformance-absent-%08x", run->nonce);
  r.route.name = r.name;
  st = conf_route_delete(run, &r.route, err, sizeof err);
  if (st != CCM_OK)
    return conf_call_fail(why, cap, "route_delete of a route that never "
                          "existed", st, "CCM_OK", err);
  return CONF_PASS;
}

static bool routes_supported(const struct conf_run *run, char *why,
                             size_t cap) {
  if (MODULE_HAS(run->mod, route_list) || MODULE_HAS(run->mod, route_create) ||
      MODULE_HAS(run->mod, route_delete))
    return true;
  snprintf(why, cap, "module has no route operations");
  return false;
}

static const struct conf_check ROUTE_CHECKS[] = {
    {"create-list-delete", check_create_list_delete},
    {"create-idempotent", check_create_idempotent},
    {"delete-absent", check_delete_absent},
    {NULL, NULL}};

const struct conf_group conf_group_routes = {"routes", routes_supported,
                                             ROUTE_CHECKS};
