/*
 * test_service_fake.c: e2e tests of the service controller with the fake
 * provider's call log and fault injection: node sync (exclusion label
 * flips call update_hosts, unrelated changes do not), an ingress with a
 * hostname, provider errors
 * (the finalizer stays, retries back off, clearing the error converges)
 * and a failed status write (retried after the backoff, converges).
 * Polls with generous bounds; only lower bounds on time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "controllers/service.h"
#include "controllers/service_logic.h"
#include "harness.h"
#include "kube/writes.h"

#define WAIT_MS 30000u
#define NS "default"
#define EXCL "node.kubernetes.io/exclude-from-external-load-balancers"

static int setup_cfg(void **state, const char *provider_config)
{
  struct e2e *e = calloc(1, sizeof(*e));
  struct e2e_opts o = {.provider = "fake",
                       .provider_config = provider_config};

  if (e == NULL)
    return -1;
  *state = e;
  if (e2e_setup(e, &o) != 0 ||
      e2e_run_controller(e, &service_controller_ops) != 0)
    return -1;
  if (e2e_create_node(e, "n1", "10.0.0.1", true) != 0 ||
      e2e_create_node(e, "n2", "10.0.0.2", false) != 0)
    return -1;
  return e2e_go(e);
}

static int setup(void **state)
{
  return setup_cfg(state, "instances = [\"n1\", \"n2\"];");
}

static int setup_hostname(void **state)
{
  return setup_cfg(state, "instances = [\"n1\", \"n2\"]; "
                          "ingress_hostname = \"lb-1.example.com\";");
}

static int setup_ensure_err(void **state)
{
  return setup_cfg(state, "error = { lb_ensure = \"internal\"; };");
}

static int setup_delete_err(void **state)
{
  return setup_cfg(state, "error = { lb_delete = \"internal\"; };");
}

static int teardown(void **state)
{
  struct e2e *e = *state;

  if (e != NULL) {
    e2e_stop(e);
    free(e);
  }
  return 0;
}

static bool has_fin(const cJSON *obj)
{
  return obj != NULL && kube_has_finalizer(obj, CCM_SVC_FINALIZER);
}

static bool pred_ready(const cJSON *obj, void *ud)
{
  (void)ud;
  return has_fin(obj) &&
         e2e_json_str(obj, "status.loadBalancer.ingress.0.ip") != NULL;
}

static bool pred_ready_hostname(const cJSON *obj, void *ud)
{
  const char *h = e2e_json_str(obj, "status.loadBalancer.ingress.0.hostname");

  return pred_ready(obj, ud) && h != NULL && strcmp(h, ud) == 0;
}

static bool pred_fin(const cJSON *obj, void *ud)
{
  (void)ud;
  return has_fin(obj);
}

struct calls {
  const char *op;
  int at_least;
};

static bool pred_calls(struct e2e *e, void *ud)
{
  const struct calls *c = ud;

  return e2e_call_count(e, c->op, NULL) >= c->at_least;
}

static void wait_calls(struct e2e *e, const char *op, int n, uint32_t ms)
{
  struct calls c = {op, n};

  if (!e2e_wait(e, pred_calls, &c, ms))
    fail_msg("%s: fewer than %d calls (%d)", op, n,
             e2e_call_count(e, op, NULL));
}

static int event_count(struct e2e *e, const char *name, const char *reason)
{
  cJSON *list = e2e_get(e, "/api/v1/namespaces/" NS "/events");
  const cJSON *it, *items = cJSON_GetObjectItemCaseSensitive(list, "items");
  int n = 0;

  cJSON_ArrayForEach(it, items) {
    const char *on = e2e_json_str(it, "involvedObject.name");
    const char *r = e2e_json_str(it, "reason");

    if (on && r && strcmp(on, name) == 0 && strcmp(r, reason) == 0)
      n++;
  }
  cJSON_Delete(list);
  return n;
}

struct ev {
  const char *name, *reason;
};

static bool pred_event(struct e2e *e, void *ud)
{
  const struct ev *v = ud;

  return event_count(e, v->name, v->reason) > 0;
}

static void wait_event(struct e2e *e, const char *name, const char *reason)
{
  struct ev v = {name, reason};

  if (!e2e_wait(e, pred_event, &v, WAIT_MS))
    fail_msg("no %s event for %s", reason, name);
}

static double now_s(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The value of the sample line starting with line_prefix ("\nname ") from the controller's metrics callback. */
static double metric(struct e2e *e, const char *line_prefix)
{
  char *buf = NULL, *p;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  double v = -1;

  assert_non_null(f);
  service_controller_ops.metrics(e->ctrls[0].state, f);
  fclose(f);
  p = strstr(buf, line_prefix);
  if (p != NULL)
    v = strtod(p + strlen(line_prefix), NULL);
  free(buf);
  return v;
}

/* ---- tests ---- */

static void test_node_sync(void **state)
{
  struct e2e *e = *state;
  const char *path = "/api/v1/namespaces/" NS "/services/web";
  int u0, u1, u2;

  assert_int_equal(e2e_create_service_lb(e, NS, "web", 80, NULL), 0);
  /* The NotReady node n2 is a backend too (readiness is not a predicate). */
  assert_true(e2e_wait_object(e, path, pred_ready, NULL, WAIT_MS));
  assert_int_equal(e2e_call_count(e, "lb_ensure", NULL), 1);
  u0 = e2e_call_count(e, "lb_update_hosts", NULL);

  /* Exclusion label added: the host set shrinks, update_hosts. */
  assert_int_equal(e2e_patch_merge(e, "/api/v1/nodes/n2",
                                   "{\"metadata\":{\"labels\":{\"" EXCL
                                   "\":\"true\"}}}"), 0);
  wait_calls(e, "lb_update_hosts", u0 + 1, WAIT_MS);
  wait_event(e, "web", "UpdatedLoadBalancer");
  u1 = e2e_call_count(e, "lb_update_hosts", NULL);

  /* "false" parses as false: the node is included again. */
  assert_int_equal(e2e_patch_merge(e, "/api/v1/nodes/n2",
                                   "{\"metadata\":{\"labels\":{\"" EXCL
                                   "\":\"false\"}}}"), 0);
  wait_calls(e, "lb_update_hosts", u1 + 1, WAIT_MS);
  u2 = e2e_call_count(e, "lb_update_hosts", NULL);

  /* An unrelated label and a readiness change trigger nothing. */
  assert_int_equal(e2e_patch_merge(e, "/api/v1/nodes/n1",
                                   "{\"metadata\":{\"labels\":{\"team\":"
                                   "\"a\"}}}"), 0);
  assert_int_equal(e2e_patch_status(e, "/api/v1/nodes/n1",
                                    "{\"status\":{\"conditions\":[{\"type\":"
                                    "\"Ready\",\"status\":\"False\"}]}}"), 0);
  e2e_sleep_ms(1500);
  assert_int_equal(e2e_call_count(e, "lb_update_hosts", NULL), u2);

  /* A new node joins: update_hosts; a node leaves: update_hosts. */
  assert_int_equal(e2e_create_node(e, "n3", "10.0.0.3", true), 0);
  wait_calls(e, "lb_update_hosts", u2 + 1, WAIT_MS);
  assert_int_equal(e2e_delete(e, "/api/v1/nodes/n3"), 0);
  wait_calls(e, "lb_update_hosts", u2 + 2, WAIT_MS);
  /* Node sync never re-ensures. */
  assert_int_equal(e2e_call_count(e, "lb_ensure", NULL), 1);
  assert_true(metric(e, "\nservice_controller_loadbalancer_sync_total ")
              >= 4);
}

/* An ingress with an IP and a hostname reaches the status as both, in one
 * entry. */
static void test_ingress_hostname(void **state)
{
  struct e2e *e = *state;
  const char *path = "/api/v1/namespaces/" NS "/services/web";
  cJSON *obj;

  assert_int_equal(e2e_create_service_lb(e, NS, "web", 80, NULL), 0);
  assert_true(e2e_wait_object(e, path, pred_ready_hostname,
                              (void *)"lb-1.example.com", WAIT_MS));
  obj = e2e_get(e, path);
  assert_non_null(obj);
  assert_null(e2e_json_at(obj, "status.loadBalancer.ingress.1"));
  cJSON_Delete(obj);
}

static void test_ensure_error_backs_off(void **state)
{
  struct e2e *e = *state;
  const char *path = "/api/v1/namespaces/" NS "/services/web";
  double t1, t3;
  cJSON *obj;

  assert_int_equal(e2e_create_service_lb(e, NS, "web", 80, NULL), 0);
  /* The finalizer comes before the (failing) cloud call and stays. */
  assert_true(e2e_wait_object(e, path, pred_fin, NULL, WAIT_MS));
  wait_calls(e, "lb_ensure", 1, WAIT_MS);
  t1 = now_s();
  wait_event(e, "web", "SyncLoadBalancerFailed");
  /* Retries at +5 s then +10 s: the third call comes >= 15 s after the
   * first (a lower bound; 1 s of slack for polling). */
  wait_calls(e, "lb_ensure", 3, 60000);
  t3 = now_s();
  assert_true(t3 - t1 >= 14.0);
  assert_true(metric(e, "\nccm_workqueue_retries_total{queue=\"service\"} ")
              >= 2);
  obj = e2e_get(e, path);
  assert_true(has_fin(obj));
  assert_null(e2e_json_at(obj, "status.loadBalancer.ingress.0"));
  cJSON_Delete(obj);
  /* Clearing the error (a new module generation) converges. */
  assert_int_equal(e2e_swap_module(e, CCM_E2E_FAKE_MODULE, NULL,
                                   "instances = [\"n1\"];"), 0);
  assert_true(e2e_wait_object(e, path, pred_ready, NULL, 60000));
  wait_event(e, "web", "EnsuredLoadBalancer");
}

static bool pred_deleting(const cJSON *obj, void *ud)
{
  (void)ud;
  return obj != NULL && e2e_json_str(obj, "metadata.deletionTimestamp");
}

static void test_delete_error_keeps_finalizer(void **state)
{
  struct e2e *e = *state;
  const char *path = "/api/v1/namespaces/" NS "/services/web";
  cJSON *obj;

  assert_int_equal(e2e_create_service_lb(e, NS, "web", 80, NULL), 0);
  assert_true(e2e_wait_object(e, path, pred_ready, NULL, WAIT_MS));
  assert_int_equal(e2e_delete(e, path), 0);
  assert_true(e2e_wait_object(e, path, pred_deleting, NULL, WAIT_MS));
  wait_calls(e, "lb_delete", 2, 60000);
  wait_event(e, "web", "SyncLoadBalancerFailed");
  obj = e2e_get(e, path);
  assert_non_null(obj);
  assert_true(has_fin(obj));
  cJSON_Delete(obj);
  assert_int_equal(event_count(e, "web", "DeletedLoadBalancer"), 0);
  assert_int_equal(e2e_swap_module(e, CCM_E2E_FAKE_MODULE, NULL,
                                   "instances = [\"n1\"];"), 0);
  assert_true(e2e_wait_gone(e, path, 60000));
  wait_event(e, "web", "DeletedLoadBalancer");
}

/* The status write that ends an ensure runs on the writer thread: when it
 * fails past the client's retries, the Service is synced again after the
 * backoff (as upstream retries a failed status patch) and converges; the
 * failure is an Event and a metric, never a lost status. */
static void test_status_write_failure_retried(void **state)
{
  struct e2e *e = *state;
  const char *path = "/api/v1/namespaces/" NS "/services/web";
  cJSON *r;

  /* One more 500 than the client's tries: the first status write fails. */
  r = kdouble_control(e->client, "faults",
                      "{\"status\":500,\"count\":6,\"method\":\"PATCH\","
                      "\"path\":\"services/web/status$\"}");
  assert_non_null(r);
  cJSON_Delete(r);
  assert_int_equal(e2e_create_service_lb(e, NS, "web", 80, NULL), 0);
  wait_event(e, "web", "SyncLoadBalancerFailed");
  assert_true(e2e_wait_object(e, path, pred_ready, NULL, 60000));
  assert_true(metric(e, "\nccm_service_status_writer_total{result=\"error\"} ")
              + metric(e, "\nccm_reconcile_total{controller=\"service\","
                       "result=\"error\"} ") >= 1);
  assert_true(metric(e, "\nccm_workqueue_retries_total{queue=\"service\"} ")
              >= 1);
  /* The status is owed by the first ensure: the retry ensures again. */
  assert_true(e2e_call_count(e, "lb_ensure", NULL) >= 2);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_node_sync, setup, teardown),
    cmocka_unit_test_setup_teardown(test_ingress_hostname, setup_hostname,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_ensure_error_backs_off,
                                    setup_ensure_err, teardown),
    cmocka_unit_test_setup_teardown(test_delete_error_keeps_finalizer,
                                    setup_delete_err, teardown),
    cmocka_unit_test_setup_teardown(test_status_write_failure_retried,
                                    setup, teardown),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
