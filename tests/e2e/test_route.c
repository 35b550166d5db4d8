/*
 * test_route.c: e2e tests of the route controller (host/controllers/
 * route.c) with the API double and the lab provider, whose routes live in
 * its state file: create with NetworkUnavailable, delete on Node deletion,
 * never touch routes outside cluster_cidr, provider errors and retries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controllers/route.h"
#include "harness.h"
#include "kube/writes.h"
#include "modules/registry.h"

#define WAIT_MS 30000u
#define CLUSTER "e2e"

static const char *const route_host_cfg =
    "cluster_cidr = \"10.244.0.0/16,fd00:10:244::/56\";\n"
    "route_reconcile_period_s = 1;\n";

static int setup_with(void **state, const char *host_cfg) {
  struct e2e *e = calloc(1, sizeof(*e));
  struct e2e_opts o = {.provider = "lab", .host_config = host_cfg};
  if (e == NULL)
    return -1;
  *state = e;
  if (e2e_setup(e, &o) != 0)
    return -1;
  if (e->env.cfg == NULL) /* a harness older than ctrl_env.cfg */
    e->env.cfg = e->cfg;
  if (e2e_run_controller(e, &route_controller_ops) != 0 || e2e_go(e) != 0)
    return -1;
  return 0;
}

static int setup(void **state) { return setup_with(state, route_host_cfg); }

static int setup_idle(void **state) {
  return setup_with(state, "route_reconcile_period_s = 1;\n");
}

static int teardown(void **state) {
  struct e2e *e = *state;
  if (e != NULL) {
    e2e_stop(e);
    free(e);
  }
  return 0;
}

/* ---- helpers ------------------------------------------------------------ */

static void create_node(struct e2e *e, const char *name, const char *cidrs,
                        const char *conditions) {
  char json[2048];
  snprintf(json, sizeof(json),
           "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":"
           "\"%s\"},\"spec\":{%s%s%s},\"status\":{\"addresses\":[{\"type\":"
           "\"InternalIP\",\"address\":\"192.0.2.10\"}],\"conditions\":[%s]}}",
           name, cidrs != NULL ? "\"podCIDRs\":[" : "",
           cidrs != NULL ? cidrs : "", cidrs != NULL ? "]" : "",
           conditions != NULL ? conditions : "");
  assert_int_equal(e2e_apply_json(e, CCM_E2E_NODES, json, NULL), 0);
}

/* Routes of the cluster in the provider, listed through the registry. */
static int list_routes(struct e2e *e, struct ccm_route_list *out) {
  struct provider_ref ref;
  struct ccm_call call;
  memset(out, 0, sizeof(*out));
  if (registry_for_nodes(e->reg, &ref) != CCM_OK)
    return -1;
  call_init(&call, 10000);
  int rc = prov_route_list(&ref, &call, CLUSTER, out);
  registry_release(&ref);
  return rc;
}

/* The route to node with cidr: 1 present, 0 absent, -1 error. */
static int route_present(struct e2e *e, const char *node, const char *cidr) {
  struct ccm_route_list l;
  int found = 0;
  if (list_routes(e, &l) != CCM_OK)
    return -1;
  for (size_t i = 0; i < l.n; i++)
    if (strcmp(l.items[i].target_node, node) == 0 &&
        strcmp(l.items[i].destination_cidr, cidr) == 0)
      found = 1;
  route_list_clear(&l);
  return found;
}

static int provider_route(struct e2e *e, bool create, const char *hint,
                          const char *node, const char *cidr) {
  struct provider_ref ref;
  struct ccm_call call;
  struct ccm_route r = {.struct_size = sizeof(r), .target_node = node,
                        .destination_cidr = cidr};
  char name[128];
  int rc;
  if (registry_for_nodes(e->reg, &ref) != CCM_OK)
    return -1;
  call_init(&call, 10000);
  if (create) {
    rc = prov_route_create(&ref, &call, CLUSTER, hint, &r);
  } else {
    snprintf(name, sizeof(name), "%s-%s", CLUSTER, hint);
    r.name = name;
    rc = prov_route_delete(&ref, &call, CLUSTER, &r);
  }
  registry_release(&ref);
  return rc;
}

struct route_want {
  const char *node;
  const char *cidr;
  int present;
};

static bool pred_route(struct e2e *e, void *ud) {
  const struct route_want *w = ud;
  return route_present(e, w->node, w->cidr) == w->present;
}

static void wait_route(struct e2e *e, const char *node, const char *cidr,
                       int present) {
  struct route_want w = {node, cidr, present};
  if (!e2e_wait(e, pred_route, &w, WAIT_MS))
    fail_msg("route %s -> %s never became %s", cidr, node,
             present ? "present" : "absent");
}

/* The NetworkUnavailable condition of a node object, or NULL. */
static const cJSON *net_cond(const cJSON *node) {
  const cJSON *conds = e2e_json_at(node, "status.conditions"), *c;
  cJSON_ArrayForEach(c, conds) {
    const char *t = e2e_json_str(c, "type");
    if (t != NULL && strcmp(t, "NetworkUnavailable") == 0)
      return c;
  }
  return NULL;
}

struct cond_want {
  const char *status;
  const char *reason;
};

static bool pred_cond(const cJSON *obj, void *ud) {
  const struct cond_want *w = ud;
  const cJSON *c = obj != NULL ? net_cond(obj) : NULL;
  const char *s = c != NULL ? e2e_json_str(c, "status") : NULL;
  const char *r = c != NULL ? e2e_json_str(c, "reason") : NULL;
  return s != NULL && r != NULL && strcmp(s, w->status) == 0 &&
         strcmp(r, w->reason) == 0;
}

static void wait_cond(struct e2e *e, const char *node, const char *status,
                      const char *reason) {
  char path[256];
  struct cond_want w = {status, reason};
  snprintf(path, sizeof(path), "/api/v1/nodes/%s", node);
  if (!e2e_wait_object(e, path, pred_cond, &w, WAIT_MS))
    fail_msg("node %s never got NetworkUnavailable=%s (%s)", node, status,
             reason);
}

/* A counter from the controller's metrics text. */
static unsigned long long metric(struct e2e *e, const char *name) {
  char *buf = NULL;
  size_t len = 0;
  unsigned long long v = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_non_null(f);
  route_controller_ops.metrics(e->ctrls[0].state, f);
  fclose(f);
  size_t nl = strlen(name);
  for (char *p = buf; p != NULL && *p != '\0';) {
    if (strncmp(p, name, nl) == 0 && p[nl] == ' ') {
      v = strtoull(p + nl + 1, NULL, 10);
      break;
    }
    p = strchr(p, '\n');
    if (p != NULL)
      p++;
  }
  free(buf);
  return v;
}

struct metric_want {
  const char *name;
  unsigned long long at_least;
};

static bool pred_metric(struct e2e *e, void *ud) {
  const struct metric_want *w = ud;
  return metric(e, w->name) >= w->at_least;
}

/* Let n more reconciles finish. */
static void wait_syncs(struct e2e *e, unsigned n) {
  struct metric_want w = {"route_controller_route_sync_total",
                          metric(e, "route_controller_route_sync_total") + n};
  assert_true(e2e_wait(e, pred_metric, &w, WAIT_MS));
}

/* ---- tests -------------------------------------------------------------- */

/* Nodes with podCIDRs get their routes (IPv4 and IPv6) and
 * NetworkUnavailable False/RouteCreated; a foreign False reason is
 * overwritten; a node without podCIDRs is left alone; a converged node is
 * not written again. */
static void test_routes_created(void **state) {
  struct e2e *e = *state;
  create_node(e, "n1", "\"10.244.1.0/24\"", NULL);
  /* IPv6 on its own node: the lab names routes <cluster>-<hint>, so two
   * CIDRs of one node would replace each other there (see the report). */
  create_node(e, "n2", "\"fd00:10:244:2::/64\"",
              "{\"type\":\"NetworkUnavailable\",\"status\":\"False\","
              "\"reason\":\"CalicoIsUp\",\"message\":\"calico\"}");
  create_node(e, "n3", NULL, NULL);

  wait_route(e, "n1", "10.244.1.0/24", 1);
  wait_route(e, "n2", "fd00:10:244:2::/64", 1);
  wait_cond(e, "n1", "False", "RouteCreated");
  wait_cond(e, "n2", "False", "RouteCreated");

  /* The route name carries the node UID (lab: <cluster>-<hint>). */
  cJSON *n1 = e2e_get(e, "/api/v1/nodes/n1");
  assert_non_null(n1);
  const char *uid = e2e_json_str(n1, "metadata.uid");
  assert_non_null(uid);
  const cJSON *c = net_cond(n1);
  assert_string_equal(e2e_json_str(c, "message"),
                      "RouteController created a route");
  assert_non_null(e2e_json_str(c, "lastTransitionTime"));
  char want[160];
  snprintf(want, sizeof(want), "%s-%s", CLUSTER, uid);
  cJSON_Delete(n1);
  struct ccm_route_list l;
  assert_int_equal(list_routes(e, &l), CCM_OK);
  bool named = false;
  for (size_t i = 0; i < l.n; i++)
    if (strcmp(l.items[i].name, want) == 0)
      named = true;
  assert_int_equal(l.n, 2);
  route_list_clear(&l);
  assert_true(named);

  /* n3 has no podCIDR and no route: untouched. */
  wait_syncs(e, 2);
  cJSON *n3 = e2e_get(e, "/api/v1/nodes/n3");
  assert_non_null(n3);
  assert_null(net_cond(n3));
  cJSON_Delete(n3);

  /* Converged: further reconciles write nothing. */
  int puts = kdouble_count_requests(e->client, "PUT", "/api/v1/nodes/n1/status",
                                    0);
  assert_true(puts >= 1);
  wait_syncs(e, 3);
  assert_int_equal(kdouble_count_requests(e->client, "PUT",
                                          "/api/v1/nodes/n1/status", 0),
                   puts);
  assert_int_equal(metric(e, "ccm_route_created_total"), 2);
}

/* Deleting a Node deletes its route and only its route. */
static void test_node_deleted(void **state) {
  struct e2e *e = *state;
  create_node(e, "a1", "\"10.244.11.0/24\"", NULL);
  create_node(e, "a2", "\"10.244.12.0/24\"", NULL);
  wait_route(e, "a1", "10.244.11.0/24", 1);
  wait_route(e, "a2", "10.244.12.0/24", 1);

  assert_int_equal(e2e_delete(e, "/api/v1/nodes/a1"), 0);
  wait_route(e, "a1", "10.244.11.0/24", 0);
  assert_int_equal(route_present(e, "a2", "10.244.12.0/24"), 1);
  /* The counter moves just after the provider call returns. */
  struct metric_want w = {"ccm_route_deleted_total", 1};
  assert_true(e2e_wait(e, pred_metric, &w, WAIT_MS));

  /* A changed podCIDR moves the route: old one deleted, new one created. */
  assert_int_equal(e2e_patch_merge(e, "/api/v1/nodes/a2",
                                   "{\"spec\":{\"podCIDRs\":"
                                   "[\"10.244.13.0/24\"]}}"),
                   0);
  wait_route(e, "a2", "10.244.13.0/24", 1);
  wait_route(e, "a2", "10.244.12.0/24", 0);
}

/* Routes outside cluster_cidr are never deleted; stale ones inside are. */
static void test_outside_cidr_kept(void **state) {
  struct e2e *e = *state;
  assert_int_equal(provider_route(e, true, "outside", "elsewhere",
                                  "192.168.50.0/24"), CCM_OK);
  assert_int_equal(provider_route(e, true, "outside6", "elsewhere",
                                  "fd00:99::/64"), CCM_OK);
  assert_int_equal(provider_route(e, true, "stale", "ghost",
                                  "10.244.77.0/24"), CCM_OK);
  assert_int_equal(provider_route(e, true, "stale6", "ghost",
                                  "fd00:10:244:77::/64"), CCM_OK);
  wait_route(e, "ghost", "10.244.77.0/24", 0);
  wait_route(e, "ghost", "fd00:10:244:77::/64", 0);
  wait_syncs(e, 3);
  assert_int_equal(route_present(e, "elsewhere", "192.168.50.0/24"), 1);
  assert_int_equal(route_present(e, "elsewhere", "fd00:99::/64"), 1);
}

/* A provider error sets NetworkUnavailable True/NoRouteCreated with a
 * FailedToCreateRoute Event, is retried every period, and clears once the
 * provider accepts the route. The lab refuses a CIDR already routed to
 * another node; the blocker lies outside cluster_cidr so the controller
 * leaves it alone. */
static void test_provider_error_retries(void **state) {
  struct e2e *e = *state;
  assert_int_equal(provider_route(e, true, "blocker", "other",
                                  "192.168.60.0/24"), CCM_OK);
  create_node(e, "b1", "\"192.168.60.0/24\"", NULL);
  wait_cond(e, "b1", "True", "NoRouteCreated");

  cJSON *b1 = e2e_get(e, "/api/v1/nodes/b1");
  assert_non_null(b1);
  assert_string_equal(e2e_json_str(net_cond(b1), "message"),
                      "RouteController failed to create a route");
  cJSON_Delete(b1);

  /* Retried: failures keep counting, the node stays True. */
  struct metric_want w = {"ccm_route_create_failures_total", 3};
  assert_true(e2e_wait(e, pred_metric, &w, WAIT_MS));
  wait_cond(e, "b1", "True", "NoRouteCreated");

  /* The Event, on the Node (namespace default, as client-go). */
  kube_events_flush(e->events);
  cJSON *ev = e2e_get(e, "/api/v1/namespaces/default/events");
  assert_non_null(ev);
  const cJSON *item;
  bool found = false;
  cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(ev, "items")) {
    const char *reason = e2e_json_str(item, "reason");
    const char *name = e2e_json_str(item, "involvedObject.name");
    const char *msg = e2e_json_str(item, "message");
    if (reason != NULL && strcmp(reason, "FailedToCreateRoute") == 0 &&
        name != NULL && strcmp(name, "b1") == 0 && msg != NULL &&
        strncmp(msg, "Could not create route ", 23) == 0 &&
        strstr(msg, "192.168.60.0/24 for node b1 after ") != NULL) {
      assert_string_equal(e2e_json_str(item, "type"), "Warning");
      assert_string_equal(e2e_json_str(item, "involvedObject.kind"), "Node");
      found = true;
    }
  }
  cJSON_Delete(ev);
  assert_true(found);

  /* The blocker goes: the next retry succeeds. */
  assert_int_equal(provider_route(e, false, "blocker", "other",
                                  "192.168.60.0/24"), CCM_OK);
  wait_route(e, "b1", "192.168.60.0/24", 1);
  wait_cond(e, "b1", "False", "RouteCreated");
}

/* Without cluster_cidr the controller stays idle: no route, no condition. */
static void test_idle_without_cluster_cidr(void **state) {
  struct e2e *e = *state;
  create_node(e, "i1", "\"10.244.1.0/24\"", NULL);
  assert_int_equal(provider_route(e, true, "stale", "ghost",
                                  "10.244.77.0/24"), CCM_OK);
  e2e_sleep_ms(2500); /* several periods would have passed */
  assert_int_equal(metric(e, "route_controller_route_sync_total"), 0);
  assert_int_equal(metric(e, "ccm_route_controller_active"), 0);
  assert_int_equal(route_present(e, "i1", "10.244.1.0/24"), 0);
  assert_int_equal(route_present(e, "ghost", "10.244.77.0/24"), 1);
  cJSON *i1 = e2e_get(e, "/api/v1/nodes/i1");
  assert_non_null(i1);
  assert_null(net_cond(i1));
  cJSON_Delete(i1);
}

int main(void) {
  if (!kdouble_available())
    return 77;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_routes_created, setup, teardown),
      cmocka_unit_test_setup_teardown(test_node_deleted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_outside_cidr_kept, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_provider_error_retries, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_idle_without_cluster_cidr,
                                      setup_idle, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
