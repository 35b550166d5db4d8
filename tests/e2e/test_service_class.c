/*
 * test_service_class.c: e2e tests of load-balancer class routing with two
 * providers: the default one (lab "a", its state file) and the fake "b"
 * bound to a class (its call log). A Service without class goes to a, the
 * class goes to b, an unknown class is ignored, and the deletion of a class
 * Service goes to b after the class was cleared, and after a restart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controllers/service.h"
#include "controllers/service_logic.h"
#include "harness.h"
#include "kube/writes.h"

#define WAIT_MS 30000u
#define NS "default"
#define CLASS_B "example.com/b"

static int setup(void **state)
{
  struct e2e *e = calloc(1, sizeof(*e));
  static const struct e2e_provider_opts b = {
    .name = "b", .kind = "fake", .config = "instances = [\"n1\"];",
    .lb_class = CLASS_B};
  struct e2e_opts o = {.provider = "lab", .extra = &b};

  if (e == NULL)
    return -1;
  *state = e;
  if (e2e_setup(e, &o) != 0 ||
      e2e_run_controller(e, &service_controller_ops) != 0)
    return -1;
  if (e2e_create_node(e, "n1", "10.0.0.1", true) != 0)
    return -1;
  return e2e_go(e);
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

static void svc_path(char *buf, size_t cap, const char *name)
{
  snprintf(buf, cap, "/api/v1/namespaces/" NS "/services/%s", name);
}

static bool has_fin(const cJSON *obj)
{
  return obj != NULL && kube_has_finalizer(obj, CCM_SVC_FINALIZER);
}

static const char *ann(const cJSON *obj, const char *key)
{
  const cJSON *a = e2e_json_at(obj, "metadata.annotations");
  const cJSON *n = cJSON_GetObjectItemCaseSensitive(a, key);

  return cJSON_IsString(n) ? n->valuestring : NULL;
}

static bool pred_ready(const cJSON *obj, void *ud)
{
  (void)ud;
  return has_fin(obj) && ann(obj, CCM_SVC_NAME_ANNOTATION) != NULL &&
         e2e_json_str(obj, "status.loadBalancer.ingress.0.ip") != NULL;
}

static bool pred_released(const cJSON *obj, void *ud)
{
  (void)ud;
  return obj != NULL && !has_fin(obj) &&
         e2e_json_at(obj, "status.loadBalancer.ingress.0") == NULL;
}

/* Create name (extra spec JSON or NULL), wait until it converged, and
 * copy its recorded LB name to lbname. */
static void create_ready(struct e2e *e, const char *name, const char *extra,
                         char *lbname, size_t cap)
{
  char path[256];
  cJSON *obj;

  assert_int_equal(e2e_create_service_lb(e, NS, name, 80, extra), 0);
  svc_path(path, sizeof(path), name);
  assert_true(e2e_wait_object(e, path, pred_ready, NULL, WAIT_MS));
  obj = e2e_get(e, path);
  assert_non_null(obj);
  snprintf(lbname, cap, "%s", ann(obj, CCM_SVC_NAME_ANNOTATION));
  cJSON_Delete(obj);
}

/* lbname appears in the lab's (provider a's) state file. */
static bool lab_has(struct e2e *e, const char *lbname)
{
  FILE *f = fopen(e->state_file, "r");
  char line[4096], quoted[128];
  bool found = false;

  if (f == NULL)
    return false;
  snprintf(quoted, sizeof(quoted), "\"%s\"", lbname);
  while (!found && fgets(line, sizeof(line), f))
    found = strstr(line, quoted) != NULL;
  fclose(f);
  return found;
}

static int b_calls(struct e2e *e, const char *op, const char *arg)
{
  return e2e_call_count_in(e->extra_call_log, op, arg);
}

struct bq {
  const char *op, *arg;
  int n;
};

static bool pred_b(struct e2e *e, void *ud)
{
  const struct bq *q = ud;

  return b_calls(e, q->op, q->arg) >= q->n;
}

static void wait_b(struct e2e *e, const char *op, const char *arg, int n)
{
  struct bq q = {op, arg, n};

  if (!e2e_wait(e, pred_b, &q, WAIT_MS))
    fail_msg("provider b: fewer than %d %s %s", n, op, arg);
}

struct labq {
  const char *name;
  bool present;
};

static bool pred_lab(struct e2e *e, void *ud)
{
  const struct labq *q = ud;

  return lab_has(e, q->name) == q->present;
}

/* ---- tests ---- */

/* No class: provider a (lab) only. The class: provider b only, and the
 * class is recorded. */
static void test_routing(void **state)
{
  struct e2e *e = *state;
  char a_name[64], b_name[64], path[256];
  struct labq q;
  cJSON *obj;

  create_ready(e, "plain", NULL, a_name, sizeof(a_name));
  q.name = a_name;
  q.present = true;
  assert_true(e2e_wait(e, pred_lab, &q, WAIT_MS));
  assert_int_equal(b_calls(e, "lb_ensure", a_name), 0);

  create_ready(e, "classy", "{\"loadBalancerClass\":\"" CLASS_B "\"}",
               b_name, sizeof(b_name));
  wait_b(e, "lb_ensure", b_name, 1);
  assert_false(lab_has(e, b_name));
  svc_path(path, sizeof(path), "classy");
  obj = e2e_get(e, path);
  assert_non_null(obj);
  assert_string_equal(ann(obj, CCM_SVC_CLASS_ANNOTATION), CLASS_B);
  cJSON_Delete(obj);
  svc_path(path, sizeof(path), "plain");
  obj = e2e_get(e, path);
  assert_null(ann(obj, CCM_SVC_CLASS_ANNOTATION));
  cJSON_Delete(obj);
}

/* A class nobody serves: no finalizer, no record, no call anywhere. */
static void test_unknown_class(void **state)
{
  struct e2e *e = *state;
  char name[64], path[256];
  int b_before;
  cJSON *obj;

  assert_int_equal(e2e_create_service_lb(e, NS, "other", 80,
                                         "{\"loadBalancerClass\":"
                                         "\"example.com/none\"}"), 0);
  /* Services created after it converge on both providers; by then the
   * unknown one would have been handled, had it been queued. */
  create_ready(e, "after-a", NULL, name, sizeof(name));
  create_ready(e, "after-b", "{\"loadBalancerClass\":\"" CLASS_B "\"}",
               name, sizeof(name));
  b_before = b_calls(e, "lb_ensure", NULL);
  e2e_sleep_ms(500);
  svc_path(path, sizeof(path), "other");
  obj = e2e_get(e, path);
  assert_non_null(obj);
  assert_false(has_fin(obj));
  assert_null(ann(obj, CCM_SVC_NAME_ANNOTATION));
  assert_null(e2e_json_at(obj, "status.loadBalancer.ingress"));
  cJSON_Delete(obj);
  /* b saw only after-b; every line of its log names a known LB. */
  assert_int_equal(b_before, 1);
  assert_int_equal(b_calls(e, "lb_ensure", NULL), 1);
  assert_int_equal(b_calls(e, "lb_get", NULL) +
                   b_calls(e, "lb_delete", NULL) +
                   b_calls(e, "lb_update_hosts", NULL), 0);
}

/* The type change clears spec.loadBalancerClass: the recorded class still
 * routes the cleanup to b (lb_get, lb_delete), never to a. */
static void test_delete_after_class_cleared(void **state)
{
  struct e2e *e = *state;
  char b_name[64], path[256];

  create_ready(e, "tc", "{\"loadBalancerClass\":\"" CLASS_B "\"}", b_name,
               sizeof(b_name));
  wait_b(e, "lb_ensure", b_name, 1);
  svc_path(path, sizeof(path), "tc");
  assert_int_equal(e2e_patch_merge(e, path, "{\"spec\":{\"type\":"
                                   "\"ClusterIP\",\"loadBalancerClass\":null,"
                                   "\"externalTrafficPolicy\":null,"
                                   "\"allocateLoadBalancerNodePorts\":null,"
                                   "\"ports\":[{\"name\":\"p0\",\"protocol\":"
                                   "\"TCP\",\"port\":80,\"targetPort\":80}]}}"),
                   0);
  assert_true(e2e_wait_object(e, path, pred_released, NULL, WAIT_MS));
  wait_b(e, "lb_delete", b_name, 1);
  assert_false(lab_has(e, b_name));
}

/* After a restart (empty caches), deleting the class Service (its class
 * cleared first) still goes to b through the recorded class. */
static void test_delete_after_restart(void **state)
{
  struct e2e *e = *state;
  char b_name[64], path[256];

  create_ready(e, "rs", "{\"loadBalancerClass\":\"" CLASS_B "\"}", b_name,
               sizeof(b_name));
  assert_int_equal(e2e_restart(e, false), 0);
  svc_path(path, sizeof(path), "rs");
  assert_int_equal(e2e_patch_merge(e, path, "{\"spec\":{\"type\":"
                                   "\"ClusterIP\",\"loadBalancerClass\":null,"
                                   "\"externalTrafficPolicy\":null,"
                                   "\"allocateLoadBalancerNodePorts\":null}}"),
                   0);
  assert_int_equal(e2e_delete(e, path), 0);
  assert_true(e2e_wait_gone(e, path, WAIT_MS));
  wait_b(e, "lb_delete", b_name, 1);
  assert_false(lab_has(e, b_name));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_routing, setup, teardown),
    cmocka_unit_test_setup_teardown(test_unknown_class, setup, teardown),
    cmocka_unit_test_setup_teardown(test_delete_after_class_cleared, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_delete_after_restart, setup,
                                    teardown),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
