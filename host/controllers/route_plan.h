/*
 * route_plan.h: the route controller's pure decisions: CIDR parsing and
 * containment (IPv4 and IPv6), which routes the cluster is responsible for,
 * which routes to create and delete, and the NetworkUnavailable condition a
 * node should carry. No I/O, no provider, no Kubernetes, no clock.
 */
#ifndef CCM_ROUTE_PLAN_H
#define CCM_ROUTE_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CCM_ROUTE_MAX_CLUSTER_CIDRS 2 /* one per family, as upstream */
#define CCM_ROUTE_CIDR_TEXT 64        /* canonical text, with NUL */

/* Exact strings of upstream's route controller (section 5). */
#define CCM_ROUTE_COND_TYPE "NetworkUnavailable"
#define CCM_ROUTE_REASON_CREATED "RouteCreated"
#define CCM_ROUTE_MSG_CREATED "RouteController created a route"
#define CCM_ROUTE_REASON_FAILED "NoRouteCreated"
#define CCM_ROUTE_MSG_FAILED "RouteController failed to create a route"
#define CCM_ROUTE_EVENT_FAILED "FailedToCreateRoute"

struct route_cidr {
  int family;         /* 4 or 6 */
  uint8_t addr[16];   /* network address: host bits cleared */
  unsigned prefix;    /* 0..32 or 0..128 */
};

/* Parse "a.b.c.d/n" or "x:y::/n". Host bits are cleared, as Go's
 * net.ParseCIDR does. Returns 0, or -1 when text is not a CIDR. */
int route_cidr_parse(const char *text, struct route_cidr *out);

/* Canonical text of c ("10.244.1.0/24", "fd00:10::/64") into buf; -1 when
 * it does not fit. */
int route_cidr_format(const struct route_cidr *c, char *buf, size_t cap);

/* True when addr (of family, 4 or 16 bytes) lies inside net. */
bool route_cidr_contains(const struct route_cidr *net, int family,
                         const uint8_t *addr);

/* --cluster-cidr: one CIDR or a comma-separated dual-stack pair (two
 * different families). Returns 0 with *n entries in out (capacity
 * CCM_ROUTE_MAX_CLUSTER_CIDRS), or -1 with one line in err. */
int route_cluster_cidrs_parse(const char *text, struct route_cidr *out,
                              size_t *n, char *err, size_t errlen);

/* Upstream's isResponsibleForRoute: the first or the last address of
 * dest lies inside one of the cluster CIDRs. An unparseable dest is not
 * ours (never deleted). */
bool route_is_responsible(const struct route_cidr *cluster,
                          size_t n_cluster, const char *dest);

/* ---- planning ---------------------------------------------------------- */

struct route_plan_node {
  const char *name;
  const char *const *pod_cidrs; /* spec.podCIDRs */
  size_t n_pod_cidrs;
};

struct route_plan_route {
  const char *name;
  const char *target_node;      /* NULL or "" = none */
  const char *destination_cidr;
  bool blackhole;
};

/* One route to create: nodes[node].pod_cidrs[cidr]. */
struct route_plan_create {
  size_t node;
  size_t cidr;
};

struct route_plan {
  struct route_plan_create *creates;
  size_t n_creates;
  size_t *deletes;       /* indexes into the routes given */
  size_t n_deletes;
  /* Per node (same indexes as the nodes given): */
  size_t *wanted;        /* distinct podCIDRs */
  size_t *kept;          /* podCIDRs that already have their route */
  bool *has_routes;      /* a listed route targets this node */
};

/* Decide, as upstream's reconcile: for every distinct podCIDR of every
 * node, keep the route (same target node, same CIDR after parsing) or
 * create it; delete every listed route the cluster is responsible for
 * that is a blackhole or that no node's podCIDR accounts for. Routes
 * outside the cluster CIDRs are never deleted. Returns 0, or -1 when out
 * of memory (out is then empty). Release with route_plan_free. */
int route_plan_build(const struct route_cidr *cluster, size_t n_cluster,
                     const struct route_plan_node *nodes, size_t n_nodes,
                     const struct route_plan_route *routes, size_t n_routes,
                     struct route_plan *out);
void route_plan_free(struct route_plan *p);

/* What the NetworkUnavailable condition of one node should say. */
enum route_cond_want {
  ROUTE_COND_LEAVE = 0,   /* no podCIDRs and no routes: not ours */
  ROUTE_COND_CREATED,     /* False, RouteCreated */
  ROUTE_COND_FAILED       /* True, NoRouteCreated */
};

/* After the creates ran: ok = podCIDRs whose route exists now. */
enum route_cond_want route_cond_decide(size_t wanted, size_t ok,
                                       bool has_routes);

/* True when the node's condition already says want (status AND reason;
 * a False condition with a foreign reason is overwritten, as upstream).
 * status is enum obj_cond (0 unknown/absent, 1 True, 2 False). */
bool route_cond_matches(enum route_cond_want want, int status,
                        const char *reason);

#endif
